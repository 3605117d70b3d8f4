"""准考证: two admission tickets per A4 sheet (top and bottom half, cut along the dashed line).

Everything a site's tickets share (card, headings, grid and its labels, the rules) is drawn
once into a PDF form and placed on every ticket; only the candidate's values and QR code are
drawn per ticket. That keeps 300 tickets fast and the file small.
"""

from collections.abc import Iterator

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
TEMPLATE = "ticket"

# Geometry of the top ticket; the bottom one is the same, shifted down by HALF_H.
CARD_INSET = 7 * mm
CARD_TOP = PAGE_H - CARD_INSET
PAD = 14 * mm  # content, from the page's left and right edges
QR_SIZE = 36 * mm
GRID_TOP = CARD_TOP - 33 * mm
ROW_H = 8.4 * mm
LABEL_W = 21 * mm
GRID_W = PAGE_W - 2 * PAD - QR_SIZE - 4 * mm
RULES_TOP = GRID_TOP - 7 * ROW_H - 8 * mm
RULE_SIZE = 9
# Labels of the grid's rows; a row with one label spans the grid's full width.
ROWS = [
    ("姓名", "级别"),
    ("准考证号",),
    ("身份证号",),
    ("所在院校",),
    ("考点",),
    ("考场", "座位号"),
    ("考试时间",),
]
KEY_FIELDS = {"姓名", "准考证号", "考场", "座位号"}  # set larger and bolder


def admission_tickets_pdf(m: SiteMaterials) -> bytes:
    """One half-page ticket per candidate, in the rooms' seat order."""

    def draw(pen: Pen) -> None:
        _template(pen, m)
        lines = m.candidates
        for first in range(0, len(lines), TICKETS_PER_PAGE):
            pen.line(0, HALF_H, PAGE_W, HALF_H, dash=(4, 3), width=0.4)
            for slot, line in enumerate(lines[first : first + TICKETS_PER_PAGE]):
                pen.canvas.saveState()
                pen.canvas.translate(0, -slot * HALF_H)
                pen.canvas.doForm(TEMPLATE)
                _values(pen, m, line)
                pen.canvas.restoreState()
            pen.canvas.showPage()

    return render_pdf(f"{m.sitting_name} 准考证 {m.site_name}", A4, draw)


def _template(pen: Pen, m: SiteMaterials) -> None:
    pen.canvas.beginForm(TEMPLATE)
    pen.box(
        CARD_INSET,
        PAGE_H - HALF_H + CARD_INSET,
        PAGE_W - 2 * CARD_INSET,
        HALF_H - 2 * CARD_INSET,
        radius=3 * mm,
        line_width=0.9,
    )
    _heading(pen, m)
    for label, x, y, value_w in _cells():
        pen.box(x, y, LABEL_W, ROW_H, fill=SHADE)
        pen.box(x + LABEL_W, y, value_w, ROW_H)
        pen.text(x + LABEL_W / 2, y + ROW_H / 2 - 3.5, label, 9.5, align="center", color=MUTED)
    qr_middle = PAGE_W - PAD - QR_SIZE / 2
    caption_y = GRID_TOP - QR_SIZE - 8.5 * mm
    pen.text(qr_middle, caption_y, "扫码核验准考证号", 7.5, align="center", color=MUTED)
    _rules(pen, m.rules)
    pen.canvas.endForm()


def _cells() -> Iterator[tuple[str, float, float, float]]:
    """(label, x, y, value width) of each label cell, row by row."""
    for index, row in enumerate(ROWS):
        y = GRID_TOP - (index + 1) * ROW_H
        value_w = GRID_W / len(row) - LABEL_W
        for column, label in enumerate(row):
            yield label, PAD + column * (LABEL_W + value_w), y, value_w


_CELLS = list(_cells())  # the grid is the same on every ticket: computed once per process


def _heading(pen: Pen, m: SiteMaterials) -> None:
    middle = PAGE_W / 2
    pen.text(middle, CARD_TOP - 9 * mm, m.sitting_name, 10, align="center", color=MUTED)
    pen.text(
        middle, CARD_TOP - 16 * mm, m.certificate, 13, align="center", bold=True, max_width=170 * mm
    )
    pen.text(
        middle, CARD_TOP - 26 * mm, "准考证", 21, align="center", bold=True, color=ACCENT, spacing=8
    )


def _values(pen: Pen, m: SiteMaterials, line: TicketLine) -> None:
    values = {
        "姓名": line.name,
        "级别": line.level,
        "准考证号": line.ticket_number,
        "身份证号": line.masked_id,
        "所在院校": line.school_name,
        "考点": f"{m.site_name}（{m.site_code}）",
        "考场": line.room,
        "座位号": str(line.seat),
        "考试时间": f"{exam_date(line.starts)}  {slot_times(line.starts, line.ends)}",
    }
    for label, x, y, value_w in _CELLS:
        key = label in KEY_FIELDS
        baseline = y + ROW_H / 2 - (4 if key else 3.6)
        size = 12 if key else 10.5
        value = values[label]
        pen.text(
            x + LABEL_W + 2.5 * mm, baseline, value, size, bold=key, max_width=value_w - 5 * mm
        )
    x = PAGE_W - PAD - QR_SIZE
    pen.qr(line.ticket_number, x, GRID_TOP - QR_SIZE, QR_SIZE)
    pen.text(x + QR_SIZE / 2, GRID_TOP - QR_SIZE - 4 * mm, line.ticket_number, 9.5, align="center")


def _rules(pen: Pen, rules: list[str]) -> None:
    pen.text(PAD, RULES_TOP, "考生须知", 10.5, bold=True, color=ACCENT)
    width = PAGE_W - 2 * PAD - 5 * mm
    y = RULES_TOP - 6 * mm
    for number, rule in enumerate(rules, start=1):
        pen.text(PAD, y, f"{number}.", RULE_SIZE, color=MUTED)
        for text in pen.wrap(rule, RULE_SIZE, width):
            pen.text(PAD + 5 * mm, y, text, RULE_SIZE)
            y -= 4.8 * mm
