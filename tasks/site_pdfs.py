"""Sites' PDFs in the content-addressed store (adapters.materials_store), without Prefect: a
portal worker serving a download must not import it (the import costs a second or two, and
Prefect's logging set-up would take over the process's root logger).

A site's four PDFs are stored under the hash of what goes into them (models.materials_key):
`stale_sites` finds the sites whose current data has no stored PDFs yet, `render_sites`
renders a batch of sites' missing PDFs (the body of tasks.materials' task, on whichever
worker runs it; the batch travels as one compact JSON document, `pack_sites`),
`prune_sitting` removes the files of a sitting's data that is no longer current, and
`stored_site_pdf` gives a download its file, rendering it (once) only if it is missing.
"""

from functools import partial
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from adapters.materials_store import MaterialsStore, StoredPdf
from examflow.db import session_scope
from examflow.settings import get_settings
from models.materials_data import SiteMaterials
from models.site_materials import site_materials, sitting_materials
from models.sittings import get_sitting
from models.stages import active_sites
from notifications.documents.materials import MATERIAL_KINDS, RENDERERS, site_digest


class RenderedSite(BaseModel):
    """What one site's rendering did: the key its PDFs are under and which it rendered."""

    site: str
    digest: str
    rendered: list[str]


def materials_store(root: Path | None = None) -> MaterialsStore:
    return MaterialsStore(root or get_settings().materials_store)


def sites_materials(sitting: str, sites: list[str] | None = None) -> list[SiteMaterials]:
    """Every active site's materials (or the named sites'), in site order."""
    with session_scope() as session:
        row = get_sitting(session, sitting)
        codes = sites if sites is not None else active_sites(session, sitting)
        found = sitting_materials(session, row, codes)
    return [found[code] for code in codes]


def is_stored(store: MaterialsStore, materials: SiteMaterials) -> bool:
    digest = site_digest(materials)
    return all(store.get(digest, kind) is not None for kind in MATERIAL_KINDS)


def stale_sites(
    sitting: str, sites: list[str] | None = None, store: MaterialsStore | None = None
) -> list[SiteMaterials]:
    """The sites whose current materials are not all stored (new, or their data changed)."""
    store = store or materials_store()
    return [m for m in sites_materials(sitting, sites) if not is_stored(store, m)]


def render_into(store: MaterialsStore, materials: SiteMaterials) -> RenderedSite:
    """Render and store whichever of the site's four PDFs are missing."""
    digest = site_digest(materials)
    rendered = []
    for kind in MATERIAL_KINDS:
        render = partial(RENDERERS[kind], materials)
        if store.ensure(digest, kind, render, group=materials.sitting_code).rendered:
            rendered.append(kind)
    return RenderedSite(site=materials.site_code, digest=digest, rendered=rendered)


_SITES = TypeAdapter(list[SiteMaterials])


def pack_sites(sites: list[SiteMaterials]) -> bytes:
    """Sites' materials as one JSON document: what a batch task receives. Prefect and Dask
    pass bytes through as they are, where a list of models is walked field by field on
    submit (Prefect looks for futures in it, Dask tokenizes it)."""
    return _SITES.dump_json(sites)


def render_sites(batch: bytes, store_root: str, label: str = "") -> list[RenderedSite]:
    """A batch of sites' PDFs (pack_sites) into the shared store, on a Dask worker; returns
    what each site's rendering did, not the PDFs. `label` names the task run."""
    store = MaterialsStore(Path(store_root))
    return [render_into(store, materials) for materials in _SITES.validate_json(batch)]


def prune_sitting(
    store: MaterialsStore, sitting: str, current: list[SiteMaterials], read_at: float
) -> int:
    """Remove the sitting's stored PDFs that none of its `current` sites' data (read at
    `read_at`, a time.time(), and covering every active site) refers to; returns how many."""
    return store.prune(sitting, {site_digest(m) for m in current}, written_before=read_at)


def stored_site_pdf(
    sitting: str, site: str, kind: str, store: MaterialsStore | None = None
) -> StoredPdf:
    """The site's current PDF of `kind` from the store; rendered here only if missing (and
    then once, however many ask at the same time). Raises UnknownSittingError."""
    store = store or materials_store()
    with session_scope() as session:
        materials = site_materials(session, get_sitting(session, sitting), site)
    render = partial(RENDERERS[kind], materials)
    return store.ensure(site_digest(materials), kind, render, group=materials.sitting_code)
