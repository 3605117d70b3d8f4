"""examflow fees SITTING | fees standard PROVINCE LEVEL AMOUNT"""

from datetime import MAXYEAR, MINYEAR
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from examflow.cli.console import AS_OF_HELP, ShowByDefault, fail, out, parse_as_of, read_upload
from examflow.db import session_scope
from models.certificates import schools_with_certificates
from models.domain import Level
from models.fees import (
    FeeError,
    fees_report,
    fen_to_yuan,
    owed_in_year,
    paid_by_school,
    record_payment,
    set_standard,
    yuan_to_fen,
)
from models.registration import LEVEL_ALIASES
from models.sittings import UnknownSittingError, get_sitting
from models.table import Column

app = typer.Typer(
    cls=ShowByDefault,
    help="Fees: `fees SITTING` per school; `fees standard` records a province's standard.",
    no_args_is_help=True,
)

STANDARD_COLUMNS = (
    Column("province", ("省份", "province")),
    Column("level", ("级别", "level")),
    Column("amount", ("金额", "收费标准", "amount", "fee")),
    Column("year", ("年度", "year"), required=False),
)


def _level(value: str) -> Level:
    level = LEVEL_ALIASES.get(value.strip())
    if level is None:
        raise FeeError(f"{value!r} is not 初级, 中级 or 高级")
    return level


def _year(value: str | int) -> int:
    try:
        number = int(value)
    except ValueError:  # also for '²' and for more than 4300 digits
        number = 0
    if not MINYEAR <= number <= MAXYEAR:
        raise FeeError(f"year {value!r} is not a year")
    return number


@app.command("show")
def show(sitting: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Per school: candidates, billed, at today's standard, and the refund or top-up."""
    try:
        with session_scope() as session:
            year = get_sitting(session, sitting).year
            report = fees_report(session, sitting, year)
            paid_fen = paid_by_school(session)
            owed_year = owed_in_year(session, year)
            issued = schools_with_certificates(session, sitting)
    except UnknownSittingError as exc:
        fail(str(exc))

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
    try:
        fen = yuan_to_fen(amount)
        with session_scope() as session:
            record_payment(session, school, fen, parse_as_of(as_of), note)
    except FeeError as exc:
        fail(str(exc))
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
    entries: list[dict[str, Any]] = []
    if file is not None:
        table, _ = read_upload(file, STANDARD_COLUMNS)
        entries = [{"row": row, **v} for row, v in table.rows]
    elif province and level and amount:
        entries = [{"row": 0, "province": province, "level": level, "amount": amount, "year": ""}]
    else:
        fail("give PROVINCE LEVEL AMOUNT, or --file", 2)
    problems: list[str] = []
    parsed = []
    for e in entries:
        try:
            if not e["province"].strip():
                raise FeeError("province is required")
            y = _year(e.get("year") or year or moment.year)
            parsed.append((e["province"].strip(), _level(e["level"]), y, yuan_to_fen(e["amount"])))
        except (FeeError, ValueError) as exc:
            problems.append(f"row {e['row']}: {exc}" if e["row"] else str(exc))
    if problems:
        fail("nothing was stored:\n  " + "\n  ".join(problems))
    try:
        with session_scope() as session:
            for prov, lv, y, fen in parsed:
                what = set_standard(session, prov, lv, y, fen, moment)
                out.print(f"{escape(prov)} {lv} {y}: {fen_to_yuan(fen)} yuan ({what})")
    except FeeError as exc:
        fail(str(exc))
