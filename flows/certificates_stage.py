"""The certificates stage flow: one checkpoint of 颁发证书."""

from datetime import datetime

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stage_run import flow_moment, run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode
from tasks.exam_tasks import issue_certificates


@flow(name="certificates", flow_run_name="{sitting} · certificates · {checkpoint}")
def certificates_stage(
    sitting: str, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Certificate issuance (颁发证书).

    Each run first issues the e-certificates of every school whose batch both the organiser
    and the school have signed (never twice). Complete when every passing candidate of every
    school has an e-certificate of the current batch; `open` and `remind` mail the schools
    that have not signed; `close` stalls otherwise. A review that changed a score voids the
    batch's signatures: both parties sign again (`examflow sign`), then Retry. Issuing a
    corrected certificate revokes the old one, and a review that failed a holder revokes
    theirs; the revocation list is then re-signed when EXAMFLOW_ORGANISER_KEY_FILE is set,
    else the run's log warns that the organiser must (`examflow certificates status-list`).
    """
    moment = flow_moment(as_of)
    issue_certificates(sitting, moment)
    return run_stage(StageCode.certificates, sitting, checkpoint, moment)
