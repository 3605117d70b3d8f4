"""The process work pool that `examflow deploy` targets, and the automations that recover a
checkpoint run whose worker died.

A worker that dies (SIGKILL, a machine lost) leaves its flow run Running for ever. Prefect's
answer, as its documentation gives it ("Detect zombie flows"): flow runs send heartbeats
(``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, set on every worker; 30 s at least), and an automation
marks a run Crashed when no heartbeat, and no terminal state, follows its last heartbeat
within ``within`` seconds. A second automation puts an examflow run that crashed back to
Scheduled (as the UI's Retry does), so any worker of the pool runs it again: a re-run sends
only what did not go out (the outbox), after the dead run's claims on its rows expire.
Both are created by `examflow deploy`, idempotently (found by name, updated in place).
"""

from contextlib import suppress
from datetime import timedelta

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectAlreadyExists

ZOMBIE_AUTOMATION = "examflow: crash zombie flow runs"
RERUN_AUTOMATION = "examflow: re-run crashed checkpoint runs"
DEFAULT_ZOMBIE_AFTER = timedelta(seconds=90)  # three missed heartbeats at 30 s


async def ensure_process_pool(name: str) -> None:
    async with get_client() as client:
        with suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def zombie_automation(within: timedelta = DEFAULT_ZOMBIE_AFTER) -> AutomationCore:
    """Prefect's documented zombie detector: a flow run whose heartbeat, once seen, is not
    followed by another heartbeat or a terminal state within ``within`` is marked Crashed."""
    terminal = ["Completed", "Failed", "Cancelled", "Crashed"]
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Marks a flow run Crashed when its heartbeats stop (its worker died).",
        trigger=EventTrigger(
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in terminal)},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message="Flow run marked as crashed due to missing heartbeats.",
            )
        ],
    )


def rerun_automation() -> AutomationCore:
    """An examflow flow run (tag ``examflow``) that crashed is scheduled again, as Retry does."""
    return AutomationCore(
        name=RERUN_AUTOMATION,
        description="Schedules an examflow run again once it crashed; any worker picks it up.",
        trigger=EventTrigger(
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            match_related={
                "prefect.resource.role": "tag",
                "prefect.resource.id": "prefect.tag.examflow",
            },
            expect={"prefect.flow-run.Crashed"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                message="Re-run after a crash (its worker stopped).",
                force=True,
            )
        ],
    )


async def ensure_crash_recovery(zombie_after: timedelta = DEFAULT_ZOMBIE_AFTER) -> None:
    """Create or update the two automations above, one of each whatever the calls."""
    async with get_client() as client:
        for automation in (zombie_automation(zombie_after), rerun_automation()):
            found = await client.read_automations_by_name(automation.name)
            if not found:
                await client.create_automation(automation)
                continue
            await client.update_automation(found[0].id, automation)
            for extra in found[1:]:
                await client.delete_automation(extra.id)
