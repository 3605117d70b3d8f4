"""What every stage flow does: evaluate, queue and deliver mail, publish progress, end named."""

from datetime import datetime

from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from models.checkpoints import CheckpointResult
from models.domain import SHANGHAI, Checkpoint, StageCode, StageState
from tasks.checkpoint_tasks import deliver, evaluate, publish_progress, queue
from tasks.exam_tasks import arrange_rooms, issue_certificates, publish_scores

STATE_NAMES = {
    StageState.complete: "StageComplete",
    StageState.open: "Open",
    StageState.upcoming: "Upcoming",
}


def run_stage(
    stage: StageCode, sitting: str, checkpoint: Checkpoint, as_of: datetime | None
) -> State[CheckpointResult]:
    """Run one checkpoint of one stage; the returned state is the flow run's final state.

    Stalled (a Failed state, so Retry works) when the window has closed unmet; MailPending
    (also Failed) when the stage is fine but mail due now was not delivered; otherwise
    Completed named StageComplete, Open or Upcoming.
    """
    moment = as_of.astimezone(SHANGHAI) if as_of else datetime.now(SHANGHAI)
    if stage is StageCode.training and checkpoint is Checkpoint.close:
        arrange_rooms(sitting, moment)  # 编排考场: the organiser's part of this stage
    if stage is StageCode.publicity and checkpoint is Checkpoint.open:
        publish_scores(sitting, moment)
    if stage is StageCode.certificates:
        issue_certificates(sitting, moment)
    outcome = evaluate(sitting, stage, checkpoint, moment)
    ids = queue(outcome)
    delivery = deliver(ids)
    if delivery.sent and stage is StageCode.publicity:
        # telling every school is part of this stage's condition: judge it after the mail
        outcome = evaluate(sitting, stage, checkpoint, moment)
    publish_progress(outcome, delivery)
    result = CheckpointResult(
        state="",
        sent=delivery.sent,
        failed=delivery.failed,
        pending=delivery.pending,
        queued=delivery.queued,
        missing=[f"{m.party}: {m.what}" for m in outcome.missing],
    )
    summary = outcome.summary()
    if outcome.state is StageState.stalled:
        result.state = "Stalled"
        return Failed(name="Stalled", message=summary, data=result)
    if delivery.pending or delivery.failed:
        result.state = "MailPending"
        message = f"{delivery.pending} pending, {delivery.failed} failed of {delivery.queued}"
        return Failed(name="MailPending", message=message, data=result)
    result.state = STATE_NAMES[outcome.state]
    return Completed(name=result.state, message=summary, data=result)
