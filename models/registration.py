"""Bulk registration (集中报名) and every rule the notice sets on it.

A file is checked whole: any problem stores nothing, and every problem is reported with its
row and field. A clean file is stored in one transaction.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Index, UniqueConstraint, func
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from models.bulk import bulk_insert, dbapi_value
from models.domain import SOCIAL, Level, in_shanghai, in_utc
from models.fees import standards_for_year
from models.importer import Importer, Upload
from models.problems import NotTheirsError, RejectedFileError, RowProblem
from models.resident_id import ResidentIdError, validate_resident_id
from models.schools import School, SiteAgreement
from models.sitting_calendar import SittingSpec
from models.sittings import Sitting
from models.table import Column, Table

LEVEL_ALIASES: dict[str, Level] = {
    **{lv.value: lv for lv in Level},
    **{lv.name: lv for lv in Level},
}
# Plain strings for the hot path: an Enum member hashes by name, so it would not find "初级".
LEVEL_VALUES: dict[str, str] = {alias: level.value for alias, level in LEVEL_ALIASES.items()}
MAX_NAME_LENGTH = 64


class ImportBatchBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    kind: str
    file_name: str
    sha256: str = Field(index=True)
    rows: int
    imported_at: datetime


class ImportBatch(ImportBatchBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class RegistrationBase(SQLModel):
    # Three indexes: the unique (sitting, ID number), whose prefix serves queries by sitting,
    # and (sitting, site) and (sitting, school), which a school's portal page reads by; each
    # index costs a national file's import time (benchmarks/registration.py), so no more.
    sitting_code: str = Field(foreign_key="sitting.code")
    school_code: str | None = Field(default=None, foreign_key="school.code")
    site_code: str = Field(foreign_key="school.code")
    name: str
    id_number: str = Field(max_length=18)
    level: str
    province: str = Field(description="the province whose fee standard applies")
    fee_fen: int
    fee_basis: str = Field(description="'standard' (province) or 'advance' (calendar default)")


class Registration(RegistrationBase, table=True):
    __table_args__ = (
        UniqueConstraint("sitting_code", "id_number"),
        Index("ix_registration_sitting_site", "sitting_code", "site_code"),
        Index("ix_registration_sitting_school", "sitting_code", "school_code"),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="importbatch.id")
    registered_at: datetime


INSERT_COLUMNS = (
    "sitting_code",
    "school_code",
    "site_code",
    "name",
    "id_number",
    "level",
    "province",
    "fee_fen",
    "fee_basis",
    "batch_id",
    "registered_at",
)
REGISTRATION_COLUMNS = (
    Column("school_code", ("学校代码", "school code", "school")),
    Column("name", ("姓名", "name", "candidate name")),
    Column("id_number", ("身份证号", "身份证号码", "id number", "resident id")),
    Column("level", ("级别", "level")),
    Column("site_code", ("考点代码", "site code", "site"), required=False),
)
LABELS = {c.key: f"{c.labels[0]} ({c.key})" for c in REGISTRATION_COLUMNS}


class Draft(NamedTuple):
    """One checked row, ready to store (a tuple: 200,000 of them are made per national file)."""

    row: int
    school_code: str | None
    site_code: str
    name: str
    id_number: str
    level: str

    def same_as(self, stored: tuple[str | None, str, str, str]) -> bool:
        return stored == (self.school_code, self.site_code, self.name, self.level)


@dataclass
class RegistrationSummary:
    sitting_code: str
    stored: int
    unchanged: bool = False
    batch_id: int | None = None
    by_level: dict[str, int] = field(default_factory=dict)
    by_site: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# A school's file (from the portal or the CLI) is checked against the rows and schools it
# names, looked up by key; a larger one (a national file of 200,000 rows) against the
# sitting read whole, which is faster than that many lookups.
NAMED_LOOKUP_ROWS = 5_000


def _max_concurrent(spec: SittingSpec, counts: Counter[Level]) -> tuple[int, list[Level]]:
    """The most candidates seated at one moment of exam day, and the levels then sitting.

    Slots that overlap in time (2024-3: 初级 and 高级) share a site's seats.
    """
    best, best_levels = 0, []
    for slot in spec.slots:
        levels = [s.level for s in spec.slots if s.starts <= slot.starts < s.ends]
        seated = sum(counts[lv] for lv in levels)
        if seated > best:
            best, best_levels = seated, levels
    return best, best_levels


class _Checker:
    """Checks one file's rows against the notice's rules and the database."""

    def __init__(
        self, session: Session, sitting: Sitting, as_of: datetime, named: set[str]
    ) -> None:
        """``named``: the school and site codes the file's rows name; only those schools and
        their agreements are read, unless there are too many to name in a query."""
        self.session, self.sitting, self.spec, self.as_of = session, sitting, sitting.spec, as_of
        schools = select(School)
        agreements = select(SiteAgreement).where(SiteAgreement.sitting_code == sitting.code)
        if len(named) <= NAMED_LOOKUP_ROWS:
            schools = schools.where(col(School.code).in_(named))
            agreements = agreements.where(col(SiteAgreement.host_code).in_(named))
        self.schools = {s.code: s for s in session.exec(schools)}
        self.agreements = {(a.host_code, a.guest) for a in session.exec(agreements)}
        self.problems: list[RowProblem] = []

    def drafts(self, rows: list[tuple[int, dict[str, str]]]) -> list[Draft]:
        """Every row that passes the per-row rules; problems collected on ``self.problems``.

        Valid rows take a fast path (site resolution cached per school and named site);
        any row that fails it goes through ``draft`` for its precise messages.
        """
        ok: list[Draft] = []
        append = ok.append
        resolved: dict[tuple[str, str], tuple[str | None, str]] = {}
        offered, as_of_date = {lv.value for lv in self.spec.levels}, in_shanghai(self.as_of).date()
        for row, v in rows:
            route = resolved.get((v["school_code"], v["site_code"]))
            level = LEVEL_VALUES.get(v["level"])
            name = v["name"]
            if (
                route is not None
                and level in offered
                and name
                and len(name) <= MAX_NAME_LENGTH
                and name.isprintable()
            ):
                try:
                    id_number = validate_resident_id(v["id_number"], as_of_date)
                except ResidentIdError:
                    pass
                else:
                    append(Draft(row, route[0], route[1], name, id_number, level))
                    continue
            draft = self.draft(row, v)
            if draft is not None:
                append(draft)
                resolved[(v["school_code"], v["site_code"])] = (draft.school_code, draft.site_code)
        return ok

    def bad(self, row: int, key: str, message: str) -> None:
        self.problems.append(RowProblem(row, LABELS.get(key, key), message))

    def draft(self, row: int, v: dict[str, str]) -> Draft | None:
        before = len(self.problems)
        school_code = v["school_code"] or None
        school = self.schools.get(school_code) if school_code else None
        if school_code and school is None:
            self.bad(row, "school_code", f"unknown school {school_code!r} (not in the register)")
        name = v["name"]
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            self.bad(row, "name", f"required, printable, at most {MAX_NAME_LENGTH} characters")
        try:
            id_number = validate_resident_id(v["id_number"], in_shanghai(self.as_of).date())
        except ResidentIdError as exc:
            self.bad(row, "id_number", str(exc))
            id_number = ""
        level = LEVEL_ALIASES.get(v["level"].strip())
        if level is None:
            self.bad(row, "level", f"{v['level']!r} is not 初级, 中级 or 高级")
        elif level not in self.spec.levels:
            offered = "、".join(self.spec.levels)
            self.bad(row, "level", f"{level} is not offered in {self.spec.code} (only {offered})")
        site_code = self._site(row, school_code, school, v["site_code"])
        if len(self.problems) > before or site_code is None or level is None:
            return None
        return Draft(row, school_code, site_code, name, id_number, level.value)

    def _site(
        self, row: int, school_code: str | None, school: School | None, named: str
    ) -> str | None:
        if school_code and school is None:
            return None
        who = f"school {school_code}" if school else "a social candidate"
        if not named:
            if school is not None and school.is_site:
                return school.code
            kind = (
                "a social candidate"
                if school is None
                else "a non-pilot school"
                if not school.is_pilot
                else "a pilot school that is not a site"
            )
            self.bad(row, "site_code", f"{who} is {kind} and must name the site it borrows (借考)")
            return None
        host = self.schools.get(named)
        if host is None or not host.is_site:
            self.bad(row, "site_code", f"{named!r} is not an exam site")
            return None
        if host.code == school_code:
            return host.code
        guest = school_code or SOCIAL
        if (host.code, guest) not in self.agreements:
            self.bad(
                row,
                "site_code",
                f"site {host.code} has not agreed to host {who} for {self.spec.code} "
                f"(examflow sites agree {host.code} {guest} {self.spec.code})",
            )
            return None
        return host.code

    def pilot_scale(self, drafts: list[Draft]) -> None:
        """A pilot school registers at most its pilot scale in a calendar year."""
        in_file = Counter(d.school_code for d in drafts if d.school_code)
        year_counts = dict(
            self.session.exec(
                select(Registration.school_code, func.count())
                .join(Sitting, col(Sitting.code) == col(Registration.sitting_code))
                .where(Sitting.year == self.spec.year, col(Registration.school_code).in_(in_file))
                .group_by(col(Registration.school_code))
            ).all()
        )
        for code, n in sorted(in_file.items()):
            school = self.schools[code]
            already = year_counts.get(code, 0)
            if not school.is_pilot or school.pilot_scale is None:
                continue
            if already + n > school.pilot_scale:
                room = max(school.pilot_scale - already, 0)
                first_over = [d.row for d in drafts if d.school_code == code][room]
                self.bad(
                    first_over,
                    "school_code",
                    f"school {code} would have {already + n} candidates in {self.spec.year}, "
                    f"over its pilot scale of {school.pilot_scale} (already registered: "
                    f"{already}); this row is the first one over",
                )

    def capacity(self, drafts: list[Draft]) -> None:
        """No site seats more candidates in a slot (own and borrowed) than it has seats."""
        in_file = Counter((d.site_code, d.level) for d in drafts)
        counts: dict[str, Counter[Level]] = defaultdict(Counter)
        for site, level, n in self.session.exec(
            select(Registration.site_code, Registration.level, func.count())
            .where(
                Registration.sitting_code == self.spec.code,
                col(Registration.site_code).in_({site for site, _ in in_file}),
            )
            .group_by(Registration.site_code, Registration.level)
        ):
            counts[site][Level(level)] += n
        for (site, level), n in in_file.items():
            counts[site][Level(level)] += n
        for site, by_level in sorted(counts.items()):
            seats = self.schools[site].seats or 0
            seated, levels = _max_concurrent(self.spec, by_level)
            if seated <= seats:
                continue
            self.bad(
                self._first_over(drafts, site, seats),
                "site_code",
                f"site {site} has {seats} seats per slot but would seat {seated} "
                f"candidates in the {'+'.join(levels)} slot"
                + (" (these slots overlap and share seats)" if len(levels) > 1 else ""),
            )

    def _first_over(self, drafts: list[Draft], site: str, seats: int) -> int:
        """The file row at which ``site`` first runs out of seats (0 if already over)."""
        stored: Counter[Level] = Counter()
        for _site, level, n in self.session.exec(
            select(Registration.site_code, Registration.level, func.count())
            .where(Registration.sitting_code == self.spec.code, Registration.site_code == site)
            .group_by(Registration.site_code, Registration.level)
        ):
            stored[Level(level)] += n
        if _max_concurrent(self.spec, stored)[0] > seats:
            return 0
        for d in drafts:
            if d.site_code == site:
                stored[Level(d.level)] += 1
                if _max_concurrent(self.spec, stored)[0] > seats:
                    return d.row
        return 0


def register_file(
    session: Session,
    sitting: Sitting,
    table: Table,
    *,
    file_name: str,
    sha256: str,
    as_of: datetime,
) -> RegistrationSummary:
    """Check and store a school's registration file; RejectedFileError stores nothing."""
    spec = sitting.spec
    close = spec.registration_closes_at
    if as_of > close:
        raise RejectedFileError(
            [
                RowProblem(
                    0,
                    "",
                    f"registration for {spec.code} closed at {close.isoformat(timespec='seconds')}"
                    f"; nothing is accepted after the close (no late registration)",
                )
            ]
        )
    named = {v[key] for _, v in table.rows for key in ("school_code", "site_code") if v[key]}
    checker = _Checker(session, sitting, as_of, named)
    drafts = checker.drafts(table.rows)
    if not table.rows:
        checker.bad(0, "", "the file has no candidate rows")

    stored = sa_select(
        col(Registration.id_number),
        col(Registration.school_code),
        col(Registration.site_code),
        col(Registration.name),
        col(Registration.level),
    ).where(col(Registration.sitting_code) == spec.code)
    if len(drafts) <= NAMED_LOOKUP_ROWS:  # a school's file: its own ID numbers looked up
        stored = stored.where(col(Registration.id_number).in_([d.id_number for d in drafts]))
    existing = {
        id_number: (school, site, name, level)
        for id_number, school, site, name, level in session.execute(stored)
    }
    if (
        not checker.problems
        and drafts
        and all(d.id_number in existing and d.same_as(existing[d.id_number]) for d in drafts)
        and len({d.id_number for d in drafts}) == len(drafts)
    ):
        return RegistrationSummary(spec.code, 0, unchanged=True, warnings=list(table.warnings))

    seen: dict[str, int] = {}
    fresh: list[Draft] = []
    for d in drafts:
        if d.id_number in seen:
            checker.bad(d.row, "id_number", f"same ID number as row {seen[d.id_number]}")
        elif d.id_number in existing:
            checker.bad(d.row, "id_number", f"already registered for {spec.code}")
        else:
            seen[d.id_number] = d.row
            fresh.append(d)
    checker.pilot_scale(fresh)
    checker.capacity(fresh)
    if checker.problems:
        raise RejectedFileError(checker.problems)
    return _store(session, sitting, checker.schools, fresh, file_name, sha256, as_of, table)


