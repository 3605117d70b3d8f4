"""examflow mark SITTING SITE FACT [--undo] | mark SITTING --file FILE"""

from pathlib import Path

import typer

from examflow.cli.console import AS_OF_HELP, fail, failing_on, import_upload, out, parse_as_of
from examflow.db import session_scope
from examflow.events import ConditionEvent, emit_condition_changed
from models.checkpoint_runs import FACT_STAGES
from models.facts import FACTS_IMPORTER, FactError, SiteFact, record_fact
from models.sittings import get_sitting


def mark(
    sitting: str,
    site: str | None = typer.Argument(None, help="Site (school) code."),
    fact: SiteFact | None = typer.Argument(None, help="The fact to record."),
    undo: bool = typer.Option(False, "--undo", help="Record that the fact no longer holds."),
    file: Path | None = typer.Option(
        None, "--file", help="CSV/XLSX export: 考点代码, 事项[, 完成 是/否]; all rows or none."
    ),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Record a site fact for a sitting (trained, installed, downloaded, laid out)."""
    moment = parse_as_of(as_of)
    if file is not None:
        summary = import_upload(FACTS_IMPORTER, file, as_of=moment, sitting=sitting).summary
        out.print(f"{file.name}: {summary.changed} changed, {summary.unchanged} unchanged")
        return
    with failing_on(FactError), session_scope() as session:
        get_sitting(session, sitting)
        if site is None or fact is None:
            fail("give SITE and FACT, or --file", 2)
        changed = record_fact(session, sitting, site, fact, moment, done=not undo)
    if changed:
        emit_condition_changed(
            ConditionEvent.fact_recorded,
            sitting,
            [FACT_STAGES[fact]],
            party=site,
            what=fact.value,
            as_of=moment,
        )
    verb = "undone" if undo else "recorded"
    out.print(f"{sitting} {site} {fact}: {verb}" + ("" if changed else " (no change)"))
