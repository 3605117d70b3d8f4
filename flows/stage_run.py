"""What every stage flow does: evaluate, queue and deliver mail, publish progress, end named.

The stage's own work (arranging rooms, publishing scores, issuing certificates) is told by
its flow, in flows/<stage>_stage.py, before it hands over to ``run_stage``.
"""

from datetime import datetime

from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from models.checkpoints import CheckpointResult
from models.domain import SHANGHAI, Checkpoint, StageCode, StageState, in_shanghai
from tasks.checkpoint_tasks import deliver, evaluate, publish_progress, queue, record_run

STATE_NAMES = {
    StageState.complete: "StageComplete",
    StageState.open: "Open",
    StageState.upcoming: "Upcoming",
}


def flow_moment(as_of: datetime | None) -> datetime:
    """A flow's ``as_of`` on Shanghai's clock (naive means Shanghai time), or now."""
    return in_shanghai(as_of) if as_of else datetime.now(SHANGHAI)


def run_stage(
    stage: StageCode,
    sitting: str,
    checkpoint: Checkpoint,
    as_of: datetime | None,
    *,
    judge_after_mail: bool = False,
) -> State[CheckpointResult]:
    """Run one checkpoint of one stage; the returned state is the flow run's final state.

    With ``judge_after_mail`` (the mail itself is part of the condition) the stage is
    evaluated again once mail was sent. Stalled (a Failed state, so Retry works) when the
    window has closed unmet; MailPending (also Failed) when the stage is fine but mail due
    now was not delivered; otherwise Completed named StageComplete, Open or Upcoming. Its
    last task keeps that state as the stage's last run and refreshes the sitting's overview.
    """
    moment = flow_moment(as_of)
    outcome = evaluate(sitting, stage, checkpoint, moment)
    delivery = deliver(queue(outcome))
    if judge_after_mail and delivery.sent:
        outcome = evaluate(sitting, stage, checkpoint, moment)
    publish_progress(outcome, delivery)
    result = CheckpointResult(
        state="",
        sent=delivery.sent,
        failed=delivery.failed,
        pending=delivery.pending,
        queued=delivery.queued,
        missing=[str(m) for m in outcome.missing],
    )
    summary = outcome.summary()
    if outcome.state is StageState.stalled:
        result.state = "Stalled"
        final: State[CheckpointResult] = Failed(name="Stalled", message=summary, data=result)
    elif delivery.pending or delivery.failed:
        result.state = "MailPending"
        message = f"{delivery.pending} pending, {delivery.failed} failed of {delivery.queued}"
        final = Failed(name="MailPending", message=message, data=result)
    else:
        result.state = STATE_NAMES[outcome.state]
        final = Completed(name=result.state, message=summary, data=result)
    # the last task: the stage's last run (state, time) for the sitting's overview artifact
    # and for the events that may re-run a Stalled stage
    record_run(outcome, result.state)
    return final
