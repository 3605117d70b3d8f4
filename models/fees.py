"""Fees (考核费用): provincial standards, the advance-fee fallback, and 多退少补 per school."""

from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import UniqueConstraint, func
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from models.domain import Level, in_utc
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.table import Column, Table


class FeeStandardBase(SQLModel):
    province: str = Field(index=True)
    level: str
    year: int
    amount_fen: int = Field(ge=0)


class FeeStandard(FeeStandardBase, table=True):
    """A province's published fee for a level, for registrations in ``year``."""

    __table_args__ = (UniqueConstraint("province", "level", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    loaded_at: datetime


class FeeError(ValueError):
    pass


MAX_YUAN = 10**12  # far above any fee or transfer; keeps fen inside a 64-bit integer column


def yuan_to_fen(amount: str | Decimal | int) -> int:
    """Parse an amount in yuan (up to 2 decimals) into fen; FeeError if not one."""
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise FeeError(f"{amount!r} is not an amount in yuan") from exc
    # Bounded before quantize, which raises InvalidOperation past 28 digits (1e30).
    if (
        not value.is_finite()
        or not 0 <= value <= MAX_YUAN
        or value != value.quantize(Decimal("0.01"))
    ):
        raise FeeError(
            f"{amount!r} is not an amount in yuan (0 to {MAX_YUAN:,}, at most 2 decimals)"
        )
    return int(value * 100)


def fen_to_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def set_standard(
    session: Session, province: str, level: Level, year: int, amount_fen: int, as_of: datetime
) -> str:
    """Record a province's published fee; returns created/updated/unchanged."""
    if not province.strip():
        raise FeeError("province is required")
    row = session.exec(
        select(FeeStandard).where(
            FeeStandard.province == province, FeeStandard.level == level, FeeStandard.year == year
        )
    ).first()
    if row is None:
        session.add(
            FeeStandard(
                province=province,
                level=level,
                year=year,
                amount_fen=amount_fen,
                loaded_at=in_utc(as_of),
            )
        )
        session.flush()
        return "created"
    if row.amount_fen == amount_fen:
        return "unchanged"
    row.amount_fen, row.loaded_at = amount_fen, in_utc(as_of)
    session.add(row)
    session.flush()
    return "updated"


STANDARD_COLUMNS = (
    Column("province", ("省份", "province")),
    Column("level", ("级别", "level")),
    Column("amount", ("金额", "收费标准", "amount", "fee")),
    Column("year", ("年度", "year"), required=False),
)
STANDARD_LABELS = {c.key: f"{c.labels[0]} ({c.key})" for c in STANDARD_COLUMNS}


@dataclass(frozen=True)
class StandardEntry:
    """One checked fee standard: a province's fee for a level, for registrations in a year."""

    province: str
    level: Level
    year: int
    amount_fen: int


def parse_level(value: str) -> Level:
    from models.registration import LEVEL_ALIASES  # registration imports this module

    level = LEVEL_ALIASES.get(value.strip())
    if level is None:
        raise FeeError(f"{value!r} is not 初级, 中级 or 高级")
    return level


def parse_year(value: str | int) -> int:
    try:
        number = int(value)
    except ValueError:  # also for '²' and for more than 4300 digits
        number = 0
    if not MINYEAR <= number <= MAXYEAR:
        raise FeeError(f"year {value!r} is not a year")
    return number


def check_standards(
    rows: list[tuple[int, dict[str, str]]], default_year: int
) -> list[StandardEntry]:
    """Every row as a standard (a row without 年度 is for ``default_year``), or
    RejectedFileError naming every problem by row and field."""
    problems: list[RowProblem] = []
    entries: list[StandardEntry] = []
    for row, v in rows:
        before = len(problems)

        def bad(key: str, message: str, row: int = row) -> None:
            problems.append(RowProblem(row, STANDARD_LABELS[key], message))

        province = v["province"].strip()
        if not province:
            bad("province", "province is required")
        level = year = fen = None
        try:
            level = parse_level(v["level"])
        except FeeError as exc:
            bad("level", str(exc))
        try:
            year = parse_year(v.get("year") or default_year)
        except FeeError as exc:
            bad("year", str(exc))
        try:
            fen = yuan_to_fen(v["amount"])
        except FeeError as exc:
            bad("amount", str(exc))
        if len(problems) == before and level is not None and year is not None and fen is not None:
            entries.append(StandardEntry(province, level, year, fen))
    if problems:
        raise RejectedFileError(problems)
    return entries


@dataclass(frozen=True)
class StandardsStored:
    """Each standard stored, with what happened to it: created, updated or unchanged."""

    outcomes: list[tuple[StandardEntry, str]]


def store_standards(
    session: Session, entries: list[StandardEntry], as_of: datetime
) -> StandardsStored:
    return StandardsStored(
        [
            (e, set_standard(session, e.province, e.level, e.year, e.amount_fen, as_of))
            for e in entries
        ]
    )


def standards_importer(year: int | None = None) -> Importer[StandardsStored]:
    """Fee standards from a file (省份, 级别, 金额[, 年度]); a row without 年度 is for
    ``year``, or the upload's as_of year."""

    def check_and_store(session: Session, table: Table, upload: Upload) -> StandardsStored:
        entries = check_standards(table.rows, year or upload.as_of.year)
        return store_standards(session, entries, upload.as_of)

    return Importer("fee standards", STANDARD_COLUMNS, check_and_store)


def standards_for_year(session: Session, year: int) -> dict[tuple[str, str], int]:
    """(province, level) -> fen for the standards that apply to registrations in ``year``."""
    rows = session.exec(select(FeeStandard).where(FeeStandard.year == year))
    return {(r.province, r.level): r.amount_fen for r in rows}


class PaymentBase(SQLModel):
    school_code: str = Field(foreign_key="school.code", index=True)
    amount_fen: int = Field(gt=0)
    paid_at: datetime
    note: str = ""


class Payment(PaymentBase, table=True):
    """A company-to-company transfer received from a school (公对公汇款)."""

    id: int | None = Field(default=None, primary_key=True)


def record_payment(
    session: Session, school_code: str, amount_fen: int, as_of: datetime, note: str = ""
) -> None:
    from models.schools import School

    if session.get(School, school_code) is None:
        raise FeeError(f"unknown school {school_code!r}")
    if amount_fen <= 0:
        raise FeeError("a payment is an amount > 0")
    session.add(
        Payment(school_code=school_code, amount_fen=amount_fen, paid_at=in_utc(as_of), note=note)
    )
    session.flush()


def paid_by_school(session: Session) -> dict[str, int]:
    totals: dict[str, int] = {}
    for school, amount in session.exec(select(Payment.school_code, Payment.amount_fen)):
        totals[school] = totals.get(school, 0) + amount
    return totals


@dataclass(frozen=True)
class SchoolFees:
    """What one payer owes for a sitting: billed at registration, at today's standard, and the
    difference (positive: the school tops up; negative: the organiser refunds)."""

    payer: str
    province: str
    candidates: int
    billed_fen: int
    standard_fen: int

    @property
    def difference_fen(self) -> int:
        return self.standard_fen - self.billed_fen


def fees_report(session: Session, sitting_code: str, year: int) -> list[SchoolFees]:
    """Per school (social candidates per host site), for one sitting."""
    from models.registration import Registration

    payer = func.coalesce(Registration.school_code, "social@" + col(Registration.site_code))
    rows = session.execute(
        sa_select(
            payer,
            col(Registration.province),
            col(Registration.level),
            func.count(),
            func.sum(col(Registration.fee_fen)),
        )
        .where(col(Registration.sitting_code) == sitting_code)
        .group_by(payer, col(Registration.province), col(Registration.level))
    )
    standards = standards_for_year(session, year)
    totals: dict[tuple[str, str], list[int]] = {}
    for code, province, level, count, billed in rows:
        entry = totals.setdefault((code, province), [0, 0, 0])
        entry[0] += count
        entry[1] += billed
        standard = standards.get((province, level))
        entry[2] += billed if standard is None else standard * count
    return [
        SchoolFees(code, province, n, billed, standard)
        for (code, province), (n, billed, standard) in sorted(totals.items())
    ]


def owed_in_year(session: Session, year: int) -> dict[str, int]:
    """What each school owes for all its registrations of ``year``, at today's standards."""
    from models.sittings import Sitting

    owed: dict[str, int] = {}
    for sitting in session.exec(select(Sitting.code).where(Sitting.year == year)):
        for r in fees_report(session, sitting, year):
            owed[r.payer] = owed.get(r.payer, 0) + r.standard_fen
    return owed