def _check_and_store_registrations(
    session: Session, table: Table, upload: Upload
) -> RegistrationSummary:
    return register_file(
        session,
        upload.the_sitting,
        table,
        file_name=upload.file_name,
        sha256=upload.sha256,
        as_of=upload.as_of,
    )


REGISTRATION_IMPORTER = Importer(
    "registration", REGISTRATION_COLUMNS, _check_and_store_registrations, needs_sitting=True
)


def _store(
    session: Session,
    sitting: Sitting,
    schools: dict[str, School],
    drafts: list[Draft],
    file_name: str,
    sha256: str,
    as_of: datetime,
    table: Table,
) -> RegistrationSummary:
    spec = sitting.spec
    now = in_utc(as_of)
    batch = ImportBatch(
        sitting_code=spec.code,
        kind="registration",
        file_name=file_name,
        sha256=sha256,
        rows=len(drafts),
        imported_at=now,
    )
    session.add(batch)
    session.flush()
    standards = standards_for_year(session, spec.year)
    province_of = {code: school.province for code, school in schools.items()}
    fees: dict[tuple[str, str], tuple[int, str]] = {}
    for province in set(province_of.values()):
        for level in spec.levels:
            standard = standards.get((province, level.value))
            fees[(province, level.value)] = (
                (int(spec.fees[level] * 100), "advance")
                if standard is None
                else (standard, "standard")
            )
    table_ = Registration.__table__  # type: ignore[attr-defined]
    at, code, batch_id = dbapi_value(session, table_.c.registered_at, now), spec.code, batch.id
    rows: list[tuple[object, ...]] = []
    append = rows.append
    for d in drafts:
        province = province_of[d.school_code or d.site_code]
        fee, basis = fees[(province, d.level)]
        append(
            (
                code,
                d.school_code,
                d.site_code,
                d.name,
                d.id_number,
                d.level,
                province,
                fee,
                basis,
                batch_id,
                at,
            )
        )
    bulk_insert(session, table_, INSERT_COLUMNS, rows)
    return RegistrationSummary(
        spec.code,
        len(drafts),
        batch_id=batch.id,
        by_level=dict(Counter(d.level for d in drafts)),
        by_site=dict(Counter(d.site_code for d in drafts)),
        warnings=list(table.warnings),
    )


