"""Stage states, derived at ``as_of`` from each stage's window and completion condition."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from models.arrangement import SeatAssignment
from models.attendance import Attendance
from models.certificates import certificates_condition
from models.condition import (
    ORGANISER,
    Condition,
    ConditionRule,
    Missing,
    Owed,
    PartyKind,
    in_scope,
    site_fact_item,
)
from models.domain import StageCode, StageState
from models.facts import FACT_LABELS_ZH, SiteFact, facts_by_site
from models.go_no_go import Decision, GoNoGo, decisions_at, seated_candidates
from models.publicity import publicity_condition
from models.registration import Registration
from models.schools import School
from models.sitting_calendar import Window
from models.sittings import Sitting


def derive_state(window: Window, as_of: datetime, met: bool) -> StageState:
    """upcoming before the window; complete once met; stalled if closed unmet; else open."""
    if not window.has_opened(as_of):
        return StageState.upcoming
    if met:
        return StageState.complete
    if window.has_closed(as_of):
        return StageState.stalled
    return StageState.open


# One party's reads of the registration rule, on every page of the school portal: built
# once, as a statement built per call costs more (its cache key) than running it.
_WITHOUT_SITE_OF = (
    select(Registration.site_code, func.count())
    .join(School, col(School.code) == col(Registration.site_code))
    .where(
        Registration.sitting_code == bindparam("sitting"),
        col(School.is_site).is_(False),
        Registration.site_code == bindparam("party"),
    )
    .group_by(Registration.site_code)
)
_OVER_SCALE_OF = (
    select(School.code, School.pilot_scale, func.count())
    .join(Registration, col(Registration.school_code) == col(School.code))
    .join(Sitting, col(Sitting.code) == col(Registration.sitting_code))
    .where(
        Sitting.year == bindparam("year"),
        col(School.is_pilot).is_(True),
        School.code == bindparam("party"),
    )
    .group_by(col(School.code), col(School.pilot_scale))
)


def registration_condition(
    session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
) -> Condition:
    """Frozen after the deadline; every candidate at a site; no school over its pilot scale."""
    spec = sitting.spec
    missing: list[Missing] = []
    without_site_query = (
        select(Registration.site_code, func.count())
        .join(School, col(School.code) == col(Registration.site_code))
        .where(Registration.sitting_code == sitting.code, col(School.is_site).is_(False))
        .group_by(Registration.site_code)
    )
    without_site = (
        session.exec(without_site_query).all()
        if party is None
        else session.exec(_WITHOUT_SITE_OF, params={"sitting": sitting.code, "party": party}).all()
    )
    for site, n in without_site:
        missing.append(
            Missing(
                party=site,
                party_kind=PartyKind.school,
                stage=StageCode.registration,
                item=Owed.not_a_site,
                count=n,
            )
        )
    over_query = (
        select(School.code, School.pilot_scale, func.count())
        .join(Registration, col(Registration.school_code) == col(School.code))
        .join(Sitting, col(Sitting.code) == col(Registration.sitting_code))
        .where(Sitting.year == spec.year, col(School.is_pilot).is_(True))
        .group_by(col(School.code), col(School.pilot_scale))
    )
    over = (
        session.exec(over_query).all()
        if party is None
        else session.exec(_OVER_SCALE_OF, params={"year": spec.year, "party": party}).all()
    )
    for code, scale, n in over:
        if scale is not None and n > scale:
            missing.append(
                Missing(
                    party=code,
                    party_kind=PartyKind.school,
                    stage=StageCode.registration,
                    item=Owed.over_pilot_scale,
                    count=n,
                    detail={"year": spec.year, "pilot_scale": scale},
                )
            )
    frozen = spec.window(StageCode.registration).has_closed(as_of)
    note = "" if frozen else "registration is still open"
    return Condition(met=frozen and not missing, missing=missing, note=note)


_ACTIVE_SITE = (  # one site's question, on every page of the school portal (built once)
    select(Registration.site_code)
    .where(
        Registration.sitting_code == bindparam("sitting"),
        Registration.site_code == bindparam("site"),
    )
    .limit(1)
)


def active_sites(session: Session, sitting_code: str, site: str | None = None) -> list[str]:
    """The sites concerned by a sitting: those with candidates in it, own or borrowing
    (of them, ``site`` alone, if given)."""
    if site is not None:
        params = {"sitting": sitting_code, "site": site}
        return list(session.exec(_ACTIVE_SITE, params=params))
    query = select(Registration.site_code).where(Registration.sitting_code == sitting_code)
    return sorted(session.exec(query.group_by(col(Registration.site_code))))


SITE_FACTS: dict[StageCode, tuple[SiteFact, ...]] = {
    StageCode.training: (SiteFact.affairs_trained, SiteFact.tech_trained),
    StageCode.platform_install: (SiteFact.platform_installed, SiteFact.mock_passed),
    StageCode.materials: (
        SiteFact.tickets_downloaded,
        SiteFact.labels_downloaded,
        SiteFact.door_signs_downloaded,
        SiteFact.sign_in_sheets_downloaded,
        SiteFact.rooms_laid_out,
    ),
}
SITE_FACTS[StageCode.exam] = tuple(f for stage in SITE_FACTS for f in SITE_FACTS[stage])

OrganiserPart = Callable[[Session, Sitting, datetime, str | None], list[Missing]]
"""A stage's part besides the site facts: (session, sitting, as_of, party scope) -> items."""


