"""Scores (成绩), publicity (成绩公示) and per-school review requests (成绩复核申请).

A review request is filed by a school, for its own candidates, only inside the publicity
window (its last day ends at 24:00 Asia/Shanghai); social candidates' requests are filed by
the site that hosted them. Ops resolve each request; a changed score changes the result.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import UniqueConstraint, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.arrangement import SeatAssignment
from models.attendance import Attendance
from models.domain import Level, StageCode, in_shanghai, in_utc
from models.importer import Importer, Upload
from models.problems import ForeignRowsError, RejectedFileError, RowProblem
from models.registration import Registration
from models.resident_id import ResidentIdError, validate_resident_id
from models.schools import School
from models.sittings import Sitting
from models.table import Column, Table

MAX_SCORE = 100


class ScoreBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    registration_id: int = Field(foreign_key="registration.id", unique=True)
    ticket_number: str
    score: int = Field(ge=0, le=MAX_SCORE)
    passed: bool
    recorded_at: datetime


class Score(ScoreBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class PublicationBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", unique=True)
    published_at: datetime


class Publication(PublicationBase, table=True):
    """Scores of a sitting were published (the publicity stage's open checkpoint)."""

    id: int | None = Field(default=None, primary_key=True)


class ReviewRequestBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    school_code: str = Field(foreign_key="school.code", index=True)
    filed_at: datetime


class ReviewRequest(ReviewRequestBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class ReviewItemBase(SQLModel):
    request_id: int = Field(foreign_key="reviewrequest.id", index=True)
    registration_id: int = Field(foreign_key="registration.id")
    ticket_number: str
    reason: str = ""
    score_before: int
    score_after: int | None = None
    resolved_at: datetime | None = None


class ReviewItem(ReviewItemBase, table=True):
    __table_args__ = (UniqueConstraint("request_id", "registration_id"),)
    id: int | None = Field(default=None, primary_key=True)


class ScoreError(ValueError):
    pass


SCORE_COLUMNS = (
    Column("ticket_number", ("准考证号", "ticket number", "ticket"), required=False),
    Column("id_number", ("身份证号", "id number"), required=False),
    Column("score", ("成绩", "分数", "score")),
)
REVIEW_COLUMNS = (
    Column("ticket_number", ("准考证号", "ticket number", "ticket"), required=False),
    Column("id_number", ("身份证号", "id number"), required=False),
    Column("reason", ("复核理由", "理由", "reason"), required=False),
)


@dataclass(frozen=True)
class Candidate:
    registration_id: int
    ticket_number: str
    school_code: str | None
    site_code: str
    level: str
    present: bool | None


def _candidates(session: Session, sitting_code: str) -> tuple[dict[str, Candidate], dict[str, str]]:
    """Arranged candidates by ticket number, and ticket number by ID number."""
    attendance = dict(
        session.exec(
            select(Attendance.ticket_number, Attendance.present).where(
                Attendance.sitting_code == sitting_code
            )
        ).all()
    )
    by_ticket: dict[str, Candidate] = {}
    by_id: dict[str, str] = {}
    for rid, number, school, site, level, id_number in session.execute(
        sa_select(
            col(SeatAssignment.registration_id),
            col(SeatAssignment.ticket_number),
            col(Registration.school_code),
            col(Registration.site_code),
            col(Registration.level),
            col(Registration.id_number),
        )
        .join(Registration, col(Registration.id) == col(SeatAssignment.registration_id))
        .where(col(SeatAssignment.sitting_code) == sitting_code)
    ):
        by_ticket[number] = Candidate(rid, number, school, site, level, attendance.get(number))
        by_id[id_number] = number
    return by_ticket, by_id


def _ticket_of(
    row: int, v: dict[str, str], by_id: dict[str, str], as_of: datetime, problems: list[RowProblem]
) -> str | None:
    if v.get("ticket_number"):
        return v["ticket_number"]
    if v.get("id_number"):
        try:
            id_number = validate_resident_id(v["id_number"], in_shanghai(as_of).date())
        except ResidentIdError as exc:
            problems.append(RowProblem(row, "身份证号 (id_number)", str(exc)))
            return None
        if id_number in by_id:
            return by_id[id_number]
        problems.append(
            RowProblem(row, "身份证号 (id_number)", "no arranged candidate with this ID")
        )
        return None
    problems.append(
        RowProblem(row, "准考证号 (ticket_number)", "give a ticket number or an ID number")
    )
    return None


def import_scores(session: Session, sitting: Sitting, table: Table, as_of: datetime) -> int:
    """Record scores (all rows or none); absent candidates' scores are refused."""
    by_ticket, by_id = _candidates(session, sitting.code)
    problems: list[RowProblem] = []
    parsed: dict[str, int] = {}
    for row, v in table.rows:
        number = _ticket_of(row, v, by_id, as_of, problems)
        raw = v["score"].strip().removesuffix(".0")
        # isdecimal, not isdigit: int() refuses '²' and more than 4300 digits.
        score = int(raw) if raw.isdecimal() and len(raw) <= 6 and int(raw) <= MAX_SCORE else None
        if score is None:
            problems.append(
                RowProblem(
                    row, "成绩 (score)", f"{v['score']!r} is not a whole number 0–{MAX_SCORE}"
                )
            )
        if number is None:
            continue
        candidate = by_ticket.get(number)
        if candidate is None:
            problems.append(
                RowProblem(
                    row, "准考证号 (ticket_number)", f"{number!r} is not a ticket of {sitting.code}"
                )
            )
        elif candidate.present is False:
            problems.append(
                RowProblem(row, "成绩 (score)", f"{number} was absent (缺考): no score")
            )
        elif candidate.present is None:
            problems.append(RowProblem(row, "成绩 (score)", f"{number}: attendance not recorded"))
        elif number in parsed:
            problems.append(RowProblem(row, "准考证号 (ticket_number)", "listed twice"))
        elif score is not None:
            parsed[number] = score
    if problems:
        raise RejectedFileError(problems)
    existing = {
        s.ticket_number: s
        for s in session.exec(select(Score).where(Score.sitting_code == sitting.code))
    }
    now = in_utc(as_of)
    spec = sitting.spec
    for number, score in parsed.items():
        candidate = by_ticket[number]
        passed = score >= spec.pass_mark_for(Level(candidate.level))
        row_ = existing.get(number)
        if row_ is None:
            session.add(
                Score(
                    sitting_code=sitting.code,
                    registration_id=candidate.registration_id,
                    ticket_number=number,
                    score=score,
                    passed=passed,
                    recorded_at=now,
                )
            )
        elif row_.score != score:
            row_.score, row_.passed, row_.recorded_at = score, passed, now
            session.add(row_)
    session.flush()
    return len(parsed)


@dataclass(frozen=True)
class ScoreImportSummary:
    recorded: int


def _check_and_store_scores(session: Session, table: Table, upload: Upload) -> ScoreImportSummary:
    return ScoreImportSummary(import_scores(session, upload.the_sitting, table, upload.as_of))


SCORES_IMPORTER = Importer("scores", SCORE_COLUMNS, _check_and_store_scores, needs_sitting=True)


def publish(session: Session, sitting_code: str, as_of: datetime) -> bool:
    """Record that the sitting's scores are published; False if they already were."""
    if session.exec(select(Publication).where(Publication.sitting_code == sitting_code)).first():
        return False
    session.add(Publication(sitting_code=sitting_code, published_at=in_utc(as_of)))
    session.flush()
    return True


def file_review(
    session: Session, sitting: Sitting, school_code: str, table: Table, as_of: datetime
) -> ReviewRequest:
    """A school's review request for its own candidates, inside the publicity window only.
    A row naming a ticket that is not one of the school's candidates (another school's, or
    none) refuses the request with ForeignRowsError, the same problems as any refusal."""
    if validate_looks_like_id(school_code):
        raise ScoreError("review requests are filed by a school (学校代码), not by a candidate")
    school = session.get(School, school_code)
    if school is None:
        raise ScoreError(f"unknown school {school_code!r}")
    window = sitting.spec.window(StageCode.publicity)
    if not window.contains(as_of):
        raise ScoreError(
            f"review requests for {sitting.code} are accepted only during publicity, "
            f"{window.opens} to {window.closes_at.isoformat(timespec='seconds')}"
        )
    by_ticket, by_id = _candidates(session, sitting.code)
    scores = dict(
        session.exec(
            select(Score.ticket_number, Score.score).where(Score.sitting_code == sitting.code)
        ).all()
    )
    problems: list[RowProblem] = []
    items: dict[str, str] = {}
    foreign = False  # a row names a ticket that is not among the school's candidates
    for row, v in table.rows:
        number = _ticket_of(row, v, by_id, as_of, problems)
        if number is None:
            continue
        candidate = by_ticket.get(number)
        owner = None if candidate is None else candidate.school_code or candidate.site_code
        foreign = foreign or candidate is None or owner != school_code
        if candidate is None or number not in scores:
            problems.append(
                RowProblem(row, "准考证号 (ticket_number)", f"{number!r} has no published score")
            )
        elif owner != school_code:
            problems.append(
                RowProblem(
                    row, "准考证号 (ticket_number)", f"{number} is not a candidate of {school_code}"
                )
            )
        elif number in items:
            problems.append(RowProblem(row, "准考证号 (ticket_number)", "listed twice"))
        else:
            items[number] = v.get("reason", "")
    if not table.rows:
        problems.append(RowProblem(0, "", "the request names no candidate"))
    if problems:
        raise ForeignRowsError(problems) if foreign else RejectedFileError(problems)
    request = ReviewRequest(
        sitting_code=sitting.code, school_code=school_code, filed_at=in_utc(as_of)
    )
    session.add(request)
    session.flush()
    assert request.id is not None
    for number, reason in items.items():
        session.add(
            ReviewItem(
                request_id=request.id,
                registration_id=by_ticket[number].registration_id,
                ticket_number=number,
                reason=reason,
                score_before=scores[number],
            )
        )
    session.flush()
    return request


@dataclass(frozen=True)
class ReviewFiled:
    request_id: int
    candidates: int


def review_importer(school_code: str) -> Importer[ReviewFiled]:
    """A review request file filed by ``school_code`` (the portal passes its login's school).

    ScoreError (not a school, outside the publicity window) refuses the request as a whole.
    """

    def check_and_store(session: Session, table: Table, upload: Upload) -> ReviewFiled:
        request = file_review(session, upload.the_sitting, school_code, table, upload.as_of)
        assert request.id is not None
        return ReviewFiled(request.id, len(table.rows))

    return Importer(
        "review", REVIEW_COLUMNS, check_and_store, needs_sitting=True, refusals=(ScoreError,)
    )


def validate_looks_like_id(value: str) -> bool:
    digits = value.strip()
    return len(digits) in (15, 18) and digits[:17].isdigit()


@dataclass(frozen=True)
class Resolution:
    request: ReviewRequest
    changes: list[tuple[str, int, int]]  # ticket, before, after


def resolve_review(
    session: Session, sitting: Sitting, request_id: int, new_score: int | None, as_of: datetime
) -> Resolution:
    """Resolve every open item of a request: the new score (all its items), or unchanged."""
    request = session.get(ReviewRequest, request_id)
    if request is None or request.sitting_code != sitting.code:
        raise ScoreError(f"no review request {request_id} in {sitting.code}")
    open_items = list(
        session.exec(
            select(ReviewItem).where(
                ReviewItem.request_id == request_id, col(ReviewItem.resolved_at).is_(None)
            )
        )
    )
    if not open_items:
        raise ScoreError(f"review request {request_id} is already resolved")
    if new_score is not None and not 0 <= new_score <= MAX_SCORE:
        raise ScoreError(f"a score is a whole number 0–{MAX_SCORE}")
    now = in_utc(as_of)
    changes = []
    for item in open_items:
        score = session.exec(
            select(Score).where(Score.registration_id == item.registration_id)
        ).one()
        after = score.score if new_score is None else new_score
        if after != score.score:
            level = session.exec(
                select(Registration.level).where(Registration.id == item.registration_id)
            ).one()
            score.score, score.passed = after, after >= sitting.spec.pass_mark_for(Level(level))
            score.recorded_at = now
            session.add(score)
        item.score_after, item.resolved_at = after, now
        session.add(item)
        changes.append((item.ticket_number, item.score_before, after))
    session.flush()
    return Resolution(request, changes)


def _open_reviews() -> SelectOfScalar[str]:
    return (
        select(ReviewRequest.school_code)
        .join(ReviewItem, col(ReviewItem.request_id) == col(ReviewRequest.id))
        .where(
            ReviewRequest.sitting_code == bindparam("sitting"),
            col(ReviewItem.resolved_at).is_(None),
        )
    )


# Read on every page of the school portal: built once, as a statement built per call costs
# more (its cache key) than running it.
_OPEN_REVIEWS = _open_reviews()
_OPEN_REVIEWS_OF = _open_reviews().where(ReviewRequest.school_code == bindparam("school"))
PUBLICATION_OF = select(Publication).where(Publication.sitting_code == bindparam("sitting"))


def publication_of(session: Session, sitting_code: str) -> Publication | None:
    """The sitting's publication of scores, if they are published."""
    return session.exec(PUBLICATION_OF, params={"sitting": sitting_code}).first()


def unresolved_reviews(
    session: Session, sitting_code: str, school: str | None = None
) -> dict[str, int]:
    """Open review items per school (of ``school`` alone, if given)."""
    counts: dict[str, int] = {}
    query, params = (
        (_OPEN_REVIEWS, {"sitting": sitting_code})
        if school is None
        else (_OPEN_REVIEWS_OF, {"sitting": sitting_code, "school": school})
    )
    for school_code in session.exec(query, params=params):
        counts[school_code] = counts.get(school_code, 0) + 1
    return counts
