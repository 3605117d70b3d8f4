"""The registration stage flow: one checkpoint of 考试报名."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


@flow(name="registration", flow_run_name="{sitting} · registration · {checkpoint}")
def registration_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Registration (考试报名) of one sitting, at one checkpoint.

    Complete once registration is frozen after its deadline, every registered candidate sits
    at an exam site, and no pilot school is over its pilot scale. `open` mails every school
    (with an .ics of its dates); `remind` mails pilot schools that have registered nobody;
    `close` stalls if a school is over its scale or a candidate has no site.
    Fix: correct the register (examflow schools import) or the registrations, then Retry.
    """
    return run_stage(StageCode.registration, sitting, checkpoint, as_of)
