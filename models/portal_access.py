"""Who may act in the school portal: sign-in links, sessions, sign-in rate limits, the audit.

A school's registered contact addresses are its identity. A link token (256 random bits) is
stored only as its SHA-256; a session likewise. Everything takes ``as_of``: no clock here.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlencode

from sqlalchemy import bindparam, func, update
from sqlmodel import Field, Session, SQLModel, col, select

from models.condition import Missing
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.schools import School
from models.sitting_calendar import Window
from models.table import Table

REQUESTED_LINK_TTL = timedelta(minutes=30)
SESSION_TTL = timedelta(hours=12)
SIGNIN_REQUESTS_PER_HOUR = 5
S = TypeVar("S")


class PortalLink(SQLModel, table=True):
    """A sign-in link: for one school (and optionally one sitting and stage), until it expires."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    school_code: str = Field(foreign_key="school.code", index=True)
    contact: str = Field(description="the address the link was sent to (or ops' choice)")
    sitting_code: str | None = None
    stage: str | None = None
    single_use: bool
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class PortalSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random id, this row its hash."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str
    school_code: str = Field(foreign_key="school.code", index=True)
    contact: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None


class SignInRequest(SQLModel, table=True):
    """One request for a sign-in link (registered or not), for the hourly limits.

    The address is kept as a hash: strangers' typing is nobody's record.
    """

    id: int | None = Field(default=None, primary_key=True)
    school_code: str = Field(max_length=64, index=True)
    address_hash: str = Field(max_length=64, index=True)
    requested_at: datetime = Field(index=True)


class PortalAudit(SQLModel, table=True):
    """One action a school took in the portal."""

    id: int | None = Field(default=None, primary_key=True)
    sitting_code: str = Field(index=True)
    school_code: str = Field(index=True)
    contact: str
    action: str
    detail: str = ""
    at: datetime
    client: str = ""


def new_token() -> str:
    """A fresh random token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def portal_signin_url(base_url: str, token: str) -> str:
    """The link a school follows to sign in (GET shows 登录; only the POST signs in)."""
    return f"{base_url.rstrip('/')}/login?{urlencode({'t': token})}"


# A sign-in link's token in a message body (portal_signin_url's shape), and what a delivered
# message keeps in its place: the outbox holds no usable token once the mail went out.
_SIGNIN_TOKEN = re.compile(r"(/login\?t=)[A-Za-z0-9_\-]+")
LINK_SENT = "（链接已发送，此处不再保存）"


def without_signin_tokens(body: str) -> str:
    """``body`` with the token of every sign-in link in it replaced by ``LINK_SENT``."""
    return _SIGNIN_TOKEN.sub(lambda m: m.group(1) + LINK_SENT, body)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().casefold().encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# -- who is a school's contact ------------------------------------------------------------


def registered_contacts(school: School) -> list[str]:
    return [a for a in (school.affairs_email, school.tech_email) if a]


def is_registered_contact(session: Session, school_code: str, address: str) -> bool:
    """True if ``address`` is one of the school's registered contact addresses."""
    school = session.get(School, school_code.strip())
    if school is None:
        return False
    wanted = address.strip().casefold()
    return any(hmac.compare_digest(a.casefold(), wanted) for a in registered_contacts(school))


def note_signin_request(
    session: Session,
    school_code: str,
    address: str,
    as_of: datetime,
    limit: int = SIGNIN_REQUESTS_PER_HOUR,
) -> bool:
    """Count a request for a link; False (and nothing noted) when the school or the address
    already asked ``limit`` times in the hour before ``as_of``."""
    since = _utc(as_of) - timedelta(hours=1)
    school_code, digest = school_code.strip(), _address_hash(address)
    for column, value in (
        (SignInRequest.school_code, school_code),
        (SignInRequest.address_hash, digest),
    ):
        n = session.exec(
            select(func.count())
            .select_from(SignInRequest)
            .where(column == value, col(SignInRequest.requested_at) > since)
        ).one()
        if n >= limit:
            return False
    session.add(
        SignInRequest(school_code=school_code, address_hash=digest, requested_at=_utc(as_of))
    )
    session.flush()
    return True


