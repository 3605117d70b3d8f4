"""A school's page per sitting: the seven stages, what it still owes, what it can do now."""

from dataclasses import dataclass
from datetime import datetime

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    File,
    Form,
    HTTPException,
    Request,
    UploadFile,
)
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from adapters.tabular import MAX_BYTES
from examflow.importing import ImportRefusedError, import_file
from models.condition import Missing
from models.domain import STAGE_LABELS_ZH, StageCode
from models.facts import FACT_LABELS_ZH, SiteFact, facts_by_site, record_fact
from models.links import KIND_FACTS
from models.portal_access import (
    SCHOOL_STAGE_LABELS_ZH,
    ActionWindow,
    SchoolStageState,
    action_window,
    own_rows_only,
    record_action,
    school_stage_state,
)
from models.problems import RowProblem
from models.registration import REGISTRATION_IMPORTER, Registration
from models.resident_id import mask_resident_id
from models.sitting_calendar import Window
from models.sittings import Sitting, UnknownSittingError, get_sitting, list_sittings
from models.stages import SITE_FACTS, items_for_party
from portal.auth import SignedIn, check_csrf, client_address, own_school, signed_in
from portal.context import Portal, portal_of
from portal.events import emit_school_acted

router = APIRouter()

# The facts a site records with a button, by the stage whose window allows it. The download
# facts are recorded by downloading (routes/materials.py).
BUTTON_FACTS: dict[StageCode, tuple[SiteFact, ...]] = {
    stage: tuple(f for f in facts if f not in KIND_FACTS.values())
    for stage, facts in SITE_FACTS.items()
    if stage is not StageCode.exam
}
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


@dataclass(frozen=True)
class RegistrationRow:
    name: str
    masked_id: str
    level: str
    site_code: str


def sitting_or_404(session: Session, code: str) -> Sitting:
    try:
        return get_sitting(session, code)
    except UnknownSittingError:
        raise HTTPException(status_code=404) from None


def stage_views(
    session: Session, sitting: Sitting, school_code: str, as_of: datetime
) -> list[StageView]:
    """Each stage with this school's state and exactly what it (or its site) still owes,
    from the same rule functions as the checkpoints' artifacts and reminders."""
    owed = items_for_party(session, sitting, school_code, as_of)
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


def registrations_of(
    session: Session, sitting_code: str, school_code: str
) -> list[RegistrationRow]:
    rows = session.exec(
        select(
            Registration.name, Registration.id_number, Registration.level, Registration.site_code
        )
        .where(Registration.sitting_code == sitting_code, Registration.school_code == school_code)
        .order_by(col(Registration.id))
    )
    return [RegistrationRow(n, mask_resident_id(i), lv, s) for n, i, lv, s in rows]


def render_sitting(
    request: Request,
    user: SignedIn,
    sitting_code: str,
    *,
    status_code: int = 200,
    problems: list[RowProblem] | None = None,
    message: str = "",
) -> Response:
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        views = stage_views(session, sitting, user.school_code, as_of)
        registrations = registrations_of(session, sitting.code, user.school_code)
        held = facts_by_site(session, sitting.code).get(user.school_code, set())
    return portal.page(
        request,
        "sitting.html",
        status_code=status_code,
        sitting=sitting,
        stages=views,
        registrations=registrations,
        held=held,
        button_facts=BUTTON_FACTS if user.is_site else {},
        fact_labels=FACT_LABELS_ZH,
        materials=MATERIAL_LABELS_ZH if user.is_site else {},
        problems=problems or [],
        message=message,
        as_of=as_of,
    )


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


def _acted(
    portal: Portal,
    session: Session,
    request: Request,
    user: SignedIn,
    sitting: str,
    action: str,
    detail: str,
    as_of: datetime,
) -> None:
    record_action(
        session,
        sitting_code=sitting,
        school_code=user.school_code,
        contact=user.contact,
        action=action,
        detail=detail,
        as_of=as_of,
        client=client_address(request),
    )


@router.post("/schools/{school_code}/sittings/{sitting_code}/registration")
def upload_registration(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    file: UploadFile = File(...),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The school's registration file, checked whole by the CLI's rules plus one: every row
    is this school's own. Any problem stores nothing and is listed by row and field."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    portal = portal_of(request)
    as_of = portal.now()
    data = file.file.read(MAX_BYTES + 1)  # one byte over the limit is enough to refuse
    file_name = file.filename or "upload.csv"
    with portal.db() as session:
        window = sitting_or_404(session, sitting_code).spec.window(StageCode.registration)
    if not window.contains(as_of):
        raise HTTPException(status_code=409, detail="报名时间窗口未开放")
    try:
        # The CLI's importer, in one transaction, with one more rule: every row is this
        # school's own. Any problem from either stores nothing.
        imported = import_file(
            own_rows_only(REGISTRATION_IMPORTER, user.school_code),
            data,
            file_name,
            as_of=as_of,
            sitting=sitting_code,
            who=f"portal:{user.school_code}",
        )
    except ImportRefusedError as exc:
        return render_sitting(request, user, sitting_code, status_code=422, problems=exc.problems)
    except UnknownSittingError:
        raise HTTPException(status_code=404) from None
    summary = imported.summary
    detail = "unchanged" if summary.unchanged else f"{summary.stored} registered"
    with portal.db() as session:
        _acted(portal, session, request, user, sitting_code, "registration_upload", detail, as_of)
    background.add_task(
        emit_school_acted,
        sitting_code,
        StageCode.registration,
        "registration_upload",
        user.school_code,
    )
    message = (
        f"{file_name}：所有考生均已报名，无变化"
        if summary.unchanged
        else f"{file_name}：已报名 {summary.stored} 名考生"
    )
    return render_sitting(request, user, sitting_code, message=message)


@router.post("/schools/{school_code}/sittings/{sitting_code}/facts")
def record_site_fact(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    fact: str = Form(""),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """A site records one of its facts, while that fact's stage window is open."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    if not user.is_site:
        raise HTTPException(status_code=404)
    stage = next((s for s, facts in BUTTON_FACTS.items() if fact in facts), None)
    if stage is None:
        raise HTTPException(status_code=404)
    portal = portal_of(request)
    as_of = portal.now()
    with portal.db() as session:
        sitting = sitting_or_404(session, sitting_code)
        if not sitting.spec.window(stage).contains(as_of):
            raise HTTPException(status_code=409, detail="该事项的时间窗口未开放")
        record_fact(
            session,
            sitting.code,
            user.school_code,
            SiteFact(fact),
            as_of,
            source=f"portal:{user.contact}",
        )
        _acted(portal, session, request, user, sitting.code, f"fact:{fact}", "", as_of)
    background.add_task(emit_school_acted, sitting_code, stage, f"fact:{fact}", user.school_code)
    return RedirectResponse(f"/schools/{school_code}/sittings/{sitting_code}", status_code=303)
