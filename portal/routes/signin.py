"""Signing in without passwords: ask for a link, open it, press 登录."""

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from models.portal_access import (
    REQUESTED_LINK_TTL,
    PortalLink,
    end_session,
    is_registered_contact,
    issue_link,
    note_signin_request,
    open_session,
    use_link,
    valid_link,
)
from models.schools import School
from portal.auth import (
    SESSION_COOKIE,
    SignedIn,
    anonymous_csrf,
    check_anonymous_csrf,
    check_csrf,
    set_anonymous_csrf,
    set_session_cookie,
    signed_in,
)
from portal.context import portal_of
from portal.mail import deliver_signin_mail, queue_signin_mail

router = APIRouter()
MAX_FIELD = 254


@router.get("/")
def start(request: Request) -> Response:
    portal = portal_of(request)
    token = anonymous_csrf(request)
    response = portal.page(request, "start.html", school_code="", address="", sent=False)
    set_anonymous_csrf(response, portal, token)
    return response


@router.post("/signin")
def request_link(
    request: Request,
    background: BackgroundTasks,
    school_code: str = Form("", max_length=MAX_FIELD),
    address: str = Form("", max_length=MAX_FIELD),
    csrf: str = Form(""),
) -> Response:
    """Mail a link only to a registered contact; answer the same either way."""
    portal = portal_of(request)
    check_anonymous_csrf(request, csrf)
    request.state.csrf = csrf
    code, address = school_code.strip(), address.strip()
    as_of = portal.now()
    with portal.db() as session:
        allowed = note_signin_request(session, code, address, as_of)
        if allowed and is_registered_contact(session, code, address):
            school = session.get(School, code)
            assert school is not None
            token = issue_link(
                session,
                code,
                address,
                as_of,
                expires_at=as_of + REQUESTED_LINK_TTL,
                single_use=True,
            )
            link = valid_link(session, token, as_of)
            assert link is not None and link.id is not None
            minutes = int(REQUESTED_LINK_TTL.total_seconds() // 60)
            ids = queue_signin_mail(
                portal, session, school, address, token, link.id, as_of, minutes
            )
            background.add_task(deliver_signin_mail, portal, ids)
    if not allowed:
        return portal.page(request, "too_many.html", status_code=429)
    return portal.page(request, "start.html", school_code=code, address=address, sent=True)


def _link_page(request: Request, token: str, link: PortalLink | None) -> Response:
    portal = portal_of(request)
    if link is None:
        return portal.page(request, "link_invalid.html", status_code=410)
    csrf = anonymous_csrf(request)
    response = portal.page(request, "link.html", token=token, school_code=link.school_code)
    set_anonymous_csrf(response, portal, csrf)
    return response


@router.get("/login")
def show_link(request: Request, t: str = "") -> Response:
    """A GET (a person, or a mail scanner) only shows the 登录 button: nothing is used up."""
    portal = portal_of(request)
    with portal.db() as session:
        link = valid_link(session, t, portal.now()) if t else None
    return _link_page(request, t, link)


@router.post("/login")
def sign_in(request: Request, t: str = Form(""), csrf: str = Form("")) -> Response:
    portal = portal_of(request)
    check_anonymous_csrf(request, csrf)
    as_of = portal.now()
    with portal.db() as session:
        link = use_link(session, t, as_of) if t else None
        if link is None:
            return portal.page(request, "link_invalid.html", status_code=410)
        session_token = open_session(session, link, as_of)
        target = f"/schools/{link.school_code}"
        if link.sitting_code:  # a mailed link opens the sitting's page at the mail's stage
            target += f"/sittings/{link.sitting_code}"
            target += f"#stage-{link.stage}" if link.stage else ""
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, portal, session_token)
    return response


@router.post("/logout")
def sign_out(
    request: Request, user: SignedIn = Depends(signed_in), csrf: str = Form("")
) -> Response:
    portal = portal_of(request)
    check_csrf(csrf, user.csrf)
    with portal.db() as session:
        end_session(session, request.cookies.get(SESSION_COOKIE, ""), portal.now())
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
