"""The exam's go/no-go: ops decide, per site that is not ready the day before the exam, to
open it anyway (go: readiness waived, with a reason) or not (hold: the site does not open;
its candidates are for ops to re-seat or move to a later sitting).

Each decision is a row (who, when, why, through what); the latest one per site counts, and
only from the moment it was made (a replay of an earlier moment does not see it). The exam
stage's condition reads :func:`decisions_at`; the decision mail to the site is planned here
(:func:`plan_decision_messages`) and rendered, queued and sent elsewhere. No clock: time
comes in as ``as_of``.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam
from sqlmodel import Field, Session, SQLModel, col, select

from models.arrangement import SeatAssignment
from models.domain import STAGE_LABELS_ZH, StageCode, in_shanghai, in_utc
from models.registration import Registration
from models.schools import School
from models.sittings import Sitting

GO_NO_GO_CHECKPOINT = "go-no-go"
"""The outbox's checkpoint part of a decision mail: ``go-no-go-<decision id>``."""


class GoNoGo(StrEnum):
    go = "go"  # the site opens; its readiness is waived
    hold = "hold"  # the site does not open


GO_NO_GO_LABELS_ZH = {GoNoGo.go: "准予开考（豁免就绪要求）", GoNoGo.hold: "暂不开考"}


class GoNoGoError(ValueError):
    """A decision that cannot be recorded (unknown or inactive site, no reason, too late)."""


class GoNoGoDecision(SQLModel, table=True):
    """One go/no-go decision for one site of one sitting (the latest per site counts)."""

    id: int | None = Field(default=None, primary_key=True)
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    site_code: str = Field(foreign_key="school.code", index=True)
    choice: str  # GoNoGo
    reason: str
    note: str = ""
    decided_by: str = Field(description="who decided: the name ops gave in the form or CLI")
    decided_at: datetime
    via: str = Field(description="where: 'prefect-ui' (the paused run's form) or 'cli'")


@dataclass(frozen=True)
class Decision:
    """A decision as the condition, the mail and the flow read it."""

    id: int
    site: str
    choice: GoNoGo
    reason: str
    note: str
    decided_by: str
    decided_at: datetime
    via: str

    def __str__(self) -> str:
        what = "go (readiness waived)" if self.choice is GoNoGo.go else "hold"
        return f"{self.site} {what} by {self.decided_by}: {self.reason}"


def _decision(row: GoNoGoDecision) -> Decision:
    assert row.id is not None
    return Decision(
        id=row.id,
        site=row.site_code,
        choice=GoNoGo(row.choice),
        reason=row.reason,
        note=row.note,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        via=row.via,
    )


def first_slot_start(sitting: Sitting) -> datetime:
    spec = sitting.spec
    return min(spec.slot_starts_at(level) for level in spec.levels)


def _active_sites(session: Session, sitting_code: str) -> set[str]:
    return set(
        session.exec(
            select(Registration.site_code).where(Registration.sitting_code == sitting_code)
        )
    )


def record_decision(
    session: Session,
    sitting: Sitting,
    site: str,
    choice: GoNoGo,
    *,
    reason: str,
    decided_by: str,
    as_of: datetime,
    via: str,
    note: str = "",
) -> Decision:
    """Record ops' decision for ``site`` at ``as_of``; it replaces any earlier one.

    Refused: a site without candidates in the sitting, a decision without a reason or without
    who made it, and any decision once the exam's first slot has begun.
    """
    if site not in _active_sites(session, sitting.code):
        raise GoNoGoError(f"{site!r} is not a site with candidates in {sitting.code}")
    if not reason.strip():
        raise GoNoGoError(f"{site}: a go/no-go decision needs a reason")
    if not decided_by.strip():
        raise GoNoGoError(f"{site}: say who decides")
    starts = first_slot_start(sitting)
    if in_utc(as_of) >= in_utc(starts):
        raise GoNoGoError(
            f"{sitting.code}'s exam began at {in_shanghai(starts):%Y-%m-%d %H:%M}: "
            "too late for a go/no-go decision"
        )
    row = GoNoGoDecision(
        sitting_code=sitting.code,
        site_code=site,
        choice=choice.value,
        reason=reason.strip(),
        note=note.strip(),
        decided_by=decided_by.strip(),
        decided_at=in_utc(as_of),
        via=via,
    )
    session.add(row)
    session.flush()
    return _decision(row)


# One site's decisions, read on every page of the school portal: built once, as a statement
# built per call costs more (its cache key) than running it.
_DECISIONS_OF_SITE = (
    select(GoNoGoDecision)
    .where(
        GoNoGoDecision.sitting_code == bindparam("sitting"),
        col(GoNoGoDecision.decided_at) <= bindparam("as_of"),
        GoNoGoDecision.site_code == bindparam("site"),
    )
    .order_by(col(GoNoGoDecision.decided_at), col(GoNoGoDecision.id))
)


