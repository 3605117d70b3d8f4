"""Sites' materials as PDFs, rendered from the arrangement: for a site's download (served by
the school portal, portal/routes/materials.py, which records the `*_downloaded` fact) and
for ops (`examflow materials`, written to a folder).

Downloads are served from the content-addressed store (tasks.site_pdfs, rendered ahead by
the materials stage): `serve_cached_pdf` streams the stored file with its content hash as
ETag, Content-Length and byte ranges, and answers 304 to a matching If-None-Match (compared
weakly, as RFC 9110 says for it: a cache may send our tag back marked weak). A file
not yet stored is rendered in the request, once however many requests ask at the same time.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import cache, partial
from pathlib import Path
from typing import NamedTuple

from starlette.responses import FileResponse, Response

from adapters.materials_store import MaterialsStore, StoredPdf
from models.materials_data import SiteMaterials
from models.site_materials import SiteReading, build_site, reading_key
from models.sittings import Sitting

# An entity tag in a list: its opaque part (quotes included), with or without the weak prefix
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


def names_etag(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (a strong tag), by RFC 9110 §13.1.2's weak
    comparison: ``W/"x"`` matches ``"x"``; ``*`` matches any stored file."""
    if if_none_match.strip() == "*":
        return True
    return etag in _ENTITY_TAG.findall(if_none_match)


@cache
def store_at(root: Path) -> MaterialsStore:
    """One store object per root in a process, so that its per-key locks are shared by all
    the process's requests (the file lock alone would also keep them from rendering twice)."""
    return MaterialsStore(root)


class CurrentSite(NamedTuple):
    """A site's materials as its data is now: their digest (the stored files' key), and the
    materials themselves, built on first use (only a file missing from the store needs them)."""

    sitting_code: str
    digest: str
    materials: Callable[[], SiteMaterials]


class SiteDigests:
    """A site's materials digest remembered under the key of what they are built from
    (models.site_materials.reading_key), per process, bounded. A download still reads the
    site's data every time, so a re-arrangement, a changed room or a late registration gives a
    new key at once; only for a reading seen before does it skip building 300 candidates'
    lines and hashing them (most of a download's own work)."""

    def __init__(self, size: int = 4096) -> None:
        self._digests: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def current(self, sitting: Sitting, reading: SiteReading) -> CurrentSite:
        from notifications.documents.materials import site_digest  # reportlab: on first use

        key = reading_key(sitting, reading)
        materials = cache(partial(build_site, sitting, reading))
        with self._lock:
            digest = self._digests.get(key)
        if digest is None:
            digest = site_digest(materials())
            with self._lock:
                self._digests[key] = digest
                if len(self._digests) > self._size:
                    self._digests.popitem(last=False)
        return CurrentSite(sitting.code, digest, materials)


def stored_pdf_for_site(store: MaterialsStore, site: CurrentSite, kind: str) -> StoredPdf:
    """The PDF of ``kind`` for the site as its data is now (read by this request) from the
    store, rendered now only if missing."""
    # reportlab and the font: on first use (tasks.site_pdfs.stored_site_pdf does the same
    # with a session of its own, which reads the settings again)
    from notifications.documents.materials import RENDERERS

    def render() -> bytes:
        return RENDERERS[kind](site.materials())

    return store.ensure(site.digest, kind, render, group=site.sitting_code)


def serve_cached_pdf(
    request_headers: Mapping[str, str], stored: StoredPdf, filename: str
) -> Response:
    """A stored PDF as a streamed download: ETag (the content hash, the same from every portal
    worker), Content-Length, Range, and 304 Not Modified when If-None-Match names it."""
    headers = {"ETag": stored.etag, "Cache-Control": "private, no-cache"}
    if names_etag(request_headers.get("if-none-match", ""), stored.etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(
        stored.path,
        headers=headers,
        media_type="application/pdf",
        filename=filename,
        stat_result=stored.path.stat(),
    )
