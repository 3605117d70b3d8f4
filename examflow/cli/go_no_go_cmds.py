"""examflow go-no-go SITTING --site CODE --go|--hold --reason TEXT [--by NAME]"""

import getpass

import typer

from examflow.cli.console import AS_OF_HELP, fail, failing_on, out, parse_as_of
from examflow.db import session_scope
from examflow.events import ConditionEvent, emit_condition_changed
from models.domain import StageCode
from models.go_no_go import (
    GO_NO_GO_LABELS_ZH,
    GoNoGo,
    GoNoGoError,
    record_decision,
    seated_candidates,
)
from models.sittings import get_sitting


def go_no_go(
    sitting: str,
    site: str = typer.Option(..., "--site", help="The site (考点代码) decided on."),
    go: bool = typer.Option(False, "--go", help="The site opens: its readiness is waived."),
    hold: bool = typer.Option(False, "--hold", help="The site does not open."),
    reason: str = typer.Option(..., "--reason", help="Why (mailed to the site)."),
    by: str | None = typer.Option(None, "--by", help="Who decides (default: your login)."),
    note: str = typer.Option("", "--note", help="A note for the site."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """The exam's go/no-go for one site, without the Prefect UI: the same decision as the
    exam's paused `open` run asks for (it notices and goes on), recorded with who made it and
    mailed to the site. A later decision for the same site replaces it."""
    if go == hold:
        fail("give exactly one of --go or --hold", 2)
    moment = parse_as_of(as_of)
    choice = GoNoGo.go if go else GoNoGo.hold
    who = by or getpass.getuser()
    with failing_on(GoNoGoError), session_scope() as session:
        decision = record_decision(
            session,
            get_sitting(session, sitting),
            site,
            choice,
            reason=reason,
            decided_by=who,
            as_of=moment,
            via="cli",
            note=note,
        )
        candidates = seated_candidates(session, sitting, site) if choice is GoNoGo.hold else []
    out.print(f"{sitting} {site}: {choice.value} ({GO_NO_GO_LABELS_ZH[choice]}) by {who}")
    if candidates:
        out.print(f"{len(candidates)} candidate(s) to re-seat or move to a later sitting:")
        for c in candidates:
            out.print(f"  {c.ticket_number}  {c.name}  {c.level}  {c.school}")
    from tasks.go_no_go_tasks import send_decision_mail  # imports Prefect: only when used

    report = send_decision_mail(sitting, [decision.id], moment)
    out.print(f"site {site} told: {report.sent} sent, {report.pending} pending")
    emit_condition_changed(
        ConditionEvent.fact_recorded,
        sitting,
        [StageCode.exam],
        party=site,
        what="go_no_go",
        as_of=moment,
    )