def decisions_at(
    session: Session, sitting_code: str, as_of: datetime, site: str | None = None
) -> dict[str, Decision]:
    """The decision that counts for each decided site (or ``site`` alone, if given) at
    ``as_of`` (the latest made by then)."""
    if site is not None:
        params = {"sitting": sitting_code, "as_of": in_utc(as_of), "site": site}
        rows = session.exec(_DECISIONS_OF_SITE, params=params).all()
    else:
        rows = session.exec(
            select(GoNoGoDecision)
            .where(
                GoNoGoDecision.sitting_code == sitting_code,
                col(GoNoGoDecision.decided_at) <= in_utc(as_of),
            )
            .order_by(col(GoNoGoDecision.decided_at), col(GoNoGoDecision.id))
        ).all()
    return {row.site_code: _decision(row) for row in rows}


def decided_sites(session: Session, sitting_code: str) -> set[str]:
    """Every site with a decision recorded, whenever it was made (asked about no more)."""
    return set(
        session.exec(
            select(GoNoGoDecision.site_code).where(GoNoGoDecision.sitting_code == sitting_code)
        )
    )


def decisions_by_id(session: Session, ids: Iterable[int]) -> list[Decision]:
    wanted = list(ids)
    if not wanted:
        return []
    rows = session.exec(select(GoNoGoDecision).where(col(GoNoGoDecision.id).in_(wanted))).all()
    return sorted((_decision(r) for r in rows), key=lambda d: (d.site, d.id))


@dataclass(frozen=True)
class SeatedCandidate:
    """A candidate seated at a site: what ops need to re-seat or move them (no ID number)."""

    ticket_number: str
    name: str
    level: str
    school: str  # the school code, or the site for a social candidate


def seated_candidates(session: Session, sitting_code: str, site: str) -> list[SeatedCandidate]:
    """The candidates with a seat at ``site`` in the sitting, by ticket number."""
    rows = session.exec(
        select(
            SeatAssignment.ticket_number,
            Registration.name,
            Registration.level,
            Registration.school_code,
        )
        .join(Registration, col(Registration.id) == col(SeatAssignment.registration_id))
        .where(
            SeatAssignment.sitting_code == sitting_code,
            SeatAssignment.site_code == site,
            col(SeatAssignment.seat) > 0,
        )
        .order_by(col(SeatAssignment.ticket_number))
    ).all()
    return [
        SeatedCandidate(ticket_number=t, name=n, level=lv, school=s or site) for t, n, lv, s in rows
    ]


@dataclass(frozen=True)
class PlannedDecisionMail:
    """One decision mail: to the site's exam-affairs contact, technical contact in copy."""

    decision_id: int
    recipient_ref: str
    to_addr: str
    cc_addr: str | None
    context: dict[str, object]

    @property
    def checkpoint(self) -> str:
        return f"{GO_NO_GO_CHECKPOINT}-{self.decision_id}"


def plan_decision_messages(
    session: Session, sitting: Sitting, decisions: list[Decision]
) -> list[PlannedDecisionMail]:
    """Each decision mailed to its site: what was decided, why, by whom; a held site also
    gets the list of its candidates (ticket number, name, level) that will not sit there."""
    planned = []
    for d in decisions:
        school = session.get(School, d.site)
        if school is None:
            continue
        tech = school.tech_email
        candidates = (
            [
                {"ticket_number": c.ticket_number, "name": c.name, "level": c.level}
                for c in seated_candidates(session, sitting.code, d.site)
            ]
            if d.choice is GoNoGo.hold
            else []
        )
        context: dict[str, object] = {
            "certificate": sitting.certificate,
            "sitting_code": sitting.code,
            "sitting_name": sitting.name,
            "stage_label": STAGE_LABELS_ZH[StageCode.exam],
            "recipient_name": school.name,
            "site": d.site,
            "go": d.choice is GoNoGo.go,
            "choice_label": GO_NO_GO_LABELS_ZH[d.choice],
            "reason": d.reason,
            "note": d.note,
            "decided_by": d.decided_by,
            "decided_at": f"{in_shanghai(d.decided_at):%Y年%m月%d日 %H:%M}（北京时间）",
            "exam_day": f"{in_shanghai(first_slot_start(sitting)):%Y年%m月%d日}",
            "candidates": candidates,
        }
        planned.append(
            PlannedDecisionMail(
                decision_id=d.id,
                recipient_ref=d.site,
                to_addr=school.affairs_email,
                cc_addr=tech if tech and tech != school.affairs_email else None,
                context=context,
            )
        )
    return planned
