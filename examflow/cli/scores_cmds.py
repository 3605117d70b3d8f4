"""examflow scores import | review file | review resolve"""

from pathlib import Path

import typer

from examflow.cli.console import AS_OF_HELP, fail, failing_on, import_upload, out, parse_as_of
from examflow.cli.mail_now import send_now
from examflow.db import session_scope
from examflow.settings import get_settings
from models.domain import StageCode
from models.schools import School
from models.scores import SCORES_IMPORTER, ScoreError, resolve_review, review_importer
from models.sittings import get_sitting
from notifications.compose import portal_links, with_portal_link

scores_app = typer.Typer(help="Scores (成绩).", no_args_is_help=True)
review_app = typer.Typer(help="Per-school score review requests (成绩复核).", no_args_is_help=True)


@scores_app.command("import")
def scores_import(
    sitting: str, file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)
) -> None:
    """Import scores (准考证号 or 身份证号, 成绩); absent candidates' scores are refused."""
    result = import_upload(SCORES_IMPORTER, file, as_of=parse_as_of(as_of), sitting=sitting)
    out.print(f"{file.name}: {result.summary.recorded} scores recorded for {sitting}")


@review_app.command("file")
def review_file(
    sitting: str,
    school: str = typer.Argument(..., help="The school filing (学校代码); candidates cannot file."),
    file: Path = typer.Argument(..., help="CSV/XLSX: 准考证号 or 身份证号[, 复核理由]."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """File a school's review request for its own candidates, inside the publicity window."""
    filed = import_upload(
        review_importer(school), file, as_of=parse_as_of(as_of), sitting=sitting
    ).summary
    out.print(
        f"review request {filed.request_id} filed by {school}: {filed.candidates} candidate(s)"
    )


@review_app.command("resolve")
def review_resolve(
    request_id: int,
    score: int | None = typer.Option(None, "--score", help="The reviewed score."),
    unchanged: bool = typer.Option(False, "--unchanged", help="The score stands."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Resolve a review request: a new score (and result), or unchanged; the school is told."""
    if (score is None) == (not unchanged):
        fail("give exactly one of --score N or --unchanged", 2)
    moment = parse_as_of(as_of)
    with failing_on(ScoreError), session_scope() as session:
        from models.scores import ReviewRequest

        request = session.get(ReviewRequest, request_id)
        if request is None:
            fail(f"no review request {request_id}")
        sitting = get_sitting(session, request.sitting_code)
        resolution = resolve_review(session, sitting, request_id, score, moment)
        school = session.get(School, request.school_code)
        assert school is not None
        context: dict[str, object] = {
            "certificate": sitting.certificate,
            "sitting_code": sitting.code,
            "sitting_name": sitting.name,
            "recipient_name": school.name,
            "request_id": request_id,
            "changes": [
                {"ticket_number": t, "before": b, "after": a} for t, b, a in resolution.changes
            ],
        }
        portal = portal_links(session, get_settings().public_url, sitting, moment)
        context = with_portal_link(
            context, portal, school.code, school.affairs_email, StageCode.publicity
        )
        target = (sitting.code, school.code, school.affairs_email)
    for ticket, before, after in resolution.changes:
        out.print(f"{ticket}: {before} → {after}")
    report = send_now(
        sitting=target[0],
        stage="publicity",
        checkpoint=f"review-{request_id}",
        recipient_ref=target[1],
        to_addr=target[2],
        template="review_resolved",
        context=context,
        as_of=moment,
    )
    out.print(f"school {target[1]} told: {report.sent} sent, {report.pending} pending")
    from examflow.events import ConditionEvent, emit_condition_changed  # stalls clear

    emit_condition_changed(
        ConditionEvent.review_resolved,
        target[0],
        [StageCode.publicity],
        party=target[1],
        what="review",
        as_of=moment,
    )
