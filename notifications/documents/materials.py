"""A site's printable materials for one sitting, each kind one PDF.

    admission_tickets_pdf   准考证: two per A4 sheet, with the exam rules and a QR code
    desk_labels_pdf         桌签: eight per A4 sheet, each room and slot on its own sheets
    door_signs_pdf          门贴: one landscape page per room and slot
    sign_in_sheets_pdf      签到表: per room and slot, column heads repeated on every page

The data arrives with ID numbers already masked (models.materials_data): nothing here sees
a full ID number.
"""

import functools
import hashlib
import re
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from models.materials_data import SiteMaterials
from models.materials_key import materials_digest
from notifications.documents.fonts import find_cjk_font
from notifications.documents.sign_in import sign_in_sheets_pdf
from notifications.documents.signage import desk_labels_pdf, door_signs_pdf
from notifications.documents.tickets import admission_tickets_pdf

MATERIAL_KINDS = ("tickets", "labels", "door_signs", "sign_in_sheets")

RENDERERS: dict[str, Callable[[SiteMaterials], bytes]] = {
    "tickets": admission_tickets_pdf,
    "labels": desk_labels_pdf,
    "door_signs": door_signs_pdf,
    "sign_in_sheets": sign_in_sheets_pdf,
}


@functools.cache
def renderer_version() -> str:
    """What else decides the bytes besides the data: this package's source, the libraries that
    write the PDF and the font file. Any change to them re-renders every site once."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    for package in ("reportlab", "rl-accel", "segno"):
        digest.update(f"{package}=={version(package)}".encode())
    font = find_cjk_font()
    digest.update(f"{font}:{font.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def site_digest(m: SiteMaterials) -> str:
    """The key a site's four PDFs are stored under (models.materials_key)."""
    return materials_digest(m, renderer_version())


def material_path(m: SiteMaterials, out_dir: Path, kind: str) -> Path:
    """<out_dir>/<sitting>-<site>-<kind>.pdf; codes are reduced to a safe file-name part so a
    stray '/' or space in a code cannot write outside out_dir."""
    return out_dir / f"{_safe(m.sitting_code)}-{_safe(m.site_code)}-{kind}.pdf"


def write_site_materials(m: SiteMaterials, out_dir: Path) -> dict[str, Path]:
    """Render every kind and write it; returns kind -> file, in MATERIAL_KINDS order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for kind in MATERIAL_KINDS:
        path = material_path(m, out_dir, kind)
        path.write_bytes(RENDERERS[kind](m))
        written[kind] = path
    return written


def _safe(code: str) -> str:
    return re.sub(r"[^\w.-]", "_", code).strip(".") or "_"


__all__ = [
    "MATERIAL_KINDS",
    "RENDERERS",
    "admission_tickets_pdf",
    "desk_labels_pdf",
    "door_signs_pdf",
    "material_path",
    "renderer_version",
    "sign_in_sheets_pdf",
    "site_digest",
    "write_site_materials",
]
