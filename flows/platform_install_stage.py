"""The platform_install stage flow: one checkpoint of 考点设备调试、安装考试平台."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


@flow(name="platform-install", flow_run_name="{sitting} · platform_install · {checkpoint}")
def platform_install_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Platform install and mock exam (考点设备调试、安装考试平台).

    Complete when every active site has its exam platform installed and a passed mock exam.
    Mail goes to each site's technical contact, exam affairs in copy; `remind` only to the
    sites still missing something; `close` stalls otherwise.
    Fix: run record-site-fact (platform_installed, mock_passed) for the site, then Retry.
    """
    return run_stage(StageCode.platform_install, sitting, checkpoint, as_of)
