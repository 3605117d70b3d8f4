"""A site's four PDFs: from its page (signed in), and through the signed links already
mailed (``/materials/<sitting>/<site>/<kind>.pdf?token=…``, as the old materials server
served them). Either way the download records the site's ``*_downloaded`` fact.

Both routes answer HEAD with GET's headers (ETag, Content-Length, Accept-Ranges, Content-Type;
Starlette's FileResponse sends no body for HEAD) and record nothing: mail scanners and link
checkers send HEAD to a mailed link, and only a real download counts."""

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from examflow.materials_server import serve_cached_pdf, stored_pdf_for_site
from examflow.settings import link_secret
from models.domain import StageCode
from models.facts import record_fact
from models.links import KIND_FACTS, token_ok
from models.portal_access import record_action
from models.sittings import UnknownSittingError
from portal.auth import SignedIn, client_address, own_school, signed_in
from portal.context import Portal, portal_of
from portal.events import emit_school_acted
from portal.routes.sitting import sitting_or_404

router = APIRouter()


def is_download(request: Request) -> bool:
    """A GET fetches the file; a HEAD only asks about it (a scanner, a link checker)."""
    return request.method != "HEAD"


def _pdf(
    request: Request, portal: Portal, sitting: str, site: str, kind: str, source: str
) -> Response:
    """The stored file (rendered ahead by the materials stage), streamed with its ETag; a
    download (not a HEAD) records the site's fact."""
    try:
        stored = stored_pdf_for_site(sitting, site, kind)
    except UnknownSittingError:
        raise HTTPException(status_code=404) from None
    if is_download(request):
        try:
            with portal.db() as session:
                record_fact(session, sitting, site, KIND_FACTS[kind], portal.now(), source=source)
        except IntegrityError:
            pass  # a download at the same moment recorded this fact first: it holds either way
    return serve_cached_pdf(request.headers, stored, f"{sitting}-{site}-{kind}.pdf")


# FastAPI's routes answer only the methods named (Starlette's own add HEAD to GET)
@router.api_route("/materials/{sitting}/{site}/{kind}.pdf", methods=["GET", "HEAD"])
def signed_link_download(
    request: Request, sitting: str, site: str, kind: str, token: str = ""
) -> Response:
    if kind not in KIND_FACTS:
        raise HTTPException(status_code=404)
    if not token_ok(link_secret(), sitting, site, token):
        raise HTTPException(status_code=403, detail="this link is not valid for this site")
    return _pdf(request, portal_of(request), sitting, site, kind, "download")


@router.api_route(
    "/schools/{school_code}/sittings/{sitting_code}/materials/{kind}.pdf", methods=["GET", "HEAD"]
)
def site_download(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    kind: str,
    user: SignedIn = Depends(signed_in),
) -> Response:
    own_school(user, school_code)
    if kind not in KIND_FACTS or not user.is_site:
        raise HTTPException(status_code=404)
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        window = sitting_or_404(session, sitting_code).spec.window(StageCode.materials)
    if not window.contains(as_of):
        raise HTTPException(status_code=409, detail="下载物料的时间窗口未开放")
    response = _pdf(request, portal, sitting_code, user.school_code, kind, f"portal:{user.contact}")
    if not is_download(request):
        return response
    with portal.db() as session:
        record_action(
            session,
            sitting_code=sitting_code,
            school_code=user.school_code,
            contact=user.contact,
            action=f"download:{kind}",
            as_of=as_of,
            client=client_address(request),
        )
    background.add_task(
        emit_school_acted, sitting_code, StageCode.materials, f"download:{kind}", user.school_code
    )
    return response
