"""Drawing helpers shared by the materials: a canvas set in the CJK font, QR codes, wording."""

import io
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from notifications.documents.fonts import cjk_font
from notifications.documents.qr import qr_ops

Align = Literal["left", "center", "right"]
PageSize = tuple[float, float]

INK = (0.1, 0.1, 0.12)
MUTED = (0.42, 0.42, 0.45)
RULE = (0.55, 0.55, 0.58)
SHADE = (0.93, 0.93, 0.94)
ACCENT = (0.12, 0.23, 0.40)

WEEKDAYS = "一二三四五六日"
# Greedy wrapping may break between any two CJK characters, but not inside a Latin/number
# run ("14:00–17:45", "1+X"), and closing punctuation must not start a line (禁则).
_TOKEN = re.compile(r"[0-9A-Za-z:+.%/\-–]+|.", re.S)
_NO_LINE_START = set("，。、；：？！）》」』”’%")


class Pen:
    """One canvas and the CJK font: text placed, fitted to a width or set bolder."""

    def __init__(self, canvas: Any) -> None:
        self.canvas = canvas
        self.font = cjk_font()

    def width(self, text: str, size: float) -> float:
        return float(stringWidth(text, self.font, size))

    def fit(self, text: str, size: float, max_width: float, smallest: float = 6) -> float:
        """The largest size up to `size` at which text fits: a long school name shrinks
        rather than running out of its cell."""
        width = self.width(text, size)
        return size if width <= max_width else max(smallest, size * max_width / width)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        *,
        align: Align = "left",
        bold: bool = False,
        color: tuple[float, float, float] = INK,
        max_width: float | None = None,
        spacing: float = 0,
    ) -> None:
        if max_width is not None:
            size = self.fit(text, size, max_width)
        width = self.width(text, size) + spacing * max(len(text) - 1, 0)
        left = {"left": x, "center": x - width / 2, "right": x - width}[align]
        c = self.canvas
        c.saveState()
        c.setFillColorRGB(*color)
        line = c.beginText(left, y)
        line.setFont(self.font, size)
        line.setCharSpace(spacing)
        if bold:
            # The face has one weight: fill + stroke thickens it for headings and key values.
            c.setStrokeColorRGB(*color)
            c.setLineWidth(size * 0.035)
            line.setTextRenderMode(2)
        line.textOut(text)
        c.drawText(line)
        c.restoreState()

    def wrap(self, text: str, size: float, max_width: float) -> list[str]:
        lines: list[str] = []
        current = ""
        for token in _TOKEN.findall(text):
            fits = self.width(current + token, size) <= max_width
            if fits or not current or token[0] in _NO_LINE_START:
                current += token
            else:
                lines.append(current.rstrip())
                current = token.lstrip()
        return [*lines, current] if current else lines

    def box(
        self,
        x: float,
        y: float,
        width: float,
        height: float,
        *,
        fill: tuple[float, float, float] | None = None,
        stroke: tuple[float, float, float] | None = RULE,
        line_width: float = 0.6,
        radius: float = 0,
    ) -> None:
        c = self.canvas
        c.saveState()
        c.setLineWidth(line_width)
        if fill:
            c.setFillColorRGB(*fill)
        if stroke:
            c.setStrokeColorRGB(*stroke)
        flags = {"stroke": int(bool(stroke)), "fill": int(bool(fill))}
        if radius:
            c.roundRect(x, y, width, height, radius, **flags)
        else:  # a plain rect is far cheaper than roundRect's curve arithmetic
            c.rect(x, y, width, height, **flags)
        c.restoreState()

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        *,
        color: tuple[float, float, float] = RULE,
        width: float = 0.6,
        dash: tuple[float, float] | None = None,
    ) -> None:
        c = self.canvas
        c.saveState()
        c.setStrokeColorRGB(*color)
        c.setLineWidth(width)
        if dash:
            c.setDash(*dash)
        c.line(x1, y1, x2, y2)
        c.restoreState()

    def qr(self, value: str, x: float, y: float, size: float) -> None:
        """A QR code of `value` in a size×size square (4-module quiet zone included): segno's
        matrix as a few merged rectangles in one filled path (notifications.documents.qr)."""
        self.canvas.addLiteral(qr_ops(value, x, y, size))


def render_pdf(title: str, pagesize: PageSize, draw: Callable[[Pen], None]) -> bytes:
    """A whole document: `draw` places pages through the Pen and ends each with showPage.

    invariant=1 fixes the creation date and document ID, so the same data gives the same
    bytes (re-rendering a site's materials does not look like a change)."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=pagesize, invariant=1, initialFontName=cjk_font())
    canvas.setTitle(title)
    canvas.setAuthor("examflow")
    canvas.setCreator("examflow")
    pen = Pen(canvas)
    draw(pen)
    if canvas.getPageNumber() == 1:
        # nothing was drawn (no candidates): a PDF of zero pages is one viewers reject
        width, height = pagesize
        pen.text(width / 2, height / 2, f"{title}：无考生", 14, align="center", color=MUTED)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def exam_date(at: datetime) -> str:
    return f"{at.year}年{at.month}月{at.day}日（星期{WEEKDAYS[at.weekday()]}）"


def slot_times(starts: datetime, ends: datetime) -> str:
    return f"{starts:%H:%M}–{ends:%H:%M}"
