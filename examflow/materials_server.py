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
from collections.abc import Mapping

from starlette.responses import FileResponse, Response

from adapters.materials_store import StoredPdf

# An entity tag in a list: its opaque part (quotes included), with or without the weak prefix
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


def names_etag(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (a strong tag), by RFC 9110 §13.1.2's weak
    comparison: ``W/"x"`` matches ``"x"``; ``*`` matches any stored file."""
    if if_none_match.strip() == "*":
        return True
    return etag in _ENTITY_TAG.findall(if_none_match)


def stored_pdf_for_site(sitting: str, site: str, kind: str) -> StoredPdf:
    """The site's current PDF of ``kind`` in the store (rendered now only if missing)."""
    from tasks.site_pdfs import stored_site_pdf  # reportlab and the font: on first use

    return stored_site_pdf(sitting, site, kind)


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
