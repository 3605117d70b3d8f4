"""Prefect events for school actions: hints for automations, never a reason to fail."""

import logging
import os

log = logging.getLogger("portal.events")
SCHOOL_ACTED = "examflow.school.acted"


def emit_school_acted(sitting: str, stage: str, action: str, school_code: str) -> None:
    """``examflow.school.acted`` on ``examflow.sitting.<code>``, the stage as related resource.

    School codes and action names only: no names, no ID numbers, no addresses. Best effort:
    an unreachable Prefect is logged and ignored (the database is the truth); without
    PREFECT_API_URL there is no server to tell, and nothing is sent.
    """
    try:
        if not os.environ.get("PREFECT_API_URL"):
            # No Prefect server configured: Prefect would start an ephemeral one (seconds) to
            # receive an event no automation can see. Nothing to wake.
            return
        from prefect.events import emit_event

        emit_event(
            event=SCHOOL_ACTED,
            resource={
                "prefect.resource.id": f"examflow.sitting.{sitting}",
                "examflow.school": school_code,
                "examflow.action": action,
            },
            related=[
                {
                    "prefect.resource.id": f"examflow.stage.{sitting}.{stage}",
                    "prefect.resource.role": "stage",
                }
            ],
        )
    except Exception as exc:
        log.warning("event %s for %s not emitted: %s", SCHOOL_ACTED, sitting, type(exc).__name__)
