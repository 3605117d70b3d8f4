"""准考证: two admission tickets per A4 sheet (top and bottom half, cut along the dashed line)."""

from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]

from models.materials_data import SiteMaterials, TicketLine
from notifications.documents.layout import (
    ACCENT,
    MUTED,
    SHADE,
    Pen,
    exam_date,
    render_pdf,
    slot_times,
)

PAGE_W, PAGE_H = A4
HALF_H = PAGE_H / 2
TICKETS_PER_PAGE = 2

CARD_INSET = 7 * mm  # card border, from the half-page's edges
PAD = 14 * mm  # content, from the page's left and right edges
QR_SIZE = 36 * mm
GRID_TOP = 33 * mm  # below the card's top edge
ROW_H = 8.2 * mm
LABEL_W = 21 * mm
GRID_W = PAGE_W - 2 * PAD - QR_SIZE - 4 * mm
VALUE_W = GRID_W / 2 - LABEL_W


def admission_tickets_pdf(m: SiteMaterials) -> bytes:
    """One half-page ticket per candidate, in the rooms' seat order."""

    def draw(pen: Pen) -> None:
        lines = m.candidates
        for first in range(0, len(lines), TICKETS_PER_PAGE):
            pen.line(0, HALF_H, PAGE_W, HALF_H, dash=(4, 3), width=0.4)
            for slot, line in enumerate(lines[first : first + TICKETS_PER_PAGE]):
                _ticket(pen, m, line, top=PAGE_H - slot * HALF_H)
            pen.canvas.showPage()

    return render_pdf(f"{m.sitting_name} 准考证 {m.site_name}", A4, draw)


def _ticket(pen: Pen, m: SiteMaterials, line: TicketLine, top: float) -> None:
    card_top = top - CARD_INSET
    pen.box(
        CARD_INSET,
        top - HALF_H + CARD_INSET,
        PAGE_W - 2 * CARD_INSET,
        HALF_H - 2 * CARD_INSET,
        radius=3 * mm,
        line_width=0.9,
    )
    _heading(pen, m, card_top)
    grid_top = card_top - GRID_TOP
    _grid(pen, m, line, grid_top)
    _qr_block(pen, line, grid_top)
    _rules(pen, m.rules, grid_top - 7 * ROW_H - 8 * mm)


def _heading(pen: Pen, m: SiteMaterials, card_top: float) -> None:
    middle = PAGE_W / 2
    pen.text(middle, card_top - 9 * mm, m.sitting_name, 10, align="center", color=MUTED)
    pen.text(
        middle, card_top - 16 * mm, m.certificate, 13, align="center", bold=True, max_width=170 * mm
    )
    pen.text(
        middle, card_top - 26 * mm, "准考证", 21, align="center", bold=True, color=ACCENT, spacing=8
    )


def _grid(pen: Pen, m: SiteMaterials, line: TicketLine, top: float) -> None:
    """Seven rows of label | value; a row with one pair spans the grid's full width."""
    rows: list[list[tuple[str, str]]] = [
        [("姓名", line.name), ("级别", line.level)],
        [("准考证号", line.ticket_number)],
        [("身份证号", line.masked_id)],
        [("所在院校", line.school_name)],
        [("考点", f"{m.site_name}（{m.site_code}）")],
        [("考场", line.room), ("座位号", str(line.seat))],
        [("考试时间", f"{exam_date(line.starts)}  {slot_times(line.starts, line.ends)}")],
    ]
    for index, row in enumerate(rows):
        y = top - (index + 1) * ROW_H
        x = PAD
        for label, value in row:
            span = GRID_W / len(row) - LABEL_W
            pen.box(x, y, LABEL_W, ROW_H, fill=SHADE)
            pen.box(x + LABEL_W, y, span, ROW_H)
            baseline = y + ROW_H / 2 - 3.5
            pen.text(x + LABEL_W / 2, baseline, label, 9.5, align="center", color=MUTED)
            key = label in ("姓名", "准考证号", "座位号", "考场")
            pen.text(
                x + LABEL_W + 2.5 * mm,
                baseline - (0.5 if key else 0),
                value,
                12 if key else 10.5,
                bold=key,
                max_width=span - 5 * mm,
            )
            x += LABEL_W + span


def _qr_block(pen: Pen, line: TicketLine, grid_top: float) -> None:
    x = PAGE_W - PAD - QR_SIZE
    pen.qr(line.ticket_number, x, grid_top - QR_SIZE, QR_SIZE)
    pen.text(x + QR_SIZE / 2, grid_top - QR_SIZE - 4 * mm, line.ticket_number, 9.5, align="center")
    pen.text(
        x + QR_SIZE / 2,
        grid_top - QR_SIZE - 8.5 * mm,
        "扫码核验准考证号",
        7.5,
        align="center",
        color=MUTED,
    )


def _rules(pen: Pen, rules: list[str], top: float) -> None:
    pen.text(PAD, top, "考生须知", 10.5, bold=True, color=ACCENT)
    width = PAGE_W - 2 * PAD - 5 * mm
    y = top - 5.5 * mm
    for number, rule in enumerate(rules, start=1):
        pen.text(PAD, y, f"{number}.", 8.5, color=MUTED)
        for text in pen.wrap(rule, 8.5, width):
            pen.text(PAD + 5 * mm, y, text, 8.5)
            y -= 4.3 * mm
