"""The training stage flow: one checkpoint of 考务及技术人员培训、编排考场."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


@flow(name="training", flow_run_name="{sitting} · training · {checkpoint}")
def training_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Staff training and room arrangement (考务及技术人员培训、编排考场).

    Complete when every active site (a site with candidates, own or borrowed) has trained
    exam-affairs and technical staff and rooms are arranged for every candidate.
    `remind` mails the sites still missing a training; `close` stalls otherwise.
    Fix: run record-site-fact (affairs_trained, tech_trained) for the site, then Retry.
    """
    return run_stage(StageCode.training, sitting, checkpoint, as_of)