def rooms_arranged(
    session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
) -> list[Missing]:
    """Every registered candidate has a room and seat: the organiser's part of training
    (examflow arrange, or the training close). Shortfalls name the site and level."""
    if not in_scope(party, ORGANISER):
        return []
    seated = dict(
        session.exec(
            select(SeatAssignment.registration_id, SeatAssignment.seat).where(
                SeatAssignment.sitting_code == sitting.code
            )
        ).all()
    )
    short: Counter[tuple[str, str]] = Counter()
    for rid, site, level in session.exec(
        select(Registration.id, Registration.site_code, Registration.level).where(
            Registration.sitting_code == sitting.code
        )
    ):
        if rid is None or not seated.get(rid):
            short[(site, level)] += 1
    if short and not seated:
        return [_organiser(Owed.rooms_not_arranged, sum(short.values()))]
    return [
        _organiser(Owed.no_seat, n, {"site": site, "level": level})
        for (site, level), n in sorted(short.items())
    ]


def _organiser(item: Owed, count: int, detail: dict[str, str] | None = None) -> Missing:
    return Missing(
        party=ORGANISER,
        party_kind=PartyKind.organiser,
        stage=StageCode.training,
        item=item,
        count=count,
        detail=dict(detail or {}),
    )


def _unrecorded_seats() -> Select[str, int]:
    recorded = (
        select(Attendance.id)
        .where(
            Attendance.sitting_code == bindparam("sitting"),
            col(Attendance.ticket_number) == col(SeatAssignment.ticket_number),
        )
        .exists()
    )
    return (
        select(SeatAssignment.site_code, func.count())
        .where(SeatAssignment.sitting_code == bindparam("sitting"), col(SeatAssignment.seat) > 0)
        .where(~recorded)
        .group_by(col(SeatAssignment.site_code))
    )


_UNRECORDED_SEATS = _unrecorded_seats()  # built once (see _WITHOUT_SITE_OF)
_UNRECORDED_SEATS_OF = _unrecorded_seats().where(SeatAssignment.site_code == bindparam("site"))


def attendance_recorded(
    session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
) -> list[Missing]:
    """Every arranged candidate is recorded present or absent (examflow attendance)."""
    missing = dict(
        session.exec(_UNRECORDED_SEATS, params={"sitting": sitting.code}).all()
        if party is None
        else session.exec(
            _UNRECORDED_SEATS_OF, params={"sitting": sitting.code, "site": party}
        ).all()
    )
    return [
        Missing(
            party=site,
            party_kind=PartyKind.site,
            stage=StageCode.exam,
            item=Owed.no_attendance,
            count=n,
        )
        for site, n in sorted(missing.items())
    ]


ORGANISER_PARTS: dict[StageCode, list[OrganiserPart]] = {
    StageCode.training: [rooms_arranged],
    StageCode.exam: [attendance_recorded],
}


class SiteFactsRead:
    """The site facts held and the active sites of one sitting (of one party, if given),
    each read once however many of the four site-fact stages are evaluated with it."""

    def __init__(self, session: Session, sitting_code: str, party: str | None) -> None:
        self.session, self.sitting_code, self.party = session, sitting_code, party
        self._held: dict[datetime, dict[str, set[SiteFact]]] = {}
        self._active: list[str] | None = None

    def held(self, until: datetime) -> dict[str, set[SiteFact]]:
        if until not in self._held:
            self._held[until] = facts_by_site(
                self.session, self.sitting_code, until=until, site=self.party
            )
        return self._held[until]

    def active(self) -> list[str]:
        if self._active is None:
            self._active = active_sites(self.session, self.sitting_code, site=self.party)
        return self._active


def site_facts_condition(stage: StageCode) -> ConditionRule:
    """Every active site holds the stage's facts; plus the organiser's own parts, if any."""

    def condition(
        session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
    ) -> Condition:
        return judge_site_facts(stage, sitting, as_of, SiteFactsRead(session, sitting.code, party))

    return condition


def judge_site_facts(
    stage: StageCode, sitting: Sitting, as_of: datetime, read: SiteFactsRead
) -> Condition:
    """``site_facts_condition``'s rule over facts already read (or read now, once)."""
    session, party = read.session, read.party
    held = read.held(_readiness_cutoff(sitting, stage, as_of))
    # the exam's go/no-go: a decided site (go: waived; hold: does not open) needs no facts;
    # the organiser owes the held sites' candidates, so it reads every site's decision
    site = None if party in (None, ORGANISER) else party
    decided = decisions_at(session, sitting.code, as_of, site) if stage is StageCode.exam else {}
    missing = [
        site_fact_item(site, stage, fact)
        for site in read.active()
        if site not in decided
        for fact in SITE_FACTS[stage]
        if fact not in held.get(site, set())
    ]
    for part in ORGANISER_PARTS.get(stage, []):
        missing.extend(part(session, sitting, as_of, party))
    note = ""
    if decided:
        missing = _go_no_go_applied(session, sitting, missing, decided, party)
        note = "go/no-go: " + "; ".join(str(d) for _, d in sorted(decided.items()))
    if not sitting.spec.window(StageCode.registration).has_closed(as_of):
        # the sites concerned are not final while schools can still register
        return Condition(met=False, missing=missing, note="registration still open")
    return Condition(met=not missing, missing=missing, note=note)


