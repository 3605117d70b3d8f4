"""Prefect events for school actions: hints for automations, never a reason to fail."""

from examflow.events import ConditionEvent, emit_condition_changed

SCHOOL_ACTED = ConditionEvent.school_acted.value


def emit_school_acted(sitting: str, stage: str, action: str, school_code: str) -> None:
    """``examflow.school.acted`` on ``examflow.sitting.<code>``, the stage and the sitting as
    related resources (roles ``stage``, ``sitting``; the stage with the state its last
    checkpoint ended in, so that a Stalled stage is re-run: see examflow.events and
    deployments.build, which match the main resource); the school's code as
    ``examflow.party`` and the action as ``examflow.what``; the sitting's overview artifact
    is refreshed.

    School codes and action names only: no names, no ID numbers, no addresses. Best effort:
    an unreachable Prefect is logged and ignored (the database is the truth); without
    PREFECT_API_URL there is no server to tell, and nothing is sent.
    """
    emit_condition_changed(
        ConditionEvent.school_acted,
        sitting,
        [stage],
        party=school_code,
        what=action,
        sitting_related=True,
    )
