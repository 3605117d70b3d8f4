"""examflow mark SITTING SITE FACT [--undo] | mark SITTING --file FILE"""

from pathlib import Path

import typer

from examflow.cli.console import AS_OF_HELP, fail, out, parse_as_of, read_upload, report_rejection
from examflow.db import session_scope
from models.facts import FACT_COLUMNS, FactError, SiteFact, record_fact, record_facts_file
from models.problems import RejectedFileError
from models.sittings import UnknownSittingError, get_sitting


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
    try:
        with session_scope() as session:
            get_sitting(session, sitting)
            if file is not None:
                table, _ = read_upload(file, FACT_COLUMNS)
                summary = record_facts_file(session, sitting, table, moment, f"file:{file.name}")
                out.print(f"{file.name}: {summary.changed} changed, {summary.unchanged} unchanged")
                return
            if site is None or fact is None:
                fail("give SITE and FACT, or --file", 2)
            changed = record_fact(session, sitting, site, fact, moment, done=not undo)
    except (UnknownSittingError, FactError) as exc:
        fail(str(exc))
    except RejectedFileError as exc:
        report_rejection(file.name if file else "file", exc)
    verb = "undone" if undo else "recorded"
    out.print(f"{sitting} {site} {fact}: {verb}" + ("" if changed else " (no change)"))
