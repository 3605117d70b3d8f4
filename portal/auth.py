"""Sessions and CSRF for the portal's requests (the rules and tables: models/portal_access)."""

import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import bindparam
from sqlmodel import select

from models.portal_access import SESSION_TTL, new_token, session_for
from models.schools import School
from portal.context import Portal, portal_of

SESSION_COOKIE = "examflow_session"
_SCHOOL = select(School).where(School.code == bindparam("code"))  # built once: every request
CSRF_COOKIE = "examflow_csrf"


class NotSignedIn(Exception):
    """No valid session: the app answers with the start page."""


@dataclass(frozen=True)
class SignedIn:
    """Who is acting: decided by the session row alone, checked on every query."""

    school_code: str
    school_name: str
    is_site: bool
    contact: str
    csrf: str
    is_pilot: bool = False
    province: str = ""


def signed_in(request: Request) -> SignedIn:
    """The request's school (a FastAPI dependency); NotSignedIn without a valid session."""
    portal = portal_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotSignedIn
    with portal.db() as session:
        row = session_for(session, token, portal.now())
        school = (
            session.exec(_SCHOOL, params={"code": row.school_code}).first()
            if row is not None
            else None
        )
        if row is None or school is None:
            raise NotSignedIn
        user = SignedIn(
            row.school_code,
            school.name,
            school.is_site,
            row.contact,
            row.csrf_token,
            school.is_pilot,
            school.province,
        )
    request.state.user, request.state.csrf = user, user.csrf
    return user


def own_school(user: SignedIn, school_code: str) -> None:
    """Another school's code in a URL or form is answered as if it did not exist."""
    if school_code != user.school_code:
        raise HTTPException(status_code=404)


def check_csrf(given: str, expected: str) -> None:
    if not given or not expected or not hmac.compare_digest(given, expected):
        raise HTTPException(status_code=403, detail="表单已失效，请返回上一页刷新后重试")


def anonymous_csrf(request: Request) -> str:
    """The CSRF token of a visitor who is not signed in (double-submit cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or new_token()
    request.state.csrf = token
    return token


def check_anonymous_csrf(request: Request, given: str) -> None:
    check_csrf(given, request.cookies.get(CSRF_COOKIE, ""))


def set_anonymous_csrf(response: Response, portal: Portal, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="lax", secure=portal.secure_cookies
    )


def set_session_cookie(response: Response, portal: Portal, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=portal.secure_cookies,
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""