# -- links and sessions -------------------------------------------------------------------


def issue_link(
    session: Session,
    school_code: str,
    contact: str,
    as_of: datetime,
    *,
    expires_at: datetime,
    single_use: bool,
    sitting_code: str | None = None,
    stage: str | None = None,
) -> str:
    """Store a new link (its hash only) and return its token, to be mailed or printed once."""
    token, link = new_link(
        school_code,
        contact,
        as_of,
        expires_at=expires_at,
        single_use=single_use,
        sitting_code=sitting_code,
        stage=stage,
    )
    store_links(session, [link])
    return token


def new_link(
    school_code: str,
    contact: str,
    as_of: datetime,
    *,
    expires_at: datetime,
    single_use: bool,
    sitting_code: str | None = None,
    stage: str | None = None,
) -> tuple[str, PortalLink]:
    """A new link's token and its row (the hash only), not stored yet: ``store_links``."""
    token = new_token()
    link = PortalLink(
        token_hash=token_hash(token),
        school_code=school_code,
        contact=contact,
        sitting_code=sitting_code,
        stage=stage,
        single_use=single_use,
        created_at=_utc(as_of),
        expires_at=_utc(expires_at),
    )
    return token, link


def store_links(session: Session, links: list[PortalLink]) -> None:
    """Store links made by ``new_link``, all in one flush (the caller commits)."""
    session.add_all(links)
    session.flush()


def valid_link(session: Session, token: str, as_of: datetime) -> PortalLink | None:
    """The link if it exists, has not expired and (if single-use) was not used; else None."""
    link = session.exec(
        select(PortalLink).where(PortalLink.token_hash == token_hash(token))
    ).first()
    if link is None or _utc(as_of) > _utc(link.expires_at):
        return None
    if link.single_use and link.used_at is not None:
        return None
    return link


def use_link(session: Session, token: str, as_of: datetime) -> PortalLink | None:
    """Redeem a link: a single-use link is marked used, atomically (of two concurrent uses
    only one succeeds). None if the link is not valid now."""
    link = valid_link(session, token, as_of)
    if link is None:
        return None
    if link.single_use:
        marked = session.connection().execute(
            update(PortalLink)
            .where(col(PortalLink.id) == link.id, col(PortalLink.used_at).is_(None))
            .values(used_at=_utc(as_of))
        )
        if marked.rowcount != 1:
            return None
        session.expire(link)
    return link


def open_session(session: Session, link: PortalLink, as_of: datetime) -> str:
    """A new session for the link's school and contact; returns the cookie's token."""
    token = new_token()
    session.add(
        PortalSession(
            token_hash=token_hash(token),
            csrf_token=new_token(),
            school_code=link.school_code,
            contact=link.contact,
            created_at=_utc(as_of),
            expires_at=_utc(as_of) + SESSION_TTL,
        )
    )
    session.flush()
    return token


# Read by every signed-in request: built once, as a statement built per call costs more (its
# cache key) than running it.
_SESSION_BY_HASH = select(PortalSession).where(PortalSession.token_hash == bindparam("hash"))


def session_for(session: Session, token: str, as_of: datetime) -> PortalSession | None:
    row = session.exec(_SESSION_BY_HASH, params={"hash": token_hash(token)}).first()
    if row is None or row.ended_at is not None or _utc(as_of) > _utc(row.expires_at):
        return None
    return row


def end_session(session: Session, token: str, as_of: datetime) -> None:
    row = session_for(session, token, as_of)
    if row is not None:
        row.ended_at = _utc(as_of)
        session.add(row)


# -- the audit ----------------------------------------------------------------------------


