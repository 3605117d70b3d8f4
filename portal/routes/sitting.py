"""A school's page per sitting: the seven stages, what it still owes, what it can do now."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import bindparam, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.arrangement import SeatAssignment
from models.attendance import attendance_window
from models.condition import Missing, describe_zh
from models.domain import SOCIAL, STAGE_LABELS_ZH, StageCode
from models.facts import FACT_LABELS_ZH, FactError, SiteFact
from models.host_requests import HOST_DECISION_LABELS_ZH, host_requests
from models.links import KIND_FACTS
from models.portal_access import (
    SCHOOL_STAGE_LABELS_ZH,
    ActionWindow,
    PortalAudit,
    SchoolStageState,
    action_window,
    record_action,
    school_stage_state,
)
from models.problems import NotTheirsError, RejectedFileError, RowProblem
from models.publicity import results_by_school
from models.registration import Registration, WithdrawError
from models.resident_id import mask_resident_id
from models.schools import School, SiteAgreement, SiteApplication, SiteRuleError
from models.scores import ReviewItem, ReviewRequest, ScoreError, publication_of
from models.sitting_calendar import SittingSpec, Window
from models.sittings import Sitting, UnknownSittingError, get_sitting, list_sittings
from models.stages import SITE_FACTS, SiteFactsRead, items_for_party
from portal.auth import SignedIn, client_address, own_school, signed_in
from portal.context import portal_of
from portal.events import emit_school_acted

router = APIRouter()

# The facts a site records with a button, by the stage whose window allows it. The download
# facts are recorded by downloading (routes/materials.py).
BUTTON_FACTS: dict[StageCode, tuple[SiteFact, ...]] = {
    stage: tuple(f for f in facts if f not in KIND_FACTS.values())
    for stage, facts in SITE_FACTS.items()
    if stage is not StageCode.exam
}
TRAINED_ACTIONS = {f"fact:{f.value}" for f in SITE_FACTS[StageCode.training]}
MATERIAL_LABELS_ZH = {
    "tickets": "准考证",
    "labels": "桌签",
    "door_signs": "门贴",
    "sign_in_sheets": "签到表",
}


@dataclass(frozen=True)
class StageView:
    stage: StageCode
    label: str
    window: Window
    state: SchoolStageState
    state_label: str
    owed: list[Missing]
    action: ActionWindow

    @property
    def owed_text(self) -> list[str]:
        """What it owes, worded in Chinese for the page."""
        return [describe_zh(m) for m in self.owed]


@dataclass(frozen=True)
class RegistrationRow:
    id: int
    name: str
    masked_id: str
    level: str
    site_code: str


@dataclass(frozen=True)
class GuestRow:
    """A host site's guest: name, school, seat; never the ID number."""

    name: str
    school_code: str
    level: str
    room: str
    seat: int
    ticket_number: str


def sitting_or_404(session: Session, code: str) -> Sitting:
    try:
        return get_sitting(session, code)
    except UnknownSittingError:
        raise HTTPException(status_code=404) from None


def stage_views(
    session: Session,
    sitting: Sitting,
    school_code: str,
    as_of: datetime,
    read: SiteFactsRead | None = None,
) -> list[StageView]:
    """Each stage with this school's state and exactly what it (or its site) still owes,
    from the same rule functions as the checkpoints' artifacts and reminders."""
    owed = items_for_party(session, sitting, school_code, as_of, read)
    views = []
    for stage in StageCode:
        window = sitting.spec.window(stage)
        mine = owed.get(stage, [])
        state = school_stage_state(window, mine, as_of)
        views.append(
            StageView(
                stage=stage,
                label=STAGE_LABELS_ZH[stage],
                window=window,
                state=state,
                state_label=SCHOOL_STAGE_LABELS_ZH[state],
                owed=mine,
                action=action_window(window, as_of),
            )
        )
    return views


