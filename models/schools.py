"""The register of schools and sites, site applications and hosting agreements (借考)."""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, select

from models.domain import SOCIAL, in_utc
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.sitting_calendar import SittingSpec
from models.table import Column, Table

EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")
SCHOOL_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,31}$")
YES = {"是", "y", "yes", "true", "1", "t"}
NO = {"否", "n", "no", "false", "0", "f"}


class SchoolBase(SQLModel):
    code: str = Field(primary_key=True, max_length=32)
    name: str
    province: str = Field(index=True)
    is_pilot: bool
    pilot_scale: int | None = None
    is_site: bool = Field(default=False, index=True)
    seats: int | None = None
    affairs_email: str
    tech_email: str | None = None


class School(SchoolBase, table=True):
    updated_at: datetime


class SiteApplicationBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    school_code: str = Field(foreign_key="school.code", index=True)
    seats: int | None = None
    applied_at: datetime
    approved_at: datetime | None = None


class SiteApplication(SiteApplicationBase, table=True):
    __table_args__ = (UniqueConstraint("sitting_code", "school_code"),)
    id: int | None = Field(default=None, primary_key=True)


class SiteAgreementBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    host_code: str = Field(foreign_key="school.code", index=True)
    guest: str = Field(description="a school code, or 'social' for social candidates")
    agreed_at: datetime


class SiteAgreement(SiteAgreementBase, table=True):
    __table_args__ = (UniqueConstraint("sitting_code", "host_code", "guest"),)
    id: int | None = Field(default=None, primary_key=True)


SCHOOL_COLUMNS = (
    Column("code", ("学校代码", "school code", "code")),
    Column("name", ("学校名称", "school name", "name")),
    Column("province", ("省份", "province")),
    Column("is_pilot", ("是否试点", "pilot school", "pilot", "is pilot")),
    Column("pilot_scale", ("试点人数规模", "pilot scale"), required=False),
    Column("is_site", ("是否考点", "site", "is site", "exam site")),
    Column("seats", ("考位数", "seats", "exam seats"), required=False),
    Column("affairs_email", ("考务联系人邮箱", "exam-affairs contact email", "affairs email")),
    Column(
        "tech_email", ("技术联系人邮箱", "technical contact email", "tech email"), required=False
    ),
)
LABELS = {c.key: f"{c.labels[0]} ({c.key})" for c in SCHOOL_COLUMNS}


@dataclass(frozen=True)
class SchoolImportSummary:
    created: int
    updated: int
    unchanged: int
    warnings: list[str]


def parse_yes_no(value: str) -> bool | None:
    v = value.strip().casefold()
    return True if v in YES else False if v in NO else None


def parse_count(value: str) -> int | None:
    """A non-negative whole number, tolerating Excel's '120.0'; None if not one."""
    v = value.strip().replace(",", "")
    if v.endswith(".0"):
        v = v[:-2]
    # isdecimal, not isdigit: int() refuses digits such as '²'. 18 digits fit an SQL BIGINT.
    return int(v) if v.isdecimal() and len(v) <= 18 else None


def valid_email(value: str) -> bool:
    return bool(EMAIL_RE.match(value)) and len(value) <= 254


def _school_from_row(row: int, v: dict[str, str], problems: list[RowProblem]) -> SchoolBase | None:
    before = len(problems)

    def bad(key: str, message: str) -> None:
        problems.append(RowProblem(row, LABELS[key], message))

    if not SCHOOL_CODE_RE.match(v["code"]):
        bad("code", f"{v['code']!r} is not a school code (letters, digits, '-'; up to 32)")
    if not v["name"] or any(ch in v["name"] for ch in "\r\n\t"):
        bad("name", "required, on one line")
    if not v["province"]:
        bad("province", "required")
    is_pilot, is_site = parse_yes_no(v["is_pilot"]), parse_yes_no(v["is_site"])
    if is_pilot is None:
        bad("is_pilot", f"{v['is_pilot']!r} is not 是 or 否")
    if is_site is None:
        bad("is_site", f"{v['is_site']!r} is not 是 or 否")
    scale = parse_count(v.get("pilot_scale", ""))
    if is_pilot and (scale is None or scale == 0):
        bad("pilot_scale", "a pilot school needs its approved pilot scale (a whole number > 0)")
    if is_pilot is False and v.get("pilot_scale", ""):
        bad("pilot_scale", "only pilot schools have a pilot scale")
    if is_site and is_pilot is False:
        bad("is_site", "only a pilot school can be a site")
    seats = parse_count(v.get("seats", ""))
    if is_site and (seats is None or seats == 0):
        bad("seats", "a site needs its number of exam seats per time slot (a whole number > 0)")
    if not valid_email(v["affairs_email"]):
        bad("affairs_email", f"{v['affairs_email']!r} is not an email address")
    tech = v.get("tech_email", "")
    if (is_site or tech) and not valid_email(tech):
        bad("tech_email", f"{tech!r} is not an email address (required for a site)")
    if len(problems) > before:
        return None
    return SchoolBase(
        code=v["code"],
        name=v["name"],
        province=v["province"],
        is_pilot=bool(is_pilot),
        pilot_scale=scale if is_pilot else None,
        is_site=bool(is_site),
        seats=seats if is_site else None,
        affairs_email=v["affairs_email"],
        tech_email=tech or None,
    )


