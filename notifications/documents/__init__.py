"""Printable exam materials (准考证, 桌签, 门贴, 签到表) as PDF, set in an embedded CJK font."""