# The page's own reads, each made on every page view: built once with bind parameters, as a
# statement built per call costs more (its cache key) than running it.
_REGISTRATIONS_OF = (
    sa_select(
        col(Registration.id),
        col(Registration.name),
        col(Registration.id_number),
        col(Registration.level),
        col(Registration.site_code),
    )
    .where(
        col(Registration.sitting_code) == bindparam("sitting"),
        col(Registration.school_code) == bindparam("school"),
    )
    .order_by(col(Registration.id))
)
_GUESTS_OF = (
    sa_select(
        col(Registration.name),
        col(Registration.school_code),
        col(Registration.level),
        col(SeatAssignment.room),
        col(SeatAssignment.seat),
        col(SeatAssignment.ticket_number),
    )
    .join(
        SeatAssignment,
        col(SeatAssignment.registration_id) == col(Registration.id),
        isouter=True,
    )
    .where(
        col(Registration.sitting_code) == bindparam("sitting"),
        col(Registration.site_code) == bindparam("site"),
        or_(
            col(Registration.school_code).is_(None),
            col(Registration.school_code) != bindparam("site"),
        ),
    )
    .order_by(col(Registration.id))
)
_TRAINED = (
    sa_select(col(PortalAudit.action), col(PortalAudit.detail))
    .where(
        col(PortalAudit.sitting_code) == bindparam("sitting"),
        col(PortalAudit.school_code) == bindparam("site"),
        col(PortalAudit.action).in_(sorted(TRAINED_ACTIONS)),
    )
    .order_by(col(PortalAudit.at), col(PortalAudit.id))
)
_REVIEWS_OF = (
    select(ReviewRequest)
    .where(
        ReviewRequest.sitting_code == bindparam("sitting"),
        ReviewRequest.school_code == bindparam("school"),
    )
    .order_by(col(ReviewRequest.id))
)
_SITES_IN = (
    sa_select(col(School.code), col(School.name))
    .where(col(School.is_site).is_(True), col(School.province) == bindparam("province"))
    .order_by(col(School.code))
)
_APPLIED = select(SiteApplication).where(
    SiteApplication.sitting_code == bindparam("sitting"),
    SiteApplication.school_code == bindparam("school"),
)
_HOSTS_OF = select(SiteAgreement.host_code).where(
    SiteAgreement.sitting_code == bindparam("sitting"), SiteAgreement.guest == bindparam("school")
)


def registrations_of(
    session: Session, sitting_code: str, school_code: str
) -> list[RegistrationRow]:
    rows = session.execute(
        _REGISTRATIONS_OF, {"sitting": sitting_code, "school": school_code}
    ).all()
    return [RegistrationRow(r or 0, n, mask_resident_id(i), lv, s) for r, n, i, lv, s in rows]


def guests_of(session: Session, sitting_code: str, site_code: str) -> list[GuestRow]:
    """Candidates of other schools (or social ones) seated at this site: no ID numbers."""
    rows = session.execute(_GUESTS_OF, {"sitting": sitting_code, "site": site_code}).all()
    return [
        GuestRow(n, sc or SOCIAL, lv, room or "", seat or 0, ticket or "")
        for n, sc, lv, room, seat, ticket in rows
    ]


def trained_names(session: Session, sitting_code: str, site_code: str) -> dict[str, str]:
    """Who attended each training, as the site recorded it (the audit's detail)."""
    rows = session.execute(_TRAINED, {"sitting": sitting_code, "site": site_code}).all()
    return {action.removeprefix("fact:"): detail for action, detail in rows if detail}


def results_of(session: Session, sitting_code: str, school_code: str) -> list[dict[str, object]]:
    """The school's candidates' results once published (ID numbers masked), else none."""
    if publication_of(session, sitting_code) is None:
        return []
    return results_by_school(session, sitting_code, school_code).get(school_code, [])


@dataclass(frozen=True)
class ReviewView:
    id: int
    filed_at: datetime
    items: list[ReviewItem]

    @property
    def resolved(self) -> bool:
        return all(i.resolved_at is not None for i in self.items)


def reviews_of(session: Session, sitting_code: str, school_code: str) -> list[ReviewView]:
    views = []
    for r in session.exec(_REVIEWS_OF, params={"sitting": sitting_code, "school": school_code}):
        assert r.id is not None
        items = list(session.exec(select(ReviewItem).where(ReviewItem.request_id == r.id)))
        views.append(ReviewView(r.id, r.filed_at, items))
    return views


@dataclass(frozen=True)
class SiteChoice:
    code: str
    name: str


def site_choices(session: Session, province: str) -> list[SiteChoice]:
    """The sites offered to a school that asks to be hosted: those of its province (schools
    borrow a site near them; any other site's code can still be typed in). A national list
    would be some 1,500 rows read and sent on every page of every school without a site."""
    rows = session.execute(_SITES_IN, {"province": province}).all()
    return [SiteChoice(code, name) for code, name in rows]


