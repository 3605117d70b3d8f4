"""Sites' materials as PDFs, rendered from the arrangement: for a site's download (served by
the school portal, portal/routes/materials.py, which records the `*_downloaded` fact) and
for ops (`examflow materials`, written to a folder)."""

from pathlib import Path

from examflow.db import session_scope
from models.site_materials import site_materials
from models.sittings import get_sitting


def render_for_site(sitting: str, site: str, kind: str) -> bytes:
    """One of a site's four PDFs (``kind`` in models.links.KIND_FACTS)."""
    from notifications.documents.materials import RENDERERS

    with session_scope() as session:
        materials = site_materials(session, get_sitting(session, sitting), site)
    return RENDERERS[kind](materials)


def write_materials(sitting: str, sites: list[str], out_dir: Path) -> dict[str, dict[str, Path]]:
    from notifications.documents.materials import write_site_materials

    written = {}
    with session_scope() as session:
        row = get_sitting(session, sitting)
        for site in sites:
            written[site] = write_site_materials(site_materials(session, row, site), out_dir)
    return written
