"""Prefect deployments: one per sitting (its checkpoints as one-off schedules) and the ops ones."""

from typing import cast

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import RRule, Schedule
from prefect.types.entrypoint import EntrypointType

from deployments.plan import DEFAULT_REMIND_DAYS, PlannedRun, plan_checkpoints
from flows.record_site_fact import record_site_fact
from flows.sitting_checkpoint import sitting_checkpoint
from models.domain import in_shanghai
from models.sitting_calendar import CalendarSpec, SittingSpec

TAGS = ["examflow"]
# Workers import flows from the installed examflow package, so no code storage is needed.
MODULE = EntrypointType.MODULE_PATH


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
        description=f"{spec.name}: every stage checkpoint on the calendar's dates.",
        tags=[*TAGS, f"sitting:{spec.code}"],
        entrypoint_type=MODULE,
    )
    return cast(RunnerDeployment, deployment)  # sync call: not a coroutine


def ops_deployments() -> list[RunnerDeployment]:
    """Record a site fact, and run any checkpoint on demand, from the UI's Run form."""
    made = [
        record_site_fact.to_deployment(
            name="record-site-fact", tags=[*TAGS, "ops"], entrypoint_type=MODULE
        ),
        sitting_checkpoint.to_deployment(
            name="run-checkpoint", tags=[*TAGS, "ops"], entrypoint_type=MODULE
        ),
    ]
    return [cast(RunnerDeployment, d) for d in made]


def all_deployments(
    calendars: list[CalendarSpec], remind_days: tuple[int, ...] = DEFAULT_REMIND_DAYS
) -> list[RunnerDeployment]:
    sittings = [s for calendar in calendars for s in calendar.sittings]
    return [sitting_deployment(s, remind_days) for s in sittings] + ops_deployments()
