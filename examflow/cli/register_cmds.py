"""examflow schools import | sites apply|approve|agree | register"""

from pathlib import Path

import typer
from rich.table import Table as RichTable

from adapters.tabular import write_table
from examflow.cli.console import AS_OF_HELP, fail, out, parse_as_of, read_upload, report_rejection
from examflow.db import session_scope
from models.domain import SOCIAL
from models.problems import RejectedFileError
from models.registration import REGISTRATION_COLUMNS, register_file
from models.schools import (
    SCHOOL_COLUMNS,
    SiteRuleError,
    agree_to_host,
    apply_for_site,
    approve_site,
    import_schools,
)
from models.sittings import UnknownSittingError, get_sitting
from models.table import Table

schools_app = typer.Typer(help="The register of schools and sites.", no_args_is_help=True)
sites_app = typer.Typer(
    help="Site applications and hosting agreements (借考).", no_args_is_help=True
)


@schools_app.command("import")
def schools_import(file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)) -> None:
    """Import or update schools from CSV (UTF-8, BOM or GBK) or XLSX, all rows or none."""
    table, _ = read_upload(file, SCHOOL_COLUMNS)
    try:
        with session_scope() as session:
            summary = import_schools(session, table, parse_as_of(as_of))
    except RejectedFileError as exc:
        report_rejection(file.name, exc)
    for warning in summary.warnings[len(table.warnings) :]:
        out.print(f"warning: {warning}")
    out.print(
        f"{file.name}: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged"
    )


@sites_app.command("apply")
def sites_apply(
    sitting: str,
    school: str,
    seats: int | None = typer.Option(None, help="Exam seats per time slot the site offers."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """A non-site pilot school applies to become a site, before the registration close."""
    try:
        with session_scope() as session:
            spec = get_sitting(session, sitting).spec
            apply_for_site(session, spec, school, parse_as_of(as_of), seats)
    except (SiteRuleError, UnknownSittingError) as exc:
        fail(str(exc))
    out.print(f"{school}: application for {sitting} recorded; ops approve with 'sites approve'")


@sites_app.command("approve")
def sites_approve(
    school: str,
    seats: int | None = typer.Option(None, help="Exam seats per time slot (if not applied with)."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Approve a school's application: it becomes a site and stays one."""
    try:
        with session_scope() as session:
            site = approve_site(session, school, parse_as_of(as_of), seats)
    except SiteRuleError as exc:
        fail(str(exc))
    out.print(f"{school}: now a site with {site.seats} seats per slot")


@sites_app.command("agree")
def sites_agree(
    host: str,
    guest: str = typer.Argument(..., help=f"A school code, or '{SOCIAL}' for social candidates."),
    sitting: str = typer.Argument(...),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Record that site HOST agrees to host GUEST's candidates (借考) for SITTING."""
    try:
        with session_scope() as session:
            spec = get_sitting(session, sitting).spec
            new = agree_to_host(session, spec, host, guest, parse_as_of(as_of))
    except (SiteRuleError, UnknownSittingError) as exc:
        fail(str(exc))
    out.print(f"{host} hosts {guest} for {sitting}" + ("" if new else " (already recorded)"))


def write_errors(path: Path, table: Table, exc: RejectedFileError) -> None:
    """The school's rows with a problem column, so that they can fix and resubmit the file."""
    by_row: dict[int, list[str]] = {}
    for p in exc.problems:
        by_row.setdefault(p.row, []).append(f"{p.field}: {p.message}" if p.field else p.message)
    keys = [c.key for c in REGISTRATION_COLUMNS]
    header = ["行号 row", *(c.labels[0] for c in REGISTRATION_COLUMNS), "问题 problems"]
    rows: list[list[object]] = []
    if 0 in by_row:
        rows.append(["", *([""] * len(keys)), "; ".join(by_row[0])])
    for row, values in table.rows:
        rows.append([row, *(values.get(k, "") for k in keys), "; ".join(by_row.get(row, []))])
    write_table(path, header, rows)


def register(
    sitting: str,
    file: Path,
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
    errors_out: Path | None = typer.Option(
        None, "--errors-out", help="Write the rows with their problems here (.csv or .xlsx)."
    ),
) -> None:
    """Register a school's candidates from CSV/XLSX: every row or none, every problem listed."""
    moment = parse_as_of(as_of)
    table, sha256 = read_upload(file, REGISTRATION_COLUMNS)
    try:
        with session_scope() as session:
            summary = register_file(
                session,
                get_sitting(session, sitting),
                table,
                file_name=file.name,
                sha256=sha256,
                as_of=moment,
            )
    except UnknownSittingError as exc:
        fail(str(exc))
    except RejectedFileError as exc:
        if errors_out is not None:
            write_errors(errors_out, table, exc)
            out.print(f"problems written to {errors_out}")
        report_rejection(file.name, exc)
    if summary.unchanged:
        out.print(f"{file.name}: every row is already registered for {sitting}; nothing changed")
        return
    result = RichTable(title=f"{file.name}: {summary.stored} candidates registered for {sitting}")
    result.add_column("level")
    result.add_column("candidates", justify="right")
    for level, n in sorted(summary.by_level.items()):
        result.add_row(level, str(n))
    out.print(result)
    out.print(f"sites: {len(summary.by_site)}; batch {summary.batch_id}")
