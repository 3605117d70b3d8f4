"""examflow rooms import | arrange | attendance | materials"""

from pathlib import Path

import typer

from examflow.console import AS_OF_HELP, fail, out, parse_as_of, read_upload, report_rejection
from examflow.db import session_scope
from models.arrangement import arrange as arrange_rooms
from models.attendance import ATTENDANCE_COLUMNS, record_attendance
from models.problems import RejectedFileError
from models.rooms import ROOM_COLUMNS, import_rooms
from models.sittings import UnknownSittingError, get_sitting

rooms_app = typer.Typer(help="Exam rooms of each site.", no_args_is_help=True)


@rooms_app.command("import")
def rooms_import(file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)) -> None:
    """Replace the rooms of the sites in the file (考点代码, 考场, 座位数); all rows or none."""
    table, _ = read_upload(file, ROOM_COLUMNS)
    try:
        with session_scope() as session:
            rooms, sites = import_rooms(session, table, parse_as_of(as_of))
    except RejectedFileError as exc:
        report_rejection(file.name, exc)
    out.print(f"{file.name}: {rooms} rooms at {sites} sites")


def arrange(sitting: str, as_of: str | None = typer.Option(None, help=AS_OF_HELP)) -> None:
    """Arrange every registered candidate into a room, seat and slot (idempotent).

    Exit 1 when some site cannot seat everyone (the report says which site, level, how many).
    """
    try:
        with session_scope() as session:
            report = arrange_rooms(session, get_sitting(session, sitting), parse_as_of(as_of))
    except UnknownSittingError as exc:
        fail(str(exc))
    out.print(f"{sitting}: {report.seated} seated ({report.new} new, {report.moved} moved)")
    for site, level, n in report.shortfalls:
        out.print(f"  {site} {level}: {n} candidate(s) without a seat")
    if report.shortfalls:
        raise typer.Exit(1)


def attendance(
    sitting: str, file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)
) -> None:
    """Record attendance from CSV/XLSX (准考证号, 出勤 出席/缺考); all rows or none."""
    table, _ = read_upload(file, ATTENDANCE_COLUMNS)
    try:
        with session_scope() as session:
            get_sitting(session, sitting)
            present, absent = record_attendance(session, sitting, table, parse_as_of(as_of))
    except UnknownSittingError as exc:
        fail(str(exc))
    except RejectedFileError as exc:
        report_rejection(file.name, exc)
    out.print(f"{file.name}: {present} present, {absent} absent")
