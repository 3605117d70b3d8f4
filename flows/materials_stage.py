"""The materials stage flow: one checkpoint of 下载准考证、部署考场、打印物料."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.materials_render import render_ahead
from flows.stage_run import run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


@flow(name="materials", flow_run_name="{sitting} · materials · {checkpoint}")
def materials_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Materials (下载准考证、部署考场、打印物料).

    Complete when every active site has downloaded its admission tickets, desk labels, door
    signs and sign-in sheets and laid out its rooms per the execution manual.
    Every checkpoint first renders the PDFs of each active site whose arrangement, rooms or
    candidates changed since they were last rendered (at `open`: every site's), on a Dask
    cluster, so that the links it mails download stored files; then it removes the stored
    PDFs of data no active site has any more (a re-arranged site's previous version).
    Fix: run record-site-fact (…_downloaded, rooms_laid_out) for the site, then Retry.
    """
    render_ahead(sitting)  # 准考证、桌签、门贴、签到表 of every active site, before the mail
    return run_stage(StageCode.materials, sitting, checkpoint, as_of)
