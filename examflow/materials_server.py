"""Sites' materials as PDFs, rendered from the arrangement: for a site's download (served by
the school portal, portal/routes/materials.py, which records the `*_downloaded` fact) and
for ops (`examflow materials`, written to a folder).

Downloads are served from the content-addressed store (tasks.site_pdfs, rendered ahead by
the materials stage): `serve_cached_pdf` streams the stored file with its content hash as
ETag, Content-Length and byte ranges, and answers 304 to a matching If-None-Match. A file
not yet stored is rendered in the request, once however many requests ask at the same time.
"""

from collections.abc import Mapping

from starlette.responses import FileResponse, Response

from adapters.materials_store import StoredPdf


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
    if_none_match = request_headers.get("if-none-match", "")
    if stored.etag in {tag.strip() for tag in if_none_match.split(",")} or if_none_match == "*":
        return Response(status_code=304, headers=headers)
    return FileResponse(
        stored.path,
        headers=headers,
        media_type="application/pdf",
        filename=filename,
        stat_result=stored.path.stat(),
    )
