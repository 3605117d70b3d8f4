"""The training stage flow: one checkpoint of 考务及技术人员培训、编排考场."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import flow_moment, run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode
from tasks.exam_tasks import arrange_rooms


@flow(name="training", flow_run_name="{sitting} · training · {checkpoint}")
def training_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Staff training and room arrangement (考务及技术人员培训、编排考场).

    Complete when every active site (a site with candidates, own or borrowed) has trained
    exam-affairs and technical staff and rooms are arranged for every candidate.
    `close` first arranges every candidate into a room and seat (as `examflow arrange`).
    `remind` mails the sites still missing a training; `close` stalls otherwise.
    Fix: run record-site-fact (affairs_trained, tech_trained) for the site, then Retry.
    """
    moment = flow_moment(as_of)
    if checkpoint is Checkpoint.close:
        arrange_rooms(sitting, moment)  # 编排考场: the organiser's own part of this stage
    return run_stage(StageCode.training, sitting, checkpoint, moment)
