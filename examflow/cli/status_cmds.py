"""examflow status SITTING"""

import typer
from rich.table import Table as RichTable

from examflow.cli.console import AS_OF_HELP, fail, out, parse_as_of
from examflow.db import session_scope
from models.registration import registration_counts
from models.sittings import UnknownSittingError, get_sitting
from models.stages import evaluate_sitting

STATE_STYLE = {"upcoming": "dim", "open": "cyan", "complete": "green", "stalled": "bold red"}


def status(
    sitting: str,
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (a stable shape)."),
) -> None:
    """Every stage of a sitting with its window and state, and registration counts."""
    moment = parse_as_of(as_of)
    try:
        with session_scope() as session:
            row = get_sitting(session, sitting)
            reports = evaluate_sitting(session, row, moment)
            counts = registration_counts(session, sitting)
    except UnknownSittingError as exc:
        fail(str(exc))
    document = {
        "sitting": sitting,
        "as_of": moment.isoformat(timespec="seconds"),
        "stages": [r.as_json() for r in reports],
        "registrations": {
            "total": counts.total,
            "by_level": counts.by_level,
            "by_site": counts.by_site,
        },
    }
    if as_json:
        out.print_json(data=document)
        return
    table = RichTable(title=f"{row.name} ({sitting}) at {document['as_of']}")
    for name in ("stage", "opens", "closes", "state", "missing"):
        table.add_column(name)
    for r in reports:
        state = r.state.value
        missing = "; ".join(str(m) for m in r.condition.missing[:5]) or r.condition.note
        if len(r.condition.missing) > 5:
            missing += f" … ({len(r.condition.missing)} in all)"
        opens = r.window.opens_at
        table.add_row(
            r.stage.value,
            opens.strftime("%Y-%m-%d") if opens else "",
            r.window.closes_at.strftime("%Y-%m-%d %H:%M"),
            f"[{STATE_STYLE[state]}]{state}[/]",
            missing,
        )
    out.print(table)
    by_level = ", ".join(f"{k} {v}" for k, v in sorted(counts.by_level.items())) or "none"
    out.print(f"registrations: {counts.total} ({by_level}) at {len(counts.by_site)} site(s)")
