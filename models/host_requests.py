"""A school without a site asks a site to host its candidates (借考); the site accepts or
declines. Accepting records the same agreement as ops' ``examflow sites agree``."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam
from sqlmodel import Field, Session, SQLModel, col, select

from models.domain import in_utc
from models.problems import NotTheirsError
from models.schools import School, SiteAgreement, SiteRuleError, agree_to_host
from models.sitting_calendar import SittingSpec


class HostDecision(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"


HOST_DECISION_LABELS_ZH = {
    HostDecision.pending: "待考点答复",
    HostDecision.accepted: "已同意",
    HostDecision.declined: "已拒绝",
}


class HostRequest(SQLModel, table=True):
    """One school's request to one site for one sitting, and the site's answer."""

    id: int | None = Field(default=None, primary_key=True)
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    guest_code: str = Field(foreign_key="school.code", index=True)
    host_code: str = Field(foreign_key="school.code", index=True)
    requested_at: datetime
    requested_by: str = Field(description="who asked: the contact address, or 'cli'")
    decision: str = HostDecision.pending.value
    decided_at: datetime | None = None
    decided_by: str = ""


class UnknownHostRequestError(SiteRuleError, NotTheirsError):
    """No such hosting request addressed to this site (none, or another site's)."""


def _open_for(spec: SittingSpec, as_of: datetime, what: str) -> None:
    close = spec.registration_closes_at
    if as_of > close:
        raise SiteRuleError(f"{what} for {spec.code} closed with registration at {close}")


def request_host(
    session: Session, spec: SittingSpec, guest_code: str, host_code: str, as_of: datetime, by: str
) -> HostRequest:
    """``guest_code`` (not a site) asks site ``host_code``; one open request per pair."""
    _open_for(spec, as_of, "hosting requests")
    guest, host = session.get(School, guest_code), session.get(School, host_code)
    if guest is None:
        raise SiteRuleError(f"unknown school {guest_code!r}")
    if guest.is_site:
        raise SiteRuleError(f"{guest_code} is a site and hosts its own candidates")
    if host is None or not host.is_site:
        raise SiteRuleError(f"{host_code!r} is not a site")
    agreed = session.exec(
        select(SiteAgreement).where(
            SiteAgreement.sitting_code == spec.code,
            SiteAgreement.host_code == host_code,
            SiteAgreement.guest == guest_code,
        )
    ).first()
    if agreed is not None:
        raise SiteRuleError(f"{host_code} already hosts {guest_code} for {spec.code}")
    pending = session.exec(
        select(HostRequest).where(
            HostRequest.sitting_code == spec.code,
            HostRequest.guest_code == guest_code,
            HostRequest.host_code == host_code,
            HostRequest.decision == HostDecision.pending.value,
        )
    ).first()
    if pending is not None:
        raise SiteRuleError(f"{guest_code} already asked {host_code}; waiting for its answer")
    request = HostRequest(
        sitting_code=spec.code,
        guest_code=guest_code,
        host_code=host_code,
        requested_at=in_utc(as_of),
        requested_by=by,
    )
    session.add(request)
    session.flush()
    return request


def decide_host_request(
    session: Session,
    spec: SittingSpec,
    request_id: int,
    host_code: str,
    accept: bool,
    as_of: datetime,
    by: str,
) -> HostRequest:
    """The host answers a pending request addressed to it; accepting records the agreement
    (agree_to_host, as `examflow sites agree`)."""
    request = session.get(HostRequest, request_id)
    if request is None or request.host_code != host_code or request.sitting_code != spec.code:
        raise UnknownHostRequestError(f"no hosting request {request_id} to {host_code}")
    if request.decision != HostDecision.pending.value:
        raise SiteRuleError(f"hosting request {request_id} was already answered")
    _open_for(spec, as_of, "hosting agreements")
    if accept:
        agree_to_host(session, spec, host_code, request.guest_code, as_of)
    request.decision = (HostDecision.accepted if accept else HostDecision.declined).value
    request.decided_at, request.decided_by = in_utc(as_of), by
    session.add(request)
    session.flush()
    return request


# A school's requests, read on every page of the school portal: built once, as a statement
# built per call costs more (its cache key) than running it.
_REQUESTS = select(HostRequest).where(HostRequest.sitting_code == bindparam("sitting"))
_FROM_GUEST = _REQUESTS.where(HostRequest.guest_code == bindparam("code")).order_by(
    col(HostRequest.id)
)
_TO_HOST = _REQUESTS.where(HostRequest.host_code == bindparam("code")).order_by(col(HostRequest.id))


def host_requests(
    session: Session, sitting_code: str, *, guest: str | None = None, host: str | None = None
) -> list[HostRequest]:
    """Requests of a sitting from ``guest`` or to ``host``, oldest first."""
    if (guest is None) != (host is None):
        one_side = _FROM_GUEST if guest is not None else _TO_HOST
        params = {"sitting": sitting_code, "code": guest or host}
        return list(session.exec(one_side, params=params))
    query = select(HostRequest).where(HostRequest.sitting_code == sitting_code)
    if guest is not None:
        query = query.where(HostRequest.guest_code == guest)
    if host is not None:
        query = query.where(HostRequest.host_code == host)
    return list(session.exec(query.order_by(col(HostRequest.id))))
