"""Prefect deployments: one per sitting (its checkpoints as one-off schedules) and the ops ones."""

from datetime import timedelta
from typing import cast

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.events.schemas.automations import Posture
from prefect.schedules import RRule, Schedule
from prefect.types.entrypoint import EntrypointType

from deployments.plan import DEFAULT_REMIND_DAYS, PlannedRun, plan_checkpoints
from examflow.events import LAST_STATE_LABEL, SITTING_PREFIX, ConditionEvent
from examflow.settings import get_settings
from flows.record_site_fact import record_site_fact
from flows.sitting_checkpoint import sitting_checkpoint
from models.domain import in_shanghai
from models.sitting_calendar import CalendarSpec, SittingSpec

TAGS = ["examflow"]
# Workers import flows from the installed examflow package, so no code storage is needed.
MODULE = EntrypointType.MODULE_PATH
RERUN_STALLED = "examflow: re-run a Stalled stage when its cause may be fixed"
# One run of a sitting at a time; a run due meanwhile waits for the slot (not dropped).
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def sitting_description(spec: SittingSpec) -> str:
    """What ops read on the deployment's page: where to look."""
    return (
        f"{spec.name}: every stage checkpoint on the calendar's dates, one run at a time.\n\n"
        f"Where to look: the table artifact **{spec.code}-overview** (every stage: window, "
        f"state, schools/sites still owing, last run), and per stage the markdown artifact "
        f"{spec.code}-<stage> (who owes what); a long delivery shows a progress artifact. A "
        f"Stalled stage is re-run by itself when a fact, file, review or signature may have "
        f"fixed it (automation '{RERUN_STALLED}' on run-checkpoint); else Retry."
    )


def one_off(run: PlannedRun, sitting: str) -> Schedule:
    """A schedule that fires once, at the checkpoint's local time, with its own parameters."""
    local = in_shanghai(run.at).replace(tzinfo=None)  # the schedule's zone is Shanghai's
    return RRule(
        f"DTSTART:{local:%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY;COUNT=1",
        timezone="Asia/Shanghai",
        # no slug: with slugs Prefect patches schedules by slug and keeps the ones a changed
        # calendar dropped; without, a re-deploy replaces them all (and their runs)
        parameters={"sitting": sitting, **run.parameters},
    )


def sitting_schedules(spec: SittingSpec, remind_days: tuple[int, ...]) -> list[Schedule]:
    return [one_off(run, spec.code) for run in plan_checkpoints(spec, remind_days)]


def sitting_deployment(
    spec: SittingSpec, remind_days: tuple[int, ...] = DEFAULT_REMIND_DAYS
) -> RunnerDeployment:
    """The sitting's deployment, named by its code, with one upcoming run per checkpoint."""
    deployment = sitting_checkpoint.to_deployment(
        name=spec.code,
        schedules=sitting_schedules(spec, remind_days),
        parameters={"sitting": spec.code},
        description=sitting_description(spec),
        tags=[*TAGS, f"sitting:{spec.code}"],
        entrypoint_type=MODULE,
        concurrency_limit=ONE_AT_A_TIME,
    )
    return cast(RunnerDeployment, deployment)  # sync call: not a coroutine


def rerun_stalled_trigger(debounce: timedelta | None = None) -> DeploymentEventTrigger:
    """Re-run a stage's close checkpoint when an event says its cause may be fixed (a fact
    recorded, a file imported, a review resolved, a batch signed, a school acted) and its last
    checkpoint ended Stalled; at most once per stage per ``debounce`` (default: the setting
    EXAMFLOW_RERUN_DEBOUNCE_SECONDS, 300). The sitting and the stage come from the event, as
    strings. Applying the deployment (serve, deploy) replaces the automation: never two.

    Debounced on the trailing edge: the first event fires and the run is scheduled one
    debounce later, the events meanwhile are dropped (Prefect's reactive trigger ignores them
    for ``within`` after firing), and the run reads the database when it starts, so a cause
    fixed in several steps (two facts a minute apart) is judged once, with all of them.
    """
    if debounce is None:
        debounce = timedelta(seconds=get_settings().rerun_debounce_seconds)
    return DeploymentEventTrigger(
        name=RERUN_STALLED,
        description="Scheduled checkpoints stay the safety net: nothing depends on an event.",
        expect={e.value for e in ConditionEvent},
        match={"prefect.resource.id": f"{SITTING_PREFIX}*"},
        match_related={"prefect.resource.role": "stage", LAST_STATE_LABEL: "Stalled"},
        for_each={"related:stage:prefect.resource.id"},  # one debounce per stage
        posture=Posture.Reactive,
        threshold=1,
        within=debounce,
        parameters={
            "sitting": "{{ event.resource['examflow.sitting'] }}",
            "stage": "{{ event.resource_in_role['stage']['examflow.stage'] }}",
            "checkpoint": "close",
        },
        schedule_after=debounce,
    )


def ops_deployments(debounce: timedelta | None = None) -> list[RunnerDeployment]:
    """Record a site fact, and run any checkpoint on demand, from the UI's Run form; the
    run-checkpoint deployment also re-runs Stalled stages on events (rerun_stalled_trigger)."""
    made = [
        record_site_fact.to_deployment(
            name="record-site-fact", tags=[*TAGS, "ops"], entrypoint_type=MODULE
        ),
        sitting_checkpoint.to_deployment(
            name="run-checkpoint",
            tags=[*TAGS, "ops"],
            entrypoint_type=MODULE,
            triggers=[rerun_stalled_trigger(debounce)],
        ),
    ]
    return [cast(RunnerDeployment, d) for d in made]


def all_deployments(
    calendars: list[CalendarSpec], remind_days: tuple[int, ...] = DEFAULT_REMIND_DAYS
) -> list[RunnerDeployment]:
    sittings = [s for calendar in calendars for s in calendar.sittings]
    return [sitting_deployment(s, remind_days) for s in sittings] + ops_deployments()
