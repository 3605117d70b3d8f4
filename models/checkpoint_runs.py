"""A sitting at a glance: each stage's last checkpoint run, and the overview of all stages.

The last run of each stage (which checkpoint, the state it ended in, the moment it judged
and when it finished) is kept here, written by the stage flow's last task, so that the
overview and the events that may re-run a stalled stage read it from the database, whatever
Prefect keeps. No clock: the caller passes ``finished_at``.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Field, Session, SQLModel, select

from models.condition import PartyKind
from models.domain import Checkpoint, StageCode, StageState, in_utc
from models.facts import SiteFact
from models.sittings import Sitting
from models.stages import SITE_FACTS, evaluate_sitting

STALLED = "Stalled"


class LastCheckpointRun(SQLModel, table=True):
    """The last checkpoint run of one stage of one sitting (one row per stage, replaced)."""

    sitting_code: str = Field(foreign_key="sitting.code", primary_key=True)
    stage: str = Field(primary_key=True)
    checkpoint: str
    state: str  # the run's state name: StageComplete, Open, Upcoming, Stalled, MailPending
    as_of: datetime  # the moment the run judged the stage (UTC)
    finished_at: datetime  # when the run finished (UTC)
    flow_run_id: str | None = None


@dataclass(frozen=True)
class LastRun:
    checkpoint: Checkpoint
    state: str
    as_of: datetime
    finished_at: datetime
    flow_run_id: str | None

    @property
    def stalled(self) -> bool:
        return self.state == STALLED


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def record_last_run(
    session: Session,
    sitting: str,
    stage: StageCode,
    checkpoint: Checkpoint,
    state: str,
    *,
    as_of: datetime,
    finished_at: datetime,
    flow_run_id: str | None = None,
) -> None:
    """Keep this run as the stage's last one (a run that judged an earlier moment than the
    one kept, e.g. a replay of the past, does not replace it)."""
    row = session.get(LastCheckpointRun, (sitting, stage.value))
    if row is not None and _aware(row.as_of) > in_utc(as_of):
        return
    if row is None:
        row = LastCheckpointRun(
            sitting_code=sitting,
            stage=stage.value,
            checkpoint=checkpoint.value,
            state=state,
            as_of=in_utc(as_of),
            finished_at=in_utc(finished_at),
            flow_run_id=flow_run_id,
        )
    else:
        row.checkpoint = checkpoint.value
        row.state = state
        row.as_of = in_utc(as_of)
        row.finished_at = in_utc(finished_at)
        row.flow_run_id = flow_run_id
    session.add(row)
    session.flush()


def last_runs(session: Session, sitting: str) -> dict[StageCode, LastRun]:
    rows = session.exec(select(LastCheckpointRun).where(LastCheckpointRun.sitting_code == sitting))
    return {
        StageCode(r.stage): LastRun(
            Checkpoint(r.checkpoint),
            r.state,
            _aware(r.as_of),
            _aware(r.finished_at),
            r.flow_run_id,
        )
        for r in rows
    }


@dataclass(frozen=True)
class OverviewRow:
    """One stage of a sitting at a glance."""

    stage: StageCode
    opens: datetime | None
    closes: datetime
    state: StageState
    owing: int  # schools or sites that still owe something
    owing_kind: str  # 'schools' or 'sites' ('' when nobody owes anything)
    organiser_owes: int  # the organiser's own missing items (rooms, scores, …)
    last_run: LastRun | None


def sitting_overview(session: Session, sitting: Sitting, as_of: datetime) -> list[OverviewRow]:
    """Every stage with its window, state at ``as_of``, how many schools or sites still owe
    something, and its last checkpoint run."""
    runs = last_runs(session, sitting.code)
    rows: list[OverviewRow] = []
    for report in evaluate_sitting(session, sitting, as_of):
        missing = report.condition.missing
        parties = {
            (m.party, m.party_kind) for m in missing if m.party_kind is not PartyKind.organiser
        }
        kinds = {kind for _, kind in parties}
        rows.append(
            OverviewRow(
                stage=report.stage,
                opens=report.window.opens_at,
                closes=report.window.closes_at,
                state=report.state,
                owing=len(parties),
                owing_kind="/".join(sorted(f"{k.value}s" for k in kinds)),
                organiser_owes=sum(1 for m in missing if m.party_kind is PartyKind.organiser),
                last_run=runs.get(report.stage),
            )
        )
    return rows


# What an action can change: the stages whose condition it may complete. A site fact counts
# for its own stage (the exam's readiness needs facts recorded before the first slot, so a
# fact recorded later cannot complete it).
FACT_STAGES: dict[SiteFact, StageCode] = {
    fact: stage
    for stage, facts in SITE_FACTS.items()
    if stage is not StageCode.exam
    for fact in facts
}
IMPORT_STAGES: dict[str, tuple[StageCode, ...]] = {
    "registration": (StageCode.registration,),
    "schools": (StageCode.registration,),
    "rooms": (StageCode.training,),
    "attendance": (StageCode.exam,),
    "scores": (StageCode.publicity,),
    "review": (StageCode.publicity,),
    "facts": (StageCode.training, StageCode.platform_install, StageCode.materials),
}
"""Importer kind -> the stages a stored file may complete (fee standards complete none)."""
