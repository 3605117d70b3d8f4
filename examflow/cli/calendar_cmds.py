"""examflow calendar check|load"""

from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from examflow.cli.console import AS_OF_HELP, err, fail, failing_on, out, parse_as_of
from examflow.db import session_scope
from examflow.shipped import notice_calendar
from models.domain import StageCode
from models.sitting_calendar import CalendarError, CalendarSpec, parse_calendar
from models.sittings import store_calendar

app = typer.Typer(help="Sitting calendars (TOML): check and load.", no_args_is_help=True)


def read_calendar(path: Path) -> CalendarSpec:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc}")
    try:
        return parse_calendar(data.decode("utf-8-sig"))  # Notepad may add a BOM
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        at = len(data) - len(exc.object) + exc.start  # exc.object lacks the BOM, if any
        problems = [f"not valid TOML: not UTF-8 (byte {at + 1} is 0x{data[at]:02X})"]
    except CalendarError as exc:
        problems = exc.problems
    # Problems quote keys and values from the file: print them as text, not as markup.
    err.print(f"[red]{escape(str(path))}: {len(problems)} problem(s)[/red]")
    for problem in problems:
        err.print(f"  {escape(problem)}")
    raise typer.Exit(1)


def print_calendar(calendar: CalendarSpec) -> None:
    """One column per sitting, one row per date or stage window (dates inclusive)."""
    table = RichTable(title=escape(f"{calendar.certificate} {calendar.notice}".strip()))
    table.add_column("")
    for s in calendar.sittings:
        table.add_column(s.code)
    table.add_row("exam day", *(f"{s.exam_day:%Y-%m-%d %a}" for s in calendar.sittings))
    table.add_row(
        "levels",
        *(
            "\n".join(f"{x.level} {x.starts:%H:%M}-{x.ends:%H:%M}" for x in s.slots)
            for s in calendar.sittings
        ),
    )
    for stage in StageCode:
        cells = []
        for s in calendar.sittings:
            w = s.window(stage)
            opens = f"{w.opens:%m-%d}" if w.opens else "…"
            at = f" {w.closes_at:%H:%M}" if isinstance(w.closes, datetime) else ""
            cells.append(f"{opens} – {w.closes_at:%m-%d}{at}")
        table.add_row(stage.value, *cells)
    table.add_row(
        "fees (yuan)",
        *(" ".join(f"{lv} {calendar.fee(s, lv)}" for lv in s.levels) for s in calendar.sittings),
    )
    out.print(table)


CALENDAR_HELP = "The calendar file (default: the shipped 2024 notice's calendar)."


@app.command("check")
def check(file: Path | None = typer.Argument(None, help=CALENDAR_HELP)) -> None:
    """Validate a calendar file: print its sittings, or every problem (exit 1)."""
    print_calendar(read_calendar(file or notice_calendar()))


@app.command("load")
def load(
    file: Path | None = typer.Argument(None, help=CALENDAR_HELP),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Store or update the sittings of a calendar file (idempotent)."""
    file = file or notice_calendar()
    calendar = read_calendar(file)
    with session_scope() as session:
        outcome = store_calendar(session, calendar, str(file), parse_as_of(as_of))
    for code, what in outcome.items():
        out.print(f"{code}: {what}")


@app.command("ics")
def ics(
    sitting: str,
    school: str | None = typer.Option(None, help="Only the dates that concern this school."),
    output: Path = typer.Option(..., "-o", "--output", help="The .ics file to write."),
) -> None:
    """Write the sitting's dates as iCalendar (a site's own stages included for a site)."""
    from datetime import datetime

    from models.domain import SHANGHAI
    from models.schools import School
    from models.sittings import get_sitting
    from notifications.ics import sitting_ics

    with failing_on(), session_scope() as session:
        row = get_sitting(session, sitting)
        is_site = True
        if school is not None:
            found = session.get(School, school)
            if found is None:
                fail(f"unknown school {school!r}")
            is_site = found.is_site
        data = sitting_ics(row.spec, row.certificate, school, is_site, datetime.now(SHANGHAI))
    output.write_bytes(data)
    out.print(f"{output}: {data.count(b'BEGIN:VEVENT')} events")