def import_schools(session: Session, table: Table, as_of: datetime) -> SchoolImportSummary:
    """Insert or update every school of ``table``, all or nothing (RejectedFileError)."""
    problems: list[RowProblem] = []
    parsed: dict[str, tuple[int, SchoolBase]] = {}
    for row, values in table.rows:
        school = _school_from_row(row, values, problems)
        if school is None:
            continue
        if school.code in parsed:
            first = parsed[school.code][0]
            problems.append(RowProblem(row, LABELS["code"], f"duplicate of row {first}"))
            continue
        parsed[school.code] = (row, school)
    if problems:
        raise RejectedFileError(problems)
    existing = {s.code: s for s in session.exec(select(School))}
    created = updated = unchanged = 0
    warnings = list(table.warnings)
    now = in_utc(as_of)
    for code, (row, school) in parsed.items():
        current = existing.get(code)
        if current is None:
            session.add(School(**school.model_dump(), updated_at=now))
            created += 1
            continue
        data = school.model_dump()
        if current.is_site and not school.is_site:
            warnings.append(f"row {row}: {code} is a site and stays one (是否考点 否 ignored)")
            data["is_site"], data["seats"] = True, current.seats
        if all(getattr(current, k) == val for k, val in data.items()):
            unchanged += 1
            continue
        for key, value in data.items():
            setattr(current, key, value)
        current.updated_at = now
        session.add(current)
        updated += 1
    session.flush()
    return SchoolImportSummary(created, updated, unchanged, warnings)


def _check_and_store_schools(session: Session, table: Table, upload: Upload) -> SchoolImportSummary:
    return import_schools(session, table, upload.as_of)


SCHOOLS_IMPORTER = Importer("schools", SCHOOL_COLUMNS, _check_and_store_schools)


class SiteRuleError(ValueError):
    """A site application, approval or agreement that the notice's rules refuse."""


def _school(session: Session, code: str) -> School:
    school = session.get(School, code)
    if school is None:
        raise SiteRuleError(f"unknown school {code!r}: import it with the register first")
    return school


def apply_for_site(
    session: Session, sitting: SittingSpec, school_code: str, as_of: datetime, seats: int | None
) -> SiteApplication:
    """A non-site pilot school applies to become a site, before the registration close."""
    school = _school(session, school_code)
    if school.is_site:
        raise SiteRuleError(f"{school_code} is already a site and never needs to apply again")
    if not school.is_pilot:
        raise SiteRuleError(f"{school_code} is not a pilot school: only pilot schools become sites")
    close = sitting.registration_closes_at
    if as_of > close:
        raise SiteRuleError(
            f"applications for {sitting.code} closed with registration at {close.isoformat()}"
        )
    if seats is not None and seats <= 0:
        raise SiteRuleError("seats must be a whole number > 0")
    existing = session.exec(
        select(SiteApplication).where(
            SiteApplication.sitting_code == sitting.code, SiteApplication.school_code == school_code
        )
    ).first()
    if existing is not None:
        raise SiteRuleError(f"{school_code} has already applied for {sitting.code}")
    application = SiteApplication(
        sitting_code=sitting.code,
        school_code=school_code,
        seats=seats,
        applied_at=in_utc(as_of),
    )
    session.add(application)
    session.flush()
    return application


def approve_site(session: Session, school_code: str, as_of: datetime, seats: int | None) -> School:
    """Ops approve a school's pending application: it becomes a site, for good."""
    school = _school(session, school_code)
    if school.is_site:
        raise SiteRuleError(f"{school_code} is already a site")
    pending = list(
        session.exec(
            select(SiteApplication).where(
                SiteApplication.school_code == school_code,
                SiteApplication.approved_at.is_(None),  # type: ignore[union-attr]
            )
        )
    )
    if not pending:
        raise SiteRuleError(f"{school_code} has no pending application (examflow sites apply)")
    seat_count = seats or next((a.seats for a in pending if a.seats), None) or school.seats
    if not seat_count or seat_count <= 0:
        raise SiteRuleError(f"{school_code}: give the site's exam seats per slot with --seats")
    for application in pending:
        application.approved_at = in_utc(as_of)
        session.add(application)
    school.is_site, school.seats, school.updated_at = True, seat_count, in_utc(as_of)
    session.add(school)
    session.flush()
    return school


def agree_to_host(
    session: Session, sitting: SittingSpec, host_code: str, guest: str, as_of: datetime
) -> bool:
    """A site agrees to host a school's (or social) candidates; False if it already had."""
    host = _school(session, host_code)
    if not host.is_site:
        raise SiteRuleError(f"{host_code} is not a site and cannot host candidates")
    if guest != SOCIAL:
        _school(session, guest)
        if guest == host_code:
            raise SiteRuleError("a site hosts its own candidates without an agreement")
    existing = session.exec(
        select(SiteAgreement).where(
            SiteAgreement.sitting_code == sitting.code,
            SiteAgreement.host_code == host_code,
            SiteAgreement.guest == guest,
        )
    ).first()
    if existing is not None:
        return False
    session.add(
        SiteAgreement(
            sitting_code=sitting.code,
            host_code=host_code,
            guest=guest,
            agreed_at=in_utc(as_of),
        )
    )
    session.flush()
    return True
