"""The sitting flow: each sitting's deployment runs it once per scheduled checkpoint."""

from datetime import datetime

from prefect import Flow, flow
from prefect.client.schemas.objects import State

from flows.certificates_stage import certificates_stage
from flows.exam_stage import exam_stage
from flows.materials_stage import materials_stage
from flows.platform_install_stage import platform_install_stage
from flows.publicity_stage import publicity_stage
from flows.registration_stage import registration_stage
from flows.training_stage import training_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode

STAGE_FLOWS: dict[StageCode, Flow[..., State[CheckpointResult]]] = {
    StageCode.registration: registration_stage,
    StageCode.training: training_stage,
    StageCode.platform_install: platform_install_stage,
    StageCode.materials: materials_stage,
    StageCode.exam: exam_stage,
    StageCode.publicity: publicity_stage,
    StageCode.certificates: certificates_stage,
}


@flow(name="sitting-checkpoint", flow_run_name="{sitting} · {stage} · {checkpoint}")
def sitting_checkpoint(
    sitting: str, stage: StageCode, checkpoint: Checkpoint, as_of: datetime | None = None
) -> State[CheckpointResult]:
    """Run one checkpoint (open, remind, close) of one stage of one sitting.

    Evaluates the stage's completion condition now (or at `as_of`, Asia/Shanghai if no
    offset), publishes a progress artifact, mails only what is due and not yet sent, and ends
    StageComplete / Open / Upcoming, or **Stalled** when the window has closed unmet.
    Re-running (Retry, or a custom run) is safe: no message is ever sent twice.
    """
    child = STAGE_FLOWS[stage](sitting, checkpoint, as_of, return_state=True)
    # A state that belongs to another run would be aggregated ("1/1 states failed"):
    # end this run in a fresh copy of it, same type, name, message and result.
    return State(
        type=child.type,
        name=child.name,
        message=child.message,
        data=child.result(raise_on_failure=False),
    )
