"""The one CJK TrueType font every material is set in, found on disk and registered once.

The PDF must embed the font: a reader without Chinese fonts (or a print shop's RIP) would
otherwise substitute or drop glyphs, so reportlab's built-in, non-embedded CID fonts
(STSong-Light) are not an option.
"""

import functools
import os
from pathlib import Path

from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]

FONT_ENV = "EXAMFLOW_CJK_FONT"
FONT_NAME = "ExamflowCJK"
APT_PACKAGE = "fonts-wqy-microhei"

# TrueType outlines only: reportlab cannot embed CFF-based OpenType, so Noto/Source Han
# (.otf/.ttc with CFF) are deliberately absent. Index 0 of each collection is the regular face.
DEBIAN_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
)


class CJKFontMissing(RuntimeError):
    """No usable CJK TrueType font: the materials cannot be rendered legibly."""


def find_cjk_font() -> Path:
    """The font file: $EXAMFLOW_CJK_FONT if set (and it must then exist), else a Debian path."""
    override = os.environ.get(FONT_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise CJKFontMissing(
                f"{FONT_ENV}={override} is not a font file: point it at a .ttf/.ttc file with "
                f"TrueType outlines, or unset it and `apt-get install -y {APT_PACKAGE}`"
            )
        return path
    for path in DEBIAN_FONTS:
        if path.is_file():
            return path
    raise CJKFontMissing(
        "no CJK TrueType font found, and the materials (PDFs) need one: "
        f"install it with `apt-get install -y {APT_PACKAGE}` "
        f"or set {FONT_ENV} to a .ttf/.ttc file with TrueType outlines"
    )


@functools.cache
def cjk_font() -> str:
    """Register the font with reportlab (parsing a CJK collection takes ~0.1 s: once per
    process) and return the name to pass to setFont."""
    pdfmetrics.registerFont(TTFont(FONT_NAME, str(find_cjk_font()), subfontIndex=0))
    return FONT_NAME
