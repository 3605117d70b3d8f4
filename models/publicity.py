"""The publicity stage (成绩公示): scores published, every school told, every review resolved."""

from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, and_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.attendance import Attendance
from models.condition import ORGANISER, Condition, Missing, Owed, PartyKind, in_scope
from models.domain import StageCode
from models.outbox import OutboxMessage, OutboxStatus
from models.registration import Registration
from models.resident_id import mask_resident_id
from models.scores import Score, publication_of, unresolved_reviews
from models.sittings import Sitting


def result_owner(school_code: str | None, site_code: str) -> str:
    """Results go to the school; a social candidate's to the site that hosted them."""
    return school_code or site_code


def owned_by(party: str | BindParameter[str]) -> ColumnElement[bool]:
    """The registrations whose results ``party`` owns (``result_owner``, as a query)."""
    return or_(
        col(Registration.school_code) == party,
        and_(
            or_(col(Registration.school_code).is_(None), col(Registration.school_code) == ""),
            col(Registration.site_code) == party,
        ),
    )


def results_by_school(
    session: Session, sitting_code: str, party: str | None = None
) -> dict[str, list[dict[str, object]]]:
    """Each school's candidates with their results (ID numbers masked), by ticket number
    (of ``party``'s candidates alone, if given)."""
    query = (
        sa_select(
            col(Score.ticket_number),
            col(Score.score),
            col(Score.passed),
            col(Registration.name),
            col(Registration.id_number),
            col(Registration.level),
            col(Registration.school_code),
            col(Registration.site_code),
        )
        .join(Registration, col(Registration.id) == col(Score.registration_id))
        .where(col(Score.sitting_code) == sitting_code)
        .order_by(col(Score.ticket_number))
    )
    if party is not None:
        query = query.where(owned_by(party))
    rows = session.execute(query).all()
    by_school: dict[str, list[dict[str, object]]] = {}
    for number, score, passed, name, id_number, level, school, site in rows:
        by_school.setdefault(result_owner(school, site), []).append(
            {
                "ticket_number": number,
                "name": name,
                "masked_id": mask_resident_id(id_number),
                "level": level,
                "score": score,
                "result": "合格" if passed else "不合格",
            }
        )
    return by_school


def _owed(party: str, item: Owed, count: int = 1) -> Missing:
    kind = PartyKind.organiser if party == ORGANISER else PartyKind.school
    return Missing(party=party, party_kind=kind, stage=StageCode.publicity, item=item, count=count)


def publicity_condition(
    session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
) -> Condition:
    missing: list[Missing] = []
    if in_scope(party, ORGANISER):
        present = set(
            session.exec(
                select(Attendance.ticket_number).where(
                    Attendance.sitting_code == sitting.code, col(Attendance.present).is_(True)
                )
            )
        )
        scored = set(
            session.exec(select(Score.ticket_number).where(Score.sitting_code == sitting.code))
        )
        if present - scored:
            missing.append(_owed(ORGANISER, Owed.unscored, len(present - scored)))
    published = publication_of(session, sitting.code)
    if published is None and in_scope(party, ORGANISER):
        missing.append(_owed(ORGANISER, Owed.scores_unpublished))
    if published is not None:
        told_query = select(OutboxMessage.recipient_ref).where(
            OutboxMessage.sitting_code == sitting.code,
            OutboxMessage.stage == StageCode.publicity.value,
            OutboxMessage.checkpoint == "open",
            OutboxMessage.status == OutboxStatus.sent,
        )
        if party is not None:
            told_query = told_query.where(OutboxMessage.recipient_ref == party)
        told = set(session.exec(told_query))
        for school in sorted(results_by_school(session, sitting.code, party)):
            if school not in told:
                missing.append(_owed(school, Owed.results_undelivered))
    if party != ORGANISER:  # reviews are the schools' (the organiser owes their resolution)
        for school, n in sorted(unresolved_reviews(session, sitting.code, party).items()):
            missing.append(_owed(school, Owed.unresolved_review, n))
    closed = sitting.spec.window(StageCode.publicity).has_closed(as_of)
    return Condition(
        met=closed and not missing,
        missing=missing,
        note="" if closed else "publicity window still open",
    )
