"""The exam stage flow: one checkpoint of 正式考试."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


@flow(name="exam", flow_run_name="{sitting} · exam · {checkpoint}")
def exam_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Exam day (正式考试).

    Complete when every active site was ready (training, platform and mock exam, materials,
    rooms laid out: facts recorded before the first slot) and attendance is recorded.
    `close` stalls otherwise and mails ops the list of sites and what they lacked.
    """
    return run_stage(StageCode.exam, sitting, checkpoint, as_of)
