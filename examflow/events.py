"""Prefect events for what may change a stage's condition: hints, never a reason to fail.

A fact recorded (by ops or a school), a file imported, a review resolved, a batch signed:
each emits one event per stage it may complete, on the resource ``examflow.sitting.<code>``
with the stage as related resource (role ``stage``). The related resource carries the
state the stage's last checkpoint run ended in (``examflow.last-checkpoint-state``), read
from the database, so that the automation made by ``deployments.build`` re-runs only stages
whose last checkpoint ended Stalled. Codes only: sitting, stage, school or site code, fact or
importer kind; no names, no ID numbers, no addresses.

Best effort: a Prefect that cannot be reached is logged and ignored (the database is the
truth and the scheduled checkpoints are the safety net). Inside a flow run the event goes
through Prefect's own events client; from a shell (the CLI, the portal) it is one POST to
``$PREFECT_API_URL/events`` with a short timeout, so that an unreachable server costs at most
that (Prefect's websocket client retries for ~9 s before a process may exit), and without
PREFECT_API_URL nothing is sent: no server, no automation to wake.
"""

import base64
import logging
import os
import sys
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum

from examflow.db import session_scope
from models.checkpoint_runs import last_runs
from models.domain import StageCode

log = logging.getLogger("examflow.events")
TIMEOUT_S = 3.0
SITTING_PREFIX = "examflow.sitting."
LAST_STATE_LABEL = "examflow.last-checkpoint-state"
NO_RUN_YET = "none"


class ConditionEvent(StrEnum):
    """The events that may change a stage's condition."""

    fact_recorded = "examflow.fact.recorded"
    file_imported = "examflow.file.imported"
    review_resolved = "examflow.review.resolved"
    batch_signed = "examflow.batch.signed"
    school_acted = "examflow.school.acted"  # the portal's (portal/events.py)


def stage_resource_id(sitting: str, stage: StageCode | str) -> str:
    return f"examflow.stage.{sitting}.{StageCode(stage).value}"


def condition_event(
    event: ConditionEvent,
    sitting: str,
    stage: StageCode,
    last_state: str,
    *,
    party: str | None = None,
    what: str = "",
    occurred: datetime | None = None,
    sitting_related: bool = False,
) -> dict[str, object]:
    """The event as Prefect's API takes it (JSON). ``sitting_related``: the sitting is also a
    related resource (role ``sitting``) after the stage, as the portal's event names it; the
    main resource stays the sitting, which the automation matches."""
    resource = {
        "prefect.resource.id": f"{SITTING_PREFIX}{sitting}",
        "prefect.resource.name": sitting,
        "examflow.sitting": sitting,
    }
    if party:
        resource["examflow.party"] = party
    if what:
        resource["examflow.what"] = what
    related = [
        {
            "prefect.resource.id": stage_resource_id(sitting, stage),
            "prefect.resource.role": "stage",
            "prefect.resource.name": f"{sitting} {stage.value}",
            "examflow.sitting": sitting,
            "examflow.stage": stage.value,
            LAST_STATE_LABEL: last_state,
        }
    ]
    if sitting_related:
        related.append(
            {
                "prefect.resource.id": f"{SITTING_PREFIX}{sitting}",
                "prefect.resource.role": "sitting",
                "prefect.resource.name": sitting,
                "examflow.sitting": sitting,
            }
        )
    return {
        "id": str(uuid.uuid4()),
        "occurred": (occurred or datetime.now(UTC)).isoformat(),
        "event": event.value,
        "resource": resource,
        "related": related,
        "payload": {},
    }


def emit_condition_changed(
    event: ConditionEvent,
    sitting: str,
    stages: Iterable[StageCode | str],
    *,
    party: str | None = None,
    what: str = "",
    as_of: datetime | None = None,
    sitting_related: bool = False,
) -> int:
    """Emit ``event`` once per stage in ``stages`` and refresh the sitting's overview artifact
    (at ``as_of``, default now); returns how many events were sent (0 when Prefect is not
    configured or not reachable). Never raises. ``sitting_related``: see condition_event."""
    sent = 0
    try:
        wanted = list(dict.fromkeys(StageCode(s) for s in stages))
        if not wanted:
            return 0
        in_flow = _in_flow_run()
        api_url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
        if not in_flow and not api_url:
            return 0
        with session_scope() as session:
            runs = last_runs(session, sitting)
        events = [
            condition_event(
                event,
                sitting,
                stage,
                runs[stage].state if stage in runs else NO_RUN_YET,
                party=party,
                what=what,
                sitting_related=sitting_related,
            )
            for stage in wanted
        ]
        if in_flow:
            _emit_in_flow(events)
        else:
            post_to_prefect(api_url, "/events", events)
        sent = len(events)
    except Exception as exc:
        log.warning("event %s for %s not emitted: %s", event.value, sitting, type(exc).__name__)
        return sent
    from examflow.overview import publish_overview, publish_overview_in_run

    moment = as_of or datetime.now(UTC)
    if in_flow:
        publish_overview_in_run(sitting, moment)
    else:
        publish_overview(sitting, moment)
    return sent


def _in_flow_run() -> bool:
    if "prefect" not in sys.modules:
        return False  # a shell that never imported Prefect is not inside a flow run
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _emit_in_flow(events: list[dict[str, object]]) -> None:
    from prefect.events import emit_event

    for e in events:
        emit_event(
            event=str(e["event"]),
            resource=_labels(e["resource"]),
            related=[_labels(r) for r in _list(e["related"])],
        )


def _labels(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def api_headers() -> dict[str, str]:
    """Prefect's own ways to authenticate: an API key (Cloud) or a basic-auth string."""
    if key := os.environ.get("PREFECT_API_KEY"):
        return {"Authorization": f"Bearer {key}"}
    if auth := os.environ.get("PREFECT_API_AUTH_STRING"):
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return {}


def post_to_prefect(api_url: str, path: str, body: object) -> None:
    """One request to the Prefect API, with a short timeout; raises on any failure."""
    import httpx

    response = httpx.post(f"{api_url}{path}", json=body, headers=api_headers(), timeout=TIMEOUT_S)
    response.raise_for_status()


def emit_file_imported(kind: str, sitting: str | None, as_of: datetime) -> int:
    """A file of importer ``kind`` was stored: an event per stage it may complete, for its
    sitting, or for every sitting when the file has none (the register, rooms)."""
    from models.checkpoint_runs import IMPORT_STAGES

    stages = IMPORT_STAGES.get(kind, ())
    if not stages or not (_in_flow_run() or os.environ.get("PREFECT_API_URL")):
        return 0
    sittings = [sitting] if sitting is not None else _sitting_codes()
    return sum(
        emit_condition_changed(ConditionEvent.file_imported, code, stages, what=kind, as_of=as_of)
        for code in sittings
    )


def _sitting_codes() -> list[str]:
    try:
        from sqlmodel import select

        from models.sittings import Sitting

        with session_scope() as session:
            return sorted(session.exec(select(Sitting.code)))
    except Exception as exc:
        log.warning("sittings not read for events: %s", type(exc).__name__)
        return []
