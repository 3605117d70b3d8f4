"""examflow schools import | sites apply|approve|agree | register"""

from pathlib import Path

import typer
from rich.table import Table as RichTable

from adapters.tabular import write_table
from examflow.cli.console import AS_OF_HELP, failing_on, import_upload, out, parse_as_of
from examflow.db import session_scope
from examflow.importing import ImportRefusedError
from models.domain import SOCIAL
from models.problems import RejectedFileError
from models.registration import (
    REGISTRATION_IMPORTER,
    WithdrawError,
    problem_sheet,
    withdraw_registration,
)
from models.schools import (
    SCHOOLS_IMPORTER,
    SiteRuleError,
    agree_to_host,
    apply_for_site,
    approve_site,
)
from models.sittings import get_sitting
from models.table import Table

schools_app = typer.Typer(help="The register of schools and sites.", no_args_is_help=True)
sites_app = typer.Typer(
    help="Site applications and hosting agreements (借考).", no_args_is_help=True
)


@schools_app.command("import")
def schools_import(file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)) -> None:
    """Import or update schools from CSV (UTF-8, BOM or GBK) or XLSX, all rows or none."""
    result = import_upload(SCHOOLS_IMPORTER, file, as_of=parse_as_of(as_of))
    summary = result.summary
    for warning in summary.warnings[len(result.warnings) :]:
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
    with failing_on(SiteRuleError), session_scope() as session:
        spec = get_sitting(session, sitting).spec
        apply_for_site(session, spec, school, parse_as_of(as_of), seats)
    out.print(f"{school}: application for {sitting} recorded; ops approve with 'sites approve'")


@sites_app.command("approve")
def sites_approve(
    school: str,
    seats: int | None = typer.Option(None, help="Exam seats per time slot (if not applied with)."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Approve a school's application: it becomes a site and stays one."""
    with failing_on(SiteRuleError), session_scope() as session:
        site = approve_site(session, school, parse_as_of(as_of), seats)
    out.print(f"{school}: now a site with {site.seats} seats per slot")


@sites_app.command("agree")
def sites_agree(
    host: str,
    guest: str = typer.Argument(..., help=f"A school code, or '{SOCIAL}' for social candidates."),
    sitting: str = typer.Argument(...),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Record that site HOST agrees to host GUEST's candidates (借考) for SITTING."""
    with failing_on(SiteRuleError), session_scope() as session:
        spec = get_sitting(session, sitting).spec
        new = agree_to_host(session, spec, host, guest, parse_as_of(as_of))
    out.print(f"{host} hosts {guest} for {sitting}" + ("" if new else " (already recorded)"))


def write_errors(path: Path, table: Table, exc: RejectedFileError) -> None:
    """The school's rows with a problem column, so that they can fix and resubmit the file."""
    write_table(path, *problem_sheet(table, exc.problems))


def withdraw(
    sitting: str,
    id_number: str = typer.Argument(..., help="The candidate's ID number (身份证号)."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Withdraw (撤销) a registered candidate before the registration close."""
    with failing_on(WithdrawError), session_scope() as session:
        done = withdraw_registration(
            session, get_sitting(session, sitting), parse_as_of(as_of), id_number=id_number
        )
    out.print(f"{sitting}: {done.name} ({done.level}, {done.school_code or SOCIAL}) withdrawn")


def register(
    sitting: str,
    file: Path,
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
    errors_out: Path | None = typer.Option(
        None, "--errors-out", help="Write the rows with their problems here (.csv or .xlsx)."
    ),
) -> None:
    """Register a school's candidates from CSV/XLSX: every row or none, every problem listed."""

    def errors_back(exc: ImportRefusedError) -> None:
        if errors_out is not None and exc.table is not None:
            write_errors(errors_out, exc.table, exc)
            out.print(f"problems written to {errors_out}")

    summary = import_upload(
        REGISTRATION_IMPORTER,
        file,
        as_of=parse_as_of(as_of),
        sitting=sitting,
        on_refused=errors_back,
    ).summary
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