def _go_no_go_applied(
    session: Session,
    sitting: Sitting,
    missing: list[Missing],
    decided: dict[str, Decision],
    party: str | None = None,
) -> list[Missing]:
    """A waived site's items carry the waiver as their detail; a held site owes no attendance:
    instead the organiser owes its candidates without attendance (re-seated elsewhere, moved
    to a later sitting, or recorded absent), listed by ticket number."""
    kept: list[Missing] = []
    for m in missing:
        d = decided.get(m.party) if m.party_kind is PartyKind.site else None
        if d is None:
            kept.append(m)
        elif d.choice is GoNoGo.go:
            waiver = {"waiver": d.reason, "waived_by": d.decided_by}
            kept.append(m.model_copy(update={"detail": {**m.detail, **waiver}}))
    if not in_scope(party, ORGANISER):
        return kept
    recorded = set(
        session.exec(
            select(Attendance.ticket_number).where(Attendance.sitting_code == sitting.code)
        )
    )
    for site, d in sorted(decided.items()):
        if d.choice is not GoNoGo.hold:
            continue
        tickets = [
            c.ticket_number
            for c in seated_candidates(session, sitting.code, site)
            if c.ticket_number not in recorded
        ]
        if tickets:
            kept.append(
                Missing(
                    party=ORGANISER,
                    party_kind=PartyKind.organiser,
                    stage=StageCode.exam,
                    item=Owed.held_site,
                    count=len(tickets),
                    detail={"site": site, "tickets": tickets, "reason": d.reason},
                )
            )
    return kept


def site_readiness(
    session: Session, sitting: Sitting, until: datetime | None = None
) -> dict[str, list[str]]:
    """Per active site, what it still lacks to be ready for the exam ([] when ready)."""
    held = facts_by_site(session, sitting.code, until=until)
    return {
        site: [
            FACT_LABELS_ZH[f] for f in SITE_FACTS[StageCode.exam] if f not in held.get(site, set())
        ]
        for site in active_sites(session, sitting.code)
    }


def _readiness_cutoff(sitting: Sitting, stage: StageCode, as_of: datetime) -> datetime:
    """Facts count once recorded, as of ``as_of`` (a replay at an earlier moment does not see
    later facts); for the exam, only facts recorded before the first slot make a site ready."""
    if stage is not StageCode.exam:
        return as_of
    spec = sitting.spec
    first = min(spec.slot_starts_at(level) for level in spec.levels)
    return min(first, as_of)


CONDITIONS: dict[StageCode, ConditionRule] = {
    StageCode.registration: registration_condition,
    **{stage: site_facts_condition(stage) for stage in SITE_FACTS},
    StageCode.publicity: publicity_condition,
    StageCode.certificates: certificates_condition,
}


@dataclass(frozen=True)
class StageReport:
    stage: StageCode
    window: Window
    state: StageState
    condition: Condition

    def as_json(self) -> dict[str, object]:
        opens = self.window.opens_at
        return {
            "stage": self.stage.value,
            "opens": opens.isoformat(timespec="seconds") if opens else None,
            "closes": self.window.closes_at.isoformat(timespec="seconds"),
            "state": self.state.value,
            "missing": [str(m) for m in self.condition.missing],
            "items": [m.as_json() for m in self.condition.missing],
        }


def evaluate_stage(
    session: Session, sitting: Sitting, stage: StageCode, as_of: datetime
) -> StageReport:
    window = sitting.spec.window(stage)
    condition = CONDITIONS[stage](session, sitting, as_of)
    return StageReport(stage, window, derive_state(window, as_of, condition.met), condition)


def evaluate_sitting(session: Session, sitting: Sitting, as_of: datetime) -> list[StageReport]:
    return [evaluate_stage(session, sitting, stage, as_of) for stage in StageCode]


def items_for_party(
    session: Session,
    sitting: Sitting,
    party: str,
    as_of: datetime,
    read: SiteFactsRead | None = None,
) -> dict[StageCode, list[Missing]]:
    """What one school or site still owes in each stage of a sitting at ``as_of``: the same
    items the flows' artifacts, reminders and ``status`` render (stages where it owes
    nothing are left out; every stage is evaluated, whatever its window), each stage's rule
    evaluated for that party alone."""
    owed: dict[StageCode, list[Missing]] = {}
    read = read or SiteFactsRead(session, sitting.code, party)  # one read for four stages
    for stage in StageCode:
        if stage in SITE_FACTS:
            mine = judge_site_facts(stage, sitting, as_of, read).missing
        else:
            mine = CONDITIONS[stage](session, sitting, as_of, party).missing
        if mine:
            owed[stage] = mine
    return owed
