"""Registration: upload the school's file (all or nothing, its own rows only), download the
refused rows with their problems (the CLI's --errors-out sheet), withdraw a candidate (撤销).

The problem rows come back inside the refusal's page, as a data: link (下载问题行（XLSX）):
the school need not choose its file again, and the sheet (with the ID numbers the school
typed) is never in a URL the browser requests, so never in a server's or proxy's log nor in
the browser's history. A sheet over INLINE_MAX falls back to a form that sends the file again.
"""

import base64
from datetime import datetime
from typing import TypeVar

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

from adapters.tabular import MAX_BYTES, xlsx_bytes
from examflow.importing import ImportRefusedError, import_file
from models.domain import StageCode
from models.importer import Importer, Upload
from models.portal_access import own_rows_only, record_action
from models.registration import (
    REGISTRATION_IMPORTER,
    RegistrationSummary,
    problem_sheet,
    withdraw_registration,
)
from models.sittings import Sitting, UnknownSittingError
from models.table import Table
from portal.auth import SignedIn, check_csrf, client_address, own_school, signed_in
from portal.context import portal_of
from portal.events import emit_school_acted
from portal.routes.sitting import act, render_sitting, sitting_or_404

router = APIRouter()
BASE = "/schools/{school_code}/sittings/{sitting_code}/registration"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INLINE_MAX = 2 * 1024 * 1024  # a problem sheet up to this size comes inside the page
S = TypeVar("S")


class CleanFile(Exception):
    """The file passed every check: raised to roll the checking transaction back."""


def check_only(importer: Importer[S]) -> Importer[S]:
    """``importer`` that checks and then stores nothing (its transaction is rolled back)."""

    def check_and_store(session: Session, table: Table, upload: Upload) -> S:
        importer.check_and_store(session, table, upload)
        raise CleanFile

    return Importer(
        importer.kind,
        importer.columns,
        check_and_store,
        needs_sitting=importer.needs_sitting,
        refusals=importer.refusals,
    )


def _read(file: UploadFile) -> tuple[bytes, str]:
    return file.file.read(MAX_BYTES + 1), file.filename or "upload.csv"  # one byte over refuses


def _registration_open(request: Request, sitting_code: str) -> None:
    portal = portal_of(request)
    with portal.db() as session:
        window = sitting_or_404(session, sitting_code).spec.window(StageCode.registration)
    if not window.contains(portal.now()):
        raise HTTPException(status_code=409, detail="报名时间窗口未开放")


def problem_xlsx(exc: ImportRefusedError) -> bytes:
    """The refused rows with their problems: the bytes `examflow register --errors-out x.xlsx`
    writes."""
    assert exc.table is not None
    return xlsx_bytes(*problem_sheet(exc.table, exc.problems))


def problems_name(sitting_code: str, school_code: str) -> str:
    return f"{sitting_code}-{school_code}-problems.xlsx"


def problems_link(sheet: bytes | None, sitting_code: str, school_code: str) -> dict[str, str]:
    """The page's download of ``sheet`` as a data: link ({} when there is none or it is too
    big to come inside the page: the page then offers the form)."""
    if sheet is None or len(sheet) > INLINE_MAX:
        return {}
    return {
        "href": f"data:{XLSX};base64,{base64.b64encode(sheet).decode('ascii')}",
        "name": problems_name(sitting_code, school_code),
    }


@router.post(BASE)
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
    _registration_open(request, sitting_code)
    portal = portal_of(request)
    as_of = portal.now()
    data, file_name = _read(file)

    def audit(session: Session, summary: RegistrationSummary) -> None:
        record_action(
            session,
            sitting_code=sitting_code,
            school_code=user.school_code,
            contact=user.contact,
            action="registration_upload",
            detail="unchanged" if summary.unchanged else f"{summary.stored} registered",
            as_of=as_of,
            client=client_address(request),
        )

    try:
        imported = import_file(
            own_rows_only(REGISTRATION_IMPORTER, user.school_code),
            data,
            file_name,
            as_of=as_of,
            sitting=sitting_code,
            who=f"portal:{user.school_code}",
            db=portal.db,
            then=audit,
        )
    except ImportRefusedError as exc:
        sheet = None if exc.table is None else problem_xlsx(exc)
        return render_sitting(
            request,
            user,
            sitting_code,
            status_code=422,
            problems=exc.problems,
            errors_form="" if exc.table is None else "1",
            errors_xlsx=problems_link(sheet, sitting_code, user.school_code),
        )
    except UnknownSittingError:
        raise HTTPException(status_code=404) from None
    summary = imported.summary
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


@router.post(BASE + "/problems.xlsx")
def problem_rows(
    request: Request,
    school_code: str,
    sitting_code: str,
    file: UploadFile = File(...),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """Check the file as an upload would and answer with its rows and their problems (the
    CLI's --errors-out sheet); nothing is stored either way, the file is not kept."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    _registration_open(request, sitting_code)
    portal = portal_of(request)
    data, file_name = _read(file)
    try:
        import_file(
            check_only(own_rows_only(REGISTRATION_IMPORTER, user.school_code)),
            data,
            file_name,
            as_of=portal.now(),
            sitting=sitting_code,
            who=f"portal:{user.school_code}",
            db=portal.db,
        )
    except CleanFile:
        return render_sitting(request, user, sitting_code, message=f"{file_name}：没有发现问题")
    except ImportRefusedError as exc:
        if exc.table is None:
            return render_sitting(
                request, user, sitting_code, status_code=422, problems=exc.problems
            )
        return Response(
            problem_xlsx(exc),
            media_type=XLSX,
            headers={
                "Content-Disposition": (
                    f'attachment; filename="{problems_name(sitting_code, user.school_code)}"'
                )
            },
        )
    raise AssertionError("check_only never stores")  # pragma: no cover


@router.post(BASE + "/withdraw")
def withdraw(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    registration: int = Form(...),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """Withdraw one of the school's own candidates (撤销), before the registration close."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        done = withdraw_registration(
            session,
            sitting,
            as_of,
            registration_id=registration,
            school_code=user.school_code,
        )
        return f"registration {done.registration_id}", f"已撤销：{done.name}（{done.level}）"

    return act(request, background, user, sitting_code, StageCode.registration, "withdraw", do)