def record_action(
    session: Session,
    *,
    sitting_code: str,
    school_code: str,
    contact: str,
    action: str,
    as_of: datetime,
    client: str = "",
    detail: str = "",
) -> PortalAudit:
    row = PortalAudit(
        sitting_code=sitting_code,
        school_code=school_code,
        contact=contact,
        action=action,
        detail=detail,
        at=_utc(as_of),
        client=client,
    )
    session.add(row)
    session.flush()
    return row


def audit_rows(
    session: Session, sitting_code: str, school_code: str | None = None
) -> list[PortalAudit]:
    query = select(PortalAudit).where(PortalAudit.sitting_code == sitting_code)
    if school_code is not None:
        query = query.where(PortalAudit.school_code == school_code)
    return list(session.exec(query.order_by(col(PortalAudit.at), col(PortalAudit.id))))


# -- what a school sees -------------------------------------------------------------------


def rows_of_other_schools(
    table: Table, school_code: str, key: str = "school_code"
) -> list[RowProblem]:
    """A school's upload may only name itself in column ``key``: every other row is refused."""
    label = "考点代码 (site_code)" if key == "site_code" else "学校代码 (school_code)"
    return [
        RowProblem(
            row,
            label,
            f"{values[key]!r} is not your school ({school_code}): "
            "a school uploads only its own rows",
        )
        for row, values in table.rows
        if values.get(key, "").strip() != school_code
    ]


def tickets_of_other_sites(session: Session, table: Table, site_code: str) -> list[RowProblem]:
    """A site's attendance sheet may only list tickets of its own rooms."""
    from models.arrangement import SeatAssignment

    own = set(
        session.exec(
            select(SeatAssignment.ticket_number).where(SeatAssignment.site_code == site_code)
        )
    )
    return [
        RowProblem(
            row,
            "准考证号 (ticket_number)",
            f"{values['ticket_number']!r} is not seated at {site_code}",
        )
        for row, values in table.rows
        if values.get("ticket_number", "").strip() not in own
    ]


def own_rows_only(importer: Importer[S], school_code: str, key: str = "school_code") -> Importer[S]:
    """``importer`` for one school's upload: every row must name that school in ``key``
    (``ticket_number``: a ticket seated at that site); other rows are refused beside the
    importer's own problems, all or nothing."""

    def check_and_store(session: Session, table: Table, upload: Upload) -> S:
        problems = (
            tickets_of_other_sites(session, table, school_code)
            if key == "ticket_number"
            else rows_of_other_schools(table, school_code, key)
        )
        try:
            summary = importer.check_and_store(session, table, upload)
        except RejectedFileError as exc:
            raise RejectedFileError(problems + exc.problems) from None
        if problems:
            raise RejectedFileError(problems)
        return summary

    return Importer(
        importer.kind,
        importer.columns,
        check_and_store,
        needs_sitting=importer.needs_sitting,
        refusals=importer.refusals,
    )


class SchoolStageState(StrEnum):
    not_started = "not_started"
    to_do = "to_do"
    done = "done"
    overdue = "overdue"


SCHOOL_STAGE_LABELS_ZH: dict[SchoolStageState, str] = {
    SchoolStageState.not_started: "未开始",
    SchoolStageState.to_do: "待办",
    SchoolStageState.done: "已完成",
    SchoolStageState.overdue: "已逾期",
}


def school_stage_state(window: Window, owed: list[Missing], as_of: datetime) -> SchoolStageState:
    """A school's state in a stage: not started before the window opens; overdue when it
    still owes something after the close; to do while it owes something; done when it owes
    nothing (whatever other schools and sites still owe)."""
    if not window.has_opened(as_of):
        return SchoolStageState.not_started
    if owed:
        return SchoolStageState.overdue if window.has_closed(as_of) else SchoolStageState.to_do
    return SchoolStageState.done


@dataclass(frozen=True)
class ActionWindow:
    """Whether an action is allowed now, and the window it is allowed in."""

    open: bool
    opens_at: datetime | None
    closes_at: datetime


def action_window(window: Window, as_of: datetime) -> ActionWindow:
    return ActionWindow(window.contains(as_of), window.opens_at, window.closes_at)
