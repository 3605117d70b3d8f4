"""桌签 (desk labels, eight to an A4 sheet) and 门贴 (one landscape door sign per room and slot)."""

from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]

from models.materials_data import RoomSlot, SiteMaterials, TicketLine
from notifications.documents.layout import (
    ACCENT,
    INK,
    MUTED,
    Pen,
    exam_date,
    render_pdf,
    slot_times,
)

WHITE = (1.0, 1.0, 1.0)

PAGE_W, PAGE_H = A4
LABEL_COLS, LABEL_ROWS = 2, 4
LABELS_PER_PAGE = LABEL_COLS * LABEL_ROWS
LABEL_W, LABEL_H = PAGE_W / LABEL_COLS, PAGE_H / LABEL_ROWS
LABEL_PAD = 6 * mm


def desk_labels_pdf(m: SiteMaterials) -> bytes:
    """One label per occupied seat. Each room and slot starts a fresh sheet, so a room's
    labels come off the printer as their own bundle."""

    def draw(pen: Pen) -> None:
        for room in m.rooms:
            for first in range(0, len(room.candidates), LABELS_PER_PAGE):
                _cut_lines(pen)
                for index, line in enumerate(room.candidates[first : first + LABELS_PER_PAGE]):
                    col, row = index % LABEL_COLS, index // LABEL_COLS
                    _label(pen, line, col * LABEL_W, PAGE_H - (row + 1) * LABEL_H)
                pen.canvas.showPage()

    return render_pdf(f"{m.sitting_name} 桌签 {m.site_name}", A4, draw)


def _cut_lines(pen: Pen) -> None:
    for col in range(1, LABEL_COLS):
        pen.line(col * LABEL_W, 0, col * LABEL_W, PAGE_H, dash=(3, 3), width=0.3)
    for row in range(1, LABEL_ROWS):
        pen.line(0, row * LABEL_H, PAGE_W, row * LABEL_H, dash=(3, 3), width=0.3)


def _label(pen: Pen, line: TicketLine, x: float, y: float) -> None:
    left, right = x + LABEL_PAD, x + LABEL_W - LABEL_PAD
    top = y + LABEL_H - LABEL_PAD
    middle = x + LABEL_W / 2
    pen.text(left, top - 5 * mm, f"考场  {line.room}", 11, bold=True, max_width=60 * mm)
    _level_tag(pen, line.level, right, top - 6.5 * mm, 10)
    pen.line(left, top - 9 * mm, right, top - 9 * mm, color=ACCENT, width=0.8)
    pen.text(middle, top - 15.5 * mm, "座位号", 8.5, align="center", color=MUTED)
    pen.text(middle, top - 30 * mm, str(line.seat), 40, align="center", bold=True)
    pen.text(middle, top - 42 * mm, line.name, 20, align="center", bold=True, max_width=85 * mm)
    pen.text(middle, top - 50 * mm, f"准考证号  {line.ticket_number}", 10.5, align="center")
    when = f"{exam_date(line.starts)}  {slot_times(line.starts, line.ends)}"
    pen.text(middle, top - 56.5 * mm, when, 8, align="center", color=MUTED)


def _level_tag(
    pen: Pen, level: str, x: float, bottom: float, size: float, *, centred: bool = False
) -> None:
    """The level reversed out of a filled tag (right-aligned on x, or centred on it): the
    morning and afternoon labels of one room differ at a glance."""
    width = pen.width(level, size) + 1.2 * size
    left = x - width / 2 if centred else x - width
    pen.box(left, bottom, width, size * 1.6, fill=ACCENT, stroke=None, radius=size * 0.3)
    pen.text(left + width / 2, bottom + size * 0.45, level, size, align="center", color=WHITE)


DOOR_W, DOOR_H = landscape(A4)


def door_signs_pdf(m: SiteMaterials) -> bytes:
    """One landscape page per room and slot, legible from across a corridor."""

    def draw(pen: Pen) -> None:
        for room in m.rooms:
            _door_sign(pen, m, room)
            pen.canvas.showPage()

    return render_pdf(f"{m.sitting_name} 门贴 {m.site_name}", landscape(A4), draw)


def _door_sign(pen: Pen, m: SiteMaterials, room: RoomSlot) -> None:
    middle = DOOR_W / 2
    pen.box(0, DOOR_H - 26 * mm, DOOR_W, 26 * mm, fill=ACCENT, stroke=None)
    pen.text(middle, DOOR_H - 12 * mm, m.certificate, 17, align="center", color=WHITE, bold=True)
    pen.text(middle, DOOR_H - 20.5 * mm, m.sitting_name, 12, align="center", color=WHITE)
    pen.text(middle, DOOR_H - 45 * mm, "考  场", 24, align="center", color=MUTED)
    pen.text(middle, DOOR_H - 88 * mm, room.room, 96, align="center", bold=True, max_width=250 * mm)
    _level_tag(pen, room.level, middle, DOOR_H - 111 * mm, 22, centred=True)
    facts = [
        ("考试时间", f"{exam_date(room.starts)}  {slot_times(room.starts, room.ends)}"),
        ("准考证号", room.ticket_range or "—"),
        ("考生人数", f"{len(room.candidates)} 人（座位 {room.seats} 个）"),
    ]
    for index, (label, value) in enumerate(facts):
        y = DOOR_H - (134 + index * 15) * mm
        pen.text(middle - 48 * mm, y, label, 18, align="right", color=MUTED)
        pen.text(middle - 42 * mm, y, value, 20, color=INK, max_width=150 * mm)
    pen.line(20 * mm, 22 * mm, DOOR_W - 20 * mm, 22 * mm)
    site = f"考点：{m.site_name}（{m.site_code}）"
    pen.text(middle, 13 * mm, site, 13, align="center", color=MUTED)