@dataclass(frozen=True)
class RegistrationCounts:
    total: int
    by_level: dict[str, int]
    by_site: dict[str, int]


def registration_counts(session: Session, sitting_code: str) -> RegistrationCounts:
    rows = session.exec(
        select(Registration.site_code, Registration.level, func.count())
        .where(Registration.sitting_code == sitting_code)
        .group_by(Registration.site_code, Registration.level)
    ).all()
    by_level: Counter[str] = Counter()
    by_site: Counter[str] = Counter()
    for site, level, n in rows:
        by_level[level] += n
        by_site[site] += n
    return RegistrationCounts(sum(by_level.values()), dict(by_level), dict(sorted(by_site.items())))


class WithdrawError(ValueError):
    """A withdrawal the rules refuse (after the close, unknown or another school's candidate)."""


class UnknownCandidateError(WithdrawError, NotTheirsError):
    """No such candidate among those the withdrawal may touch (none, or another school's)."""


@dataclass(frozen=True)
class Withdrawn:
    registration_id: int
    name: str
    level: str
    school_code: str | None
    site_code: str


def withdraw_registration(
    session: Session,
    sitting: Sitting,
    as_of: datetime,
    *,
    id_number: str | None = None,
    registration_id: int | None = None,
    school_code: str | None = None,
) -> Withdrawn:
    """Withdraw (撤销) one registered candidate, by ID number (ops) or registration id (the
    portal), before the registration close; ``school_code`` limits it to that school's own
    candidates. Its seat, if already arranged, is freed."""
    from models.arrangement import SeatAssignment

    spec = sitting.spec
    close = spec.registration_closes_at
    if as_of > close:
        raise WithdrawError(
            f"registration for {spec.code} closed at {close.isoformat(timespec='seconds')}; "
            "a candidate can no longer be withdrawn"
        )
    query = select(Registration).where(Registration.sitting_code == spec.code)
    if registration_id is not None:
        query = query.where(Registration.id == registration_id)
    elif id_number is not None:
        query = query.where(Registration.id_number == id_number.strip().upper())
    else:
        raise WithdrawError("name the candidate to withdraw")
    row = session.exec(query).first()
    if row is None or (school_code is not None and row.school_code != school_code):
        raise UnknownCandidateError(f"no such candidate registered for {spec.code}")
    assert row.id is not None
    for seat in session.exec(
        select(SeatAssignment).where(SeatAssignment.registration_id == row.id)
    ):
        session.delete(seat)
    withdrawn = Withdrawn(row.id, row.name, row.level, row.school_code, row.site_code)
    session.delete(row)
    session.flush()
    return withdrawn


def problem_sheet(table: Table, problems: list[RowProblem]) -> tuple[list[str], list[list[object]]]:
    """A refused registration file's rows with a problem column (the `--errors-out` sheet),
    so that the school can fix and resubmit it: (header, rows)."""
    by_row: dict[int, list[str]] = {}
    for p in problems:
        by_row.setdefault(p.row, []).append(f"{p.field}: {p.message}" if p.field else p.message)
    keys = [c.key for c in REGISTRATION_COLUMNS]
    header = ["行号 row", *(c.labels[0] for c in REGISTRATION_COLUMNS), "问题 problems"]
    rows: list[list[object]] = []
    if 0 in by_row:
        rows.append(["", *([""] * len(keys)), "; ".join(by_row[0])])
    for row, values in table.rows:
        rows.append([row, *(values.get(k, "") for k in keys), "; ".join(by_row.get(row, []))])
    return header, rows
