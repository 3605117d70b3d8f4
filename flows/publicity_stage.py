"""The publicity stage flow: one checkpoint of 成绩公示."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import flow_moment, run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode
from tasks.exam_tasks import publish_scores


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
    moment = flow_moment(as_of)
    if checkpoint is Checkpoint.open:
        publish_scores(sitting, moment)
    # telling every school is part of this stage's condition: judge it after the mail
    return run_stage(StageCode.publicity, sitting, checkpoint, moment, judge_after_mail=True)
