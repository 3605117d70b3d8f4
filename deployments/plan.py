"""When each checkpoint of a sitting runs: pure dates from the calendar (Asia/Shanghai)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from models.domain import SHANGHAI, Checkpoint, StageCode
from models.sitting_calendar import SittingSpec

MORNING = time(9, 0)
AFTER_MIDNIGHT = timedelta(minutes=5)
DEFAULT_REMIND_DAYS = (3, 1)


@dataclass(frozen=True, order=True)
class PlannedRun:
    at: datetime
    stage: StageCode
    checkpoint: Checkpoint

    @property
    def parameters(self) -> dict[str, str]:
        return {"stage": self.stage.value, "checkpoint": self.checkpoint.value}


def plan_checkpoints(
    spec: SittingSpec, remind_days: tuple[int, ...] = DEFAULT_REMIND_DAYS
) -> list[PlannedRun]:
    """`open` at 09:00 on the window's first day (the exam's the day before: the go/no-go);
    `remind` at 09:00 `remind_days` before the close (registration also on its last day);
    `close` five minutes after the window has ended."""
    runs: list[PlannedRun] = []
    for stage in StageCode:
        window = spec.window(stage)
        first_day = window.opens
        if stage is StageCode.exam:
            first_day = spec.exam_day - timedelta(days=1)
        if first_day is not None:
            runs.append(PlannedRun(_morning(first_day), stage, Checkpoint.open))
        days = set(remind_days) | ({0} if stage is StageCode.registration else set())
        for days_before in sorted(days, reverse=True):
            at = _morning(window.close_day - timedelta(days=days_before))
            if stage is not StageCode.exam and (first_day is None or at.date() > first_day):
                runs.append(PlannedRun(at, stage, Checkpoint.remind))
        close_at = window.closes_at + timedelta(microseconds=1) + AFTER_MIDNIGHT
        runs.append(PlannedRun(close_at.replace(microsecond=0), stage, Checkpoint.close))
    return sorted(runs)


def _morning(day: date) -> datetime:
    return datetime.combine(day, MORNING, SHANGHAI)
