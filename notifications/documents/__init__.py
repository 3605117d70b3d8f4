"""Printable exam materials (准考证, 桌签, 门贴, 签到表) rendered as PDF with an embedded CJK font."""
