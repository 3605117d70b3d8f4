"""After publicity opens: the school's results (masked IDs) and a review request per
candidate with a reason (`examflow review file`'s domain function), then the resolution."""

from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from models.domain import StageCode
from models.problems import RowProblem
from models.scores import file_review
from models.sittings import Sitting
from models.table import Table
from portal.auth import SignedIn, check_csrf, own_school, signed_in
from portal.routes.sitting import act, render_sitting

router = APIRouter()
MAX_TICKETS = 2000


@router.post("/schools/{school_code}/sittings/{sitting_code}/reviews")
def file_review_request(
    request: Request,
    background: BackgroundTasks,
    school_code: str,
    sitting_code: str,
    ticket: list[str] = Form(default_factory=list),
    reason: str = Form("", max_length=500),
    csrf: str = Form(""),
    user: SignedIn = Depends(signed_in),
) -> Response:
    """One review request for the ticked candidates, the same reason for each; refused whole
    (with the CLI's row problems) if any ticket is not the school's or has no score."""
    own_school(user, school_code)
    check_csrf(csrf, user.csrf)
    if not ticket or len(ticket) > MAX_TICKETS:
        problem = RowProblem(0, "准考证号 (ticket_number)", "请勾选要申请复核的考生")
        return render_sitting(request, user, sitting_code, status_code=422, problems=[problem])
    if not reason.strip():
        return render_sitting(request, user, sitting_code, status_code=422, error="请填写复核理由")
    # the rows a review file would hold: 准考证号, 复核理由 (row 1 is the header)
    table = Table(
        rows=[
            (n, {"ticket_number": t.strip(), "id_number": "", "reason": reason.strip()})
            for n, t in enumerate(ticket, start=2)
        ],
        warnings=[],
    )

    def do(session: Session, sitting: Sitting, as_of: datetime) -> tuple[str, str]:
        filed = file_review(session, sitting, user.school_code, table, as_of)
        return (
            f"request {filed.id}: {len(ticket)} candidate(s)",
            f"复核申请（编号 {filed.id}）已提交：{len(ticket)} 名考生",
        )

    return act(request, background, user, sitting_code, StageCode.publicity, "review_file", do)
