"""Facts that ops record per site and sitting (trained, installed, downloaded, laid out)."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint, bindparam
from sqlmodel import Field, Session, SQLModel, col, select

from models.domain import in_utc
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.schools import School, parse_yes_no
from models.table import Column, Table


class SiteFact(StrEnum):
    affairs_trained = "affairs_trained"
    tech_trained = "tech_trained"
    platform_installed = "platform_installed"
    mock_passed = "mock_passed"
    tickets_downloaded = "tickets_downloaded"
    labels_downloaded = "labels_downloaded"
    door_signs_downloaded = "door_signs_downloaded"
    sign_in_sheets_downloaded = "sign_in_sheets_downloaded"
    rooms_laid_out = "rooms_laid_out"


FACT_LABELS_ZH: dict[SiteFact, str] = {
    SiteFact.affairs_trained: "考务管理人员已参加培训",
    SiteFact.tech_trained: "技术人员已参加培训",
    SiteFact.platform_installed: "考试平台已安装",
    SiteFact.mock_passed: "模考及平台测试已通过",
    SiteFact.tickets_downloaded: "准考证已下载",
    SiteFact.labels_downloaded: "桌签已下载",
    SiteFact.door_signs_downloaded: "门贴已下载",
    SiteFact.sign_in_sheets_downloaded: "签到表已下载",
    SiteFact.rooms_laid_out: "考场已按《考务工作执行手册》布置",
}
FACT_ALIASES: dict[str, SiteFact] = {
    **{f.value: f for f in SiteFact},
    **{label: f for f, label in FACT_LABELS_ZH.items()},
}


class SiteFactRecordBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code")
    site_code: str = Field(foreign_key="school.code")
    fact: str
    done: bool
    recorded_at: datetime
    source: str = ""


class SiteFactRecord(SiteFactRecordBase, table=True):
    """The current value of one fact of one site in one sitting (undo sets done False)."""

    __table_args__ = (UniqueConstraint("sitting_code", "site_code", "fact"),)
    id: int | None = Field(default=None, primary_key=True)


class FactError(ValueError):
    pass


def _site(session: Session, code: str) -> School:
    school = session.get(School, code)
    if school is None or not school.is_site:
        raise FactError(f"{code!r} is not an exam site")
    return school


def record_fact(
    session: Session,
    sitting_code: str,
    site_code: str,
    fact: SiteFact,
    as_of: datetime,
    *,
    done: bool = True,
    source: str = "cli",
) -> bool:
    """Set a fact (or undo it); returns True if anything changed."""
    _site(session, site_code)
    row = session.exec(
        select(SiteFactRecord).where(
            SiteFactRecord.sitting_code == sitting_code,
            SiteFactRecord.site_code == site_code,
            SiteFactRecord.fact == fact.value,
        )
    ).first()
    if row is not None and row.done == done:
        return False
    if row is None:
        if not done:
            return False
        row = SiteFactRecord(
            sitting_code=sitting_code,
            site_code=site_code,
            fact=fact.value,
            done=done,
            recorded_at=in_utc(as_of),
            source=source,
        )
    else:
        row.done, row.recorded_at, row.source = done, in_utc(as_of), source
    session.add(row)
    session.flush()
    return True


FACT_COLUMNS = (
    Column("site_code", ("考点代码", "site code", "site")),
    Column("fact", ("事项", "fact")),
    Column("done", ("完成", "是否完成", "done"), required=False),
)


@dataclass(frozen=True)
class FactImportSummary:
    changed: int
    unchanged: int


def record_facts_file(
    session: Session, sitting_code: str, table: Table, as_of: datetime, source: str
) -> FactImportSummary:
    """Bulk form (the platform's export): site, fact, done (是/否, default 是); all or nothing."""
    problems: list[RowProblem] = []
    parsed: list[tuple[str, SiteFact, bool]] = []
    sites = {s.code for s in session.exec(select(School).where(col(School.is_site).is_(True)))}
    for row, v in table.rows:
        fact = FACT_ALIASES.get(v["fact"].strip())
        done = parse_yes_no(v["done"]) if v.get("done") else True
        if v["site_code"] not in sites:
            problems.append(
                RowProblem(row, "考点代码 (site_code)", f"{v['site_code']!r} is not an exam site")
            )
        if fact is None:
            problems.append(
                RowProblem(row, "事项 (fact)", f"{v['fact']!r} is not one of {', '.join(SiteFact)}")
            )
        if done is None:
            problems.append(RowProblem(row, "完成 (done)", f"{v['done']!r} is not 是 or 否"))
        if fact is not None and done is not None:
            parsed.append((v["site_code"], fact, done))
    if problems:
        raise RejectedFileError(problems)
    changed = sum(
        record_fact(session, sitting_code, site, fact, as_of, done=done, source=source)
        for site, fact, done in parsed
    )
    return FactImportSummary(changed, len(parsed) - changed)


def _check_and_store_facts(session: Session, table: Table, upload: Upload) -> FactImportSummary:
    source = f"file:{upload.file_name}"
    return record_facts_file(
        session,
        upload.the_sitting.code,
        table,
        upload.as_of,
        f"{upload.who} {source}" if upload.who else source,
    )


FACTS_IMPORTER = Importer("facts", FACT_COLUMNS, _check_and_store_facts, needs_sitting=True)


# One site's facts by a moment, read on every page of the school portal: built once, as a
# statement built per call costs more (its cache key) than running it.
_FACTS_OF_SITE_BY = select(SiteFactRecord.site_code, SiteFactRecord.fact).where(
    SiteFactRecord.sitting_code == bindparam("sitting"),
    col(SiteFactRecord.done).is_(True),
    SiteFactRecord.site_code == bindparam("site"),
    col(SiteFactRecord.recorded_at) <= bindparam("until"),
)


def facts_by_site(
    session: Session, sitting_code: str, until: datetime | None = None, site: str | None = None
) -> dict[str, set[SiteFact]]:
    """The facts that currently hold, per site (or for ``site`` alone), for a sitting
    (recorded by ``until``, if given)."""
    query = select(SiteFactRecord.site_code, SiteFactRecord.fact).where(
        SiteFactRecord.sitting_code == sitting_code, col(SiteFactRecord.done).is_(True)
    )
    if site is not None and until is not None:
        params = {"sitting": sitting_code, "site": site, "until": in_utc(until)}
        rows = session.exec(_FACTS_OF_SITE_BY, params=params).all()
    else:
        if site is not None:
            query = query.where(SiteFactRecord.site_code == site)
        if until is not None:
            query = query.where(col(SiteFactRecord.recorded_at) <= in_utc(until))
        rows = session.exec(query).all()
    held: dict[str, set[SiteFact]] = {}
    for site, fact in rows:
        held.setdefault(site, set()).add(SiteFact(fact))
    return held
