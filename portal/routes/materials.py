"""A site's four PDFs: from its page (signed in), and through the signed links already
mailed (``/materials/<sitting>/<site>/<kind>.pdf?token=…``, as the old materials server
served them). Either way the download records the site's ``*_downloaded`` fact.

Both routes answer HEAD with GET's headers (ETag, Content-Length, Accept-Ranges, Content-Type;
Starlette's FileResponse sends no body for HEAD) and record nothing: mail scanners and link
checkers send HEAD to a mailed link, and only a real download counts."""

from datetime import datetime
from functools import partial

import anyio
from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from adapters.materials_store import StoredPdf
from examflow.materials_server import (
    CurrentSite,
    SiteDigests,
    serve_cached_pdf,
    store_at,
    stored_pdf_for_site,
)
from examflow.settings import link_secret
from models.domain import StageCode
from models.facts import record_fact
from models.links import KIND_FACTS, token_ok
from models.portal_access import record_action
from models.site_materials import read_site
from models.sitting_calendar import Window
from models.sittings import UnknownSittingError, get_sitting
from portal.auth import SignedIn, client_address, own_school, signed_in
from portal.context import Portal, portal_of
from portal.events import emit_school_acted
from portal.routes.sitting import sitting_or_404

router = APIRouter()


# A download's CPU-bound part (the site's current data read from the database and built:
# about 5 ms of a core at 300 candidates) runs on a few threads of its own, not on
# the 40 that FastAPI's sync routes and Starlette's file streaming share: 200 downloads at
# once had 40 threads contending for the GIL and the streaming's file reads queued behind
# them (benchmarks/materials.py --downloads 200).
SITE_DATA_THREADS = 2


def link_secret_of(request: Request) -> bytes:
    """The links' secret, read once per app as the portal reads its other settings
    (portal.context.Portal): reading it (the environment, then <home>/link-secret) cost
    1.4 ms of each download. Changing it takes a restart, as any setting does."""
    state = request.app.state
    if getattr(state, "link_secret", None) is None:
        state.link_secret = link_secret()
    secret: bytes = state.link_secret
    return secret


def is_download(request: Request) -> bool:
    """A GET fetches the file; a HEAD only asks about it (a scanner, a link checker)."""
    return request.method != "HEAD"


def site_data_threads(request: Request) -> anyio.CapacityLimiter:
    """The app's threads for reading a site's data (one set per app, made in its loop)."""
    state = request.app.state
    if getattr(state, "site_data_threads", None) is None:
        state.site_data_threads = anyio.CapacityLimiter(SITE_DATA_THREADS)
    limiter: anyio.CapacityLimiter = state.site_data_threads
    return limiter


def site_digests(request: Request) -> SiteDigests:
    """The app's memo of sites' digests (one per worker process)."""
    state = request.app.state
    if getattr(state, "site_digests", None) is None:
        state.site_digests = SiteDigests()
    digests: SiteDigests = state.site_digests
    return digests


def current_site(portal: Portal, digests: SiteDigests, sitting: str, site: str) -> CurrentSite:
    """The site as its data is now: the digest of that data is the stored file's key, so a
    re-arrangement, a changed room or a late registration is never answered with the old
    file. Raises 404 for an unknown sitting."""
    try:
        with portal.db() as session:
            row = get_sitting(session, sitting)
            reading = read_site(session, row, site)
    except UnknownSittingError:
        raise HTTPException(status_code=404) from None
    return digests.current(row, reading)


def stored_and_recorded(
    portal: Portal, site: CurrentSite, site_code: str, kind: str, source: str | None
) -> StoredPdf:
    """The stored file (rendered now only if missing), and the site's fact recorded unless
    `source` is None (a HEAD)."""
    stored = stored_pdf_for_site(store_at(portal.settings.materials_store), site, kind)
    if source is not None:
        try:
            with portal.db() as session:
                fact, now = KIND_FACTS[kind], portal.now()
                record_fact(session, site.sitting_code, site_code, fact, now, source=source)
        except IntegrityError:
            pass  # a download at the same moment recorded this fact first: it holds either way
    return stored


async def _pdf(
    request: Request, portal: Portal, sitting: str, site: str, kind: str, source: str
) -> Response:
    """The stored file (rendered ahead by the materials stage), streamed with its ETag; a
    download (not a HEAD) records the site's fact."""
    read = partial(current_site, portal, site_digests(request), sitting, site)
    current = await to_thread.run_sync(read, limiter=site_data_threads(request))
    # the default threads: a file missing from the store is rendered here, for a second or
    # two, which must not hold up other sites' reads
    recorded = partial(
        stored_and_recorded, portal, current, site, kind, source if is_download(request) else None
    )
    stored = await to_thread.run_sync(recorded)
    return serve_cached_pdf(request.headers, stored, f"{sitting}-{site}-{kind}.pdf")


# FastAPI's routes answer only the methods named (Starlette's own add HEAD to GET)
@router.api_route("/materials/{sitting}/{site}/{kind}.pdf", methods=["GET", "HEAD"])
async def signed_link_download(
    request: Request, sitting: str, site: str, kind: str, token: str = ""
) -> Response:
    if kind not in KIND_FACTS:
        raise HTTPException(status_code=404)
    if not token_ok(link_secret_of(request), sitting, site, token):
        raise HTTPException(status_code=403, detail="this link is not valid for this site")
    return await _pdf(request, portal_of(request), sitting, site, kind, "download")


@router.api_route(
    "/schools/{school_code}/sittings/{sitting_code}/materials/{kind}.pdf", methods=["GET", "HEAD"]
)
async def site_download(
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
    window = await to_thread.run_sync(partial(materials_window, portal, sitting_code))
    if not window.contains(as_of):
        raise HTTPException(status_code=409, detail="下载物料的时间窗口未开放")
    source = f"portal:{user.contact}"
    response = await _pdf(request, portal, sitting_code, user.school_code, kind, source)
    if not is_download(request):
        return response
    client = client_address(request)
    audit = partial(record_download, portal, user, sitting_code, kind, as_of, client)
    await to_thread.run_sync(audit)
    background.add_task(
        emit_school_acted, sitting_code, StageCode.materials, f"download:{kind}", user.school_code
    )
    return response


def materials_window(portal: Portal, sitting_code: str) -> Window:
    """The sitting's materials window; 404 for an unknown sitting."""
    with portal.db() as session:
        return sitting_or_404(session, sitting_code).spec.window(StageCode.materials)


def record_download(
    portal: Portal, user: SignedIn, sitting_code: str, kind: str, as_of: datetime, client: str
) -> None:
    """The audit row of a download from the site's page."""
    with portal.db() as session:
        record_action(
            session,
            sitting_code=sitting_code,
            school_code=user.school_code,
            contact=user.contact,
            action=f"download:{kind}",
            as_of=as_of,
            client=client,
        )
