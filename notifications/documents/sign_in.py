"""签到表: per room and slot, a table of candidates to sign; title and column heads on each page."""

from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]

from models.materials_data import RoomSlot, SiteMaterials, TicketLine
from notifications.documents.layout import (
    ACCENT,
    MUTED,
    SHADE,
    Align,
    Pen,
    exam_date,
    render_pdf,
    slot_times,
)

PAGE_W, PAGE_H = A4
MARGIN = 15 * mm
ROWS_PER_PAGE = 30  # a typical computer room on one page; larger rooms continue
HEAD_H = 9 * mm
ROW_H = 7 * mm  # ≈ 20 pt: room for a handwritten signature
TABLE_TOP = PAGE_H - 45 * mm
# (heading, width, alignment): the signature column takes what is left of the page width
COLUMNS: list[tuple[str, float, Align]] = [
    ("座位号", 15 * mm, "center"),
    ("准考证号", 38 * mm, "center"),
    ("姓名", 34 * mm, "center"),
    ("身份证号", 43 * mm, "center"),
    ("考生签名", PAGE_W - 2 * MARGIN - 130 * mm, "left"),
]
ZEBRA = (0.975, 0.975, 0.98)


def sign_in_sheets_pdf(m: SiteMaterials) -> bytes:
    """Each room and slot starts a new page and is paged on its own (第 i 页 / 共 n 页)."""

    def draw(pen: Pen) -> None:
        for room in m.rooms:
            pages = _pages(room.candidates)
            for number, chunk in enumerate(pages, start=1):
                _page(pen, m, room, chunk, number, len(pages))
                pen.canvas.showPage()

    return render_pdf(f"{m.sitting_name} 签到表 {m.site_name}", A4, draw)


def _pages(lines: list[TicketLine]) -> list[list[TicketLine]]:
    # an empty room still gets its (empty) sheet, so the pack has one per room and slot
    return [lines[i : i + ROWS_PER_PAGE] for i in range(0, len(lines), ROWS_PER_PAGE)] or [[]]


def _page(
    pen: Pen, m: SiteMaterials, room: RoomSlot, lines: list[TicketLine], number: int, total: int
) -> None:
    middle = PAGE_W / 2
    pen.text(
        middle, PAGE_H - 18 * mm, f"{m.sitting_name} 考生签到表", 16, align="center", bold=True
    )
    pen.text(middle, PAGE_H - 25 * mm, m.certificate, 10.5, align="center", color=MUTED)
    width = PAGE_W - 2 * MARGIN
    pen.text(MARGIN, PAGE_H - 33 * mm, f"考点：{m.site_name}（{m.site_code}）", 10, max_width=width)
    slot = (
        f"考场：{room.room}    级别：{room.level}    "
        f"考试时间：{exam_date(room.starts)} {slot_times(room.starts, room.ends)}"
    )
    pen.text(MARGIN, PAGE_H - 39 * mm, slot, 10, max_width=width)
    _header_row(pen)
    for index, line in enumerate(lines):
        _row(pen, index, line)
    _footer(pen, room, TABLE_TOP - HEAD_H - len(lines) * ROW_H, number, total)


def _header_row(pen: Pen) -> None:
    x = MARGIN
    for heading, width, _ in COLUMNS:
        pen.box(x, TABLE_TOP - HEAD_H, width, HEAD_H, fill=SHADE, line_width=0.8)
        pen.text(
            x + width / 2, TABLE_TOP - HEAD_H / 2 - 3.5, heading, 10, align="center", bold=True
        )
        x += width


def _row(pen: Pen, index: int, line: TicketLine) -> None:
    y = TABLE_TOP - HEAD_H - (index + 1) * ROW_H
    values = [str(line.seat), line.ticket_number, line.name, line.masked_id, ""]
    x = MARGIN
    for (_, width, align), value in zip(COLUMNS, values, strict=True):
        pen.box(x, y, width, ROW_H, fill=ZEBRA if index % 2 else None)
        if value:
            at = x + width / 2 if align == "center" else x + 2 * mm
            pen.text(at, y + ROW_H / 2 - 3.3, value, 10, align=align, max_width=width - 3 * mm)
        x += width


def _footer(pen: Pen, room: RoomSlot, table_bottom: float, number: int, total: int) -> None:
    y = table_bottom - 9 * mm
    counts = f"应到 {len(room.candidates)} 人　　实到 ______ 人　　缺考 ______ 人"
    pen.text(MARGIN, y, counts, 10.5)
    pen.text(PAGE_W - MARGIN, y, "监考员签名：________________", 10.5, align="right")
    pen.line(MARGIN, 14 * mm, PAGE_W - MARGIN, 14 * mm, color=ACCENT, width=0.5)
    page = f"第 {number} 页 / 共 {total} 页"
    pen.text(PAGE_W - MARGIN, 9 * mm, page, 8.5, align="right", color=MUTED)
    pen.text(MARGIN, 9 * mm, f"考场 {room.room} · {room.level}", 8.5, color=MUTED)
