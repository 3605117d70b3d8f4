"""examflow fees SITTING | fees standard PROVINCE LEVEL AMOUNT"""

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from examflow.cli.console import (
    AS_OF_HELP,
    ShowByDefault,
    fail,
    failing_on,
    import_upload,
    out,
    parse_as_of,
)
from examflow.db import session_scope
from models.certificates import schools_with_certificates
from models.fees import (
    FeeError,
    StandardsStored,
    check_standards,
    fees_report,
    fen_to_yuan,
    owed_in_year,
    paid_by_school,
    record_payment,
    standards_importer,
    store_standards,
    yuan_to_fen,
)
from models.problems import RejectedFileError
from models.sittings import get_sitting

app = typer.Typer(
    cls=ShowByDefault,
    help="Fees: `fees SITTING` per school; `fees standard` records a province's standard.",
    no_args_is_help=True,
)


@app.command("show")
def show(sitting: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Per school: candidates, billed, at today's standard, and the refund or top-up."""
    with failing_on(), session_scope() as session:
        year = get_sitting(session, sitting).year
        report = fees_report(session, sitting, year)
        paid_fen = paid_by_school(session)
        owed_year = owed_in_year(session, year)
        issued = schools_with_certificates(session, sitting)

    def flagged(payer: str) -> bool:
        """Certificates issued while the school has not paid what it owes for the year."""
        return payer in issued and paid_fen.get(payer, 0) < owed_year.get(payer, 0)

    if as_json:
        out.print_json(
            data={
                "sitting": sitting,
                "schools": [
                    {
                        "payer": r.payer,
                        "province": r.province,
                        "candidates": r.candidates,
                        "billed": fen_to_yuan(r.billed_fen),
                        "standard": fen_to_yuan(r.standard_fen),
                        "difference": fen_to_yuan(r.difference_fen),
                        "paid": fen_to_yuan(paid_fen.get(r.payer, 0)),
                        "issued_unpaid": flagged(r.payer),
                    }
                    for r in report
                ],
            }
        )
        return
    table = RichTable(title=f"fees for {sitting} (yuan; + top-up owed, - refund due)")
    for name in ("school", "province", "candidates", "billed", "at standard", "多退少补", "paid"):
        table.add_column(name, justify="right" if name not in ("school", "province") else "left")
    for r in report:
        diff = r.difference_fen
        table.add_row(
            r.payer,
            r.province,
            str(r.candidates),
            fen_to_yuan(r.billed_fen),
            fen_to_yuan(r.standard_fen),
            ("+" if diff > 0 else "") + fen_to_yuan(diff) if diff else "0.00",
            fen_to_yuan(paid_fen.get(r.payer, 0))
            + (" [red]issued, unpaid[/]" if flagged(r.payer) else ""),
        )
    out.print(table)
    total = sum(r.billed_fen for r in report)
    candidates = sum(r.candidates for r in report)
    out.print(f"total billed: {fen_to_yuan(total)} yuan for {candidates} candidates")


@app.command("paid")
def paid(
    school: str,
    amount: str = typer.Argument(..., help="Yuan received."),
    note: str = typer.Option("", help="Bank reference."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Record a transfer received from a school (公对公汇款)."""
    with failing_on(FeeError):
        fen = yuan_to_fen(amount)
        with session_scope() as session:
            record_payment(session, school, fen, parse_as_of(as_of), note)
    out.print(f"{school}: {fen_to_yuan(fen)} yuan received")


@app.command("standard")
def standard(
    province: str | None = typer.Argument(None),
    level: str | None = typer.Argument(None, help="初级, 中级 or 高级"),
    amount: str | None = typer.Argument(None, help="Yuan per candidate."),
    year: int | None = typer.Option(None, help="Registrations of this year (default: as-of year)."),
    file: Path | None = typer.Option(None, help="CSV/XLSX: 省份, 级别, 金额[, 年度]."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Record a province's published fee standard (one, or a file of them)."""
    moment = parse_as_of(as_of)
    stored: StandardsStored
    if file is not None:
        stored = import_upload(standards_importer(year), file, as_of=moment).summary
    elif province and level and amount:
        try:
            entries = check_standards(
                [(0, {"province": province, "level": level, "amount": amount, "year": ""})],
                year or moment.year,
            )
        except RejectedFileError as exc:
            fail("nothing was stored:\n  " + "\n  ".join(p.message for p in exc.problems))
        with failing_on(FeeError), session_scope() as session:
            stored = store_standards(session, entries, moment)
    else:
        fail("give PROVINCE LEVEL AMOUNT, or --file", 2)
    for entry, what in stored.outcomes:
        out.print(
            f"{escape(entry.province)} {entry.level} {entry.year}: "
            f"{fen_to_yuan(entry.amount_fen)} yuan ({what})"
        )