def page_context(
    session: Session, sitting: Sitting, user: SignedIn, as_of: datetime
) -> dict[str, object]:
    """Everything the sitting page shows the signed-in school: its stages and what it owes,
    its registrations, site requests, guests, results and reviews (its own rows only)."""
    code, is_site = user.school_code, user.is_site
    read = SiteFactsRead(session, sitting.code, code)  # the stages' facts are the page's too
    mine = {"sitting": sitting.code, "school": code}
    applied = session.exec(_APPLIED, params=mine).first()
    hosts = session.exec(_HOSTS_OF, params=mine)
    return {
        "stages": stage_views(session, sitting, code, as_of, read),
        "registrations": registrations_of(session, sitting.code, code),
        "held": read.held(as_of).get(code, set()),
        "applied": applied,
        "is_pilot": user.is_pilot,
        "sites": [] if is_site else site_choices(session, user.province),
        "hosts": list(hosts),
        "asked": host_requests(session, sitting.code, guest=code),
        "incoming": host_requests(session, sitting.code, host=code) if is_site else [],
        "guests": guests_of(session, sitting.code, code) if is_site else [],
        "attendance": action_window(attendance_window(sitting.spec), as_of) if is_site else None,
        "trained": trained_names(session, sitting.code, code) if is_site else {},
        "results": results_of(session, sitting.code, code),
        "reviews": reviews_of(session, sitting.code, code),
    }


def render_sitting(
    request: Request,
    user: SignedIn,
    sitting_code: str,
    *,
    status_code: int = 200,
    problems: list[RowProblem] | None = None,
    message: str = "",
    error: str = "",
    errors_form: str = "",
    errors_xlsx: dict[str, str] | None = None,
) -> Response:
    """The sitting's page; ``problems`` (a refused file's rows) or ``error`` (a refused
    action) shown at the top; ``errors_xlsx``: the download of its problem rows (``href``,
    ``name``), else ``errors_form``: offer the form that sends the file again for them."""
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        context = page_context(session, sitting, user, as_of)
    return portal.page(
        request,
        "sitting.html",
        status_code=status_code,
        sitting=sitting,
        button_facts=BUTTON_FACTS if user.is_site else {},
        fact_labels=FACT_LABELS_ZH,
        materials=MATERIAL_LABELS_ZH if user.is_site else {},
        decisions=HOST_DECISION_LABELS_ZH,
        problems=problems or [],
        message=message,
        error=error,
        errors_form=errors_form,
        errors_xlsx=errors_xlsx or {},
        as_of=as_of,
        **context,
    )


# Refusals of the domain functions the portal calls: shown on the page, nothing changed.
DOMAIN_REFUSALS: tuple[type[Exception], ...] = (
    SiteRuleError,
    WithdrawError,
    ScoreError,
    FactError,
)


def act(
    request: Request,
    background: BackgroundTasks,
    user: SignedIn,
    sitting_code: str,
    stage: StageCode,
    action: str,
    do: Callable[[Session, Sitting, datetime], tuple[str, str]],
    window_of: Callable[[SittingSpec], Window] | None = None,
) -> Response:
    """One school action: only while ``stage``'s window is open (``window_of`` the sitting's,
    if the action has its own: 409 otherwise); ``do``
    calls the domain function in one transaction with the audit row, returning (audit
    detail, message); a refusal changes nothing and is shown on the page (422), except one
    naming a row that is not this school's (another school's id, or none), which answers 404
    as another school's URL does; the stage is woken by an event."""
    portal = portal_of(request)
    as_of = portal.now()
    try:
        with portal.db() as session:
            sitting = sitting_or_404(session, sitting_code)
            window = sitting.spec.window(stage) if window_of is None else window_of(sitting.spec)
            if not window.contains(as_of):
                raise HTTPException(status_code=409, detail="当前不在该事项的办理时间内")
            detail, message = do(session, sitting, as_of)
            record_action(
                session,
                sitting_code=sitting.code,
                school_code=user.school_code,
                contact=user.contact,
                action=action,
                detail=detail,
                as_of=as_of,
                client=client_address(request),
            )
    except NotTheirsError:  # before the refusals: it is also one of them
        raise HTTPException(status_code=404) from None
    except DOMAIN_REFUSALS as exc:
        return render_sitting(request, user, sitting_code, status_code=422, error=str(exc))
    except RejectedFileError as exc:
        return render_sitting(request, user, sitting_code, status_code=422, problems=exc.problems)
    background.add_task(emit_school_acted, sitting_code, stage, action, user.school_code)
    return render_sitting(request, user, sitting_code, message=message)


@router.get("/schools/{school_code}")
def sittings_page(
    request: Request, school_code: str, user: SignedIn = Depends(signed_in)
) -> Response:
    own_school(user, school_code)
    portal = portal_of(request)
    with portal.db() as session:
        sittings = list_sittings(session)
    return portal.page(request, "sittings.html", sittings=sittings)


@router.get("/schools/{school_code}/sittings/{sitting_code}")
def sitting_page(
    request: Request, school_code: str, sitting_code: str, user: SignedIn = Depends(signed_in)
) -> Response:
    own_school(user, school_code)
    return render_sitting(request, user, sitting_code)
