"""Sites: a pilot school applies to be one; a school without a site asks one to host it
(借考) and the site answers; a site records its facts (who attended the training), uploads its
rooms file and, from the exam day until publicity opens, its attendance sheet. Each through
the CLI's domain function."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

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
from fastapi.responses import Response
from sqlmodel import Session

from adapters.tabular import MAX_BYTES
from examflow.importing import ImportRefusedError, import_file
from models.attendance import ATTENDANCE_IMPORTER, attendance_window
from models.domain import StageCode
from models.facts import FACT_LABELS_ZH, FactError, SiteFact, record_fact
from models.host_requests import decide_host_request, request_host
from models.importer import Importer
from models.portal_access import own_rows_only
from models.problems import RejectedFileError
from models.rooms import ROOMS_IMPORTER
from models.schools import apply_for_site
from models.sitting_calendar import SittingSpec, Window
from models.sittings import Sitting
from models.stages import SITE_FACTS
from portal.auth import SignedIn, check_csrf, own_school, signed_in
from portal.context import portal_of
from portal.routes.sitting import BUTTON_FACTS, act

router = APIRouter()
BASE = "/schools/{school_code}/sittings/{sitting_code}"
MAX_NAMES = 200
TRAINED = set(SITE_FACTS[StageCode.training])


def _checked(request: Request, user: SignedIn, school_code: str, csrf: str) -> None:
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)


@router.post(BASE + "/site-application")
def apply(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    seats: int | None = Form(None, ge=1, le=100_000),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """A non-site pilot school applies to be a site (`examflow sites apply`)."""
    _checked(request, user, school_code, csrf)

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        apply_for_site(session, sitting.spec, user.school_code, as_of, seats)
        return f"seats {seats or ''}", "申请已提交，待培训评价组织审核"

    return act(request, background, user, sitting_code, StageCode.registration, "site_apply", do)


@router.post(BASE + "/host-requests")
def ask_host(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    host: str = Form(..., max_length=64),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """A school without a site asks a site to host its candidates (the code as typed, or
    chosen from the province's sites)."""
    _checked(request, user, school_code, csrf)
    host = host.strip()

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        request_host(session, sitting.spec, user.school_code, host, as_of, user.contact)
        return f"host {host}", f"已向考点 {host} 提出借考申请，待对方答复"

    return act(request, background, user, sitting_code, StageCode.registration, "host_ask", do)


@router.post(BASE + "/host-requests/{request_id}")
def answer_host(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    request_id: int,
    decision: str = Form(...),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The site accepts (as `examflow sites agree`) or declines a request addressed to it."""
    _checked(request, user, school_code, csrf)
    if not user.is_site or decision not in ("accept", "decline"):
        raise HTTPException(status_code=404)
    accept = decision == "accept"

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        done = decide_host_request(
            session, sitting.spec, request_id, user.school_code, accept, as_of, user.contact
        )
        verb = "已同意" if accept else "已拒绝"
        return f"request {request_id} {decision}", f"{verb} {done.guest_code} 的借考申请"

    return act(
        request, background, user, sitting_code, StageCode.registration, f"host_{decision}", do
    )


@router.post(BASE + "/facts")
def record_site_fact(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    fact: str = Form(""),
    attendees: str = Form("", max_length=1000),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """A site records one of its facts while that fact's stage window is open; a training
    fact names who attended (kept in the audit row beside who recorded it)."""
    _checked(request, user, school_code, csrf)
    if not user.is_site:
        raise HTTPException(status_code=404)
    stage = next((s for s, facts in BUTTON_FACTS.items() if fact in facts), None)
    if stage is None:
        raise HTTPException(status_code=404)
    parts = attendees.replace("，", ",").replace("、", ",").replace("\n", ",").split(",")
    names = "、".join(n.strip() for n in parts if n.strip())[:MAX_NAMES]

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        if SiteFact(fact) in TRAINED and not names:
            raise FactError("请填写参加培训的人员姓名")
        record_fact(
            session,
            sitting.code,
            user.school_code,
            SiteFact(fact),
            as_of,
            source=f"portal:{user.contact}",
        )
        return names, f"已记录：{FACT_LABELS_ZH[SiteFact(fact)]}"

    return act(request, background, user, sitting_code, stage, f"fact:{fact}", do)


def _upload(
    request: Request,
    background: BackgroundTasks,
    user: SignedIn,
    sitting_code: str,
    stage: StageCode,
    action: str,
    importer: Importer[Any],
    file: UploadFile,
    done: str,
    window_of: Callable[[SittingSpec], Window] | None = None,
) -> Response:
    data, file_name = file.file.read(MAX_BYTES + 1), file.filename or "upload.csv"

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        try:
            imported = import_file(
                importer,
                data,
                file_name,
                as_of=as_of,
                sitting=sitting.code,
                who=f"portal:{user.school_code}",
                db=portal_of(request).db,
            )
        except ImportRefusedError as exc:
            raise RejectedFileError(exc.problems) from None
        return f"{imported.rows} rows", f"{file_name}：{done}（{imported.rows} 行）"

    return act(request, background, user, sitting_code, stage, action, do, window_of)


@router.post(BASE + "/rooms")
def upload_rooms(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    file: UploadFile = File(...),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The site's rooms (考点代码, 考场, 座位数; its own code on every row), during training,
    before the rooms are arranged at its close (`examflow rooms import`)."""
    _checked(request, user, school_code, csrf)
    if not user.is_site:
        raise HTTPException(status_code=404)
    importer = own_rows_only(ROOMS_IMPORTER, user.school_code, "site_code")
    return _upload(
        request,
        background,
        user,
        sitting_code,
        StageCode.training,
        "rooms_upload",
        importer,
        file,
        "考场已保存",
    )


@router.post(BASE + "/attendance")
def upload_attendance(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    file: UploadFile = File(...),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """The site's attendance sheet (准考证号, 出勤; its own candidates' tickets only), from the
    exam day until publicity opens (attendance_window; `examflow attendance`)."""
    _checked(request, user, school_code, csrf)
    if not user.is_site:
        raise HTTPException(status_code=404)
    importer = own_rows_only(ATTENDANCE_IMPORTER, user.school_code, "ticket_number")
    return _upload(
        request,
        background,
        user,
        sitting_code,
        StageCode.exam,
        "attendance_upload",
        importer,
        file,
        "出勤已记录",
        attendance_window,
    )
