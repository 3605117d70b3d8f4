"""The publicity stage flow: one checkpoint of 成绩公示."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


@flow(name="publicity", flow_run_name="{sitting} · publicity · {checkpoint}")
def publicity_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Score publicity (成绩公示) and per-school review requests.

    `open` publishes the scores and mails each school its own candidates' results (ID
    numbers masked). Complete when the window has passed, every school was told and every
    review request filed in the window is resolved; an unresolved request after the window
    stalls it. Fix: `examflow review resolve ID --score N|--unchanged`, then Retry.
    """
    return run_stage(StageCode.publicity, sitting, checkpoint, as_of)
