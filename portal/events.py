"""Prefect events for school actions: hints for automations, never a reason to fail.

One path for every condition event: ``examflow.events`` (``examflow.school.acted`` on
``examflow.sitting.<code>``, the stage as related resource with its last checkpoint state;
codes only, no names, ID numbers or addresses; nothing without PREFECT_API_URL)."""

from examflow.events import ConditionEvent, emit_condition_changed

SCHOOL_ACTED = ConditionEvent.school_acted.value


def emit_school_acted(sitting: str, stage: str, action: str, school_code: str) -> None:
    emit_condition_changed(
        ConditionEvent.school_acted, sitting, [stage], party=school_code, what=action
    )
