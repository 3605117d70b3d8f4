"""The tasks of a stage checkpoint: evaluate, publish progress, queue mail, deliver it.

Each opens its own database session and passes only small pydantic values onwards. No task
caches: a Retry must re-read the database (a fact recorded since may complete the stage).
"""

from datetime import UTC, datetime
from typing import cast
from uuid import UUID

from prefect import runtime, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlmodel import col, select

from examflow.db import session_scope
from examflow.overview import publish_overview_in_run
from examflow.settings import get_settings, link_secret
from models.checkpoint_runs import record_last_run
from models.checkpoints import CheckpointOutcome, evaluate_checkpoint, plan_messages
from models.condition import describe
from models.domain import Checkpoint, StageCode
from models.outbox import message_domain, queue_messages
from models.portal_access import store_links
from models.schools import School
from models.sittings import get_sitting
from notifications.compose import DeferredPortalLinks, compose
from notifications.sender import deliver_sync
from tasks.smtp import smtp_config

ARTIFACT_ROWS = 500
# A fan-out longer than this is delivered in chunks of this size, with a progress artifact
# (sent / queued) updated after each chunk; shorter ones in one go, without.
PROGRESS_CHUNK = 250


class Delivery(BaseModel):
    queued: int
    sent: int
    failed: int
    pending: int
    errors: list[str]


@task(name="evaluate-stage", cache_policy=NO_CACHE)
def evaluate(
    sitting: str, stage: StageCode, checkpoint: Checkpoint, as_of: datetime
) -> CheckpointOutcome:
    """Evaluate the stage's completion condition at ``as_of``."""
    with session_scope() as session:
        return evaluate_checkpoint(session, get_sitting(session, sitting), stage, checkpoint, as_of)


def artifact_key(sitting: str, stage: StageCode) -> str:
    """Artifact keys allow [a-z0-9-] only: '2024-1-platform-install'."""
    return f"{sitting}-{stage.value}".lower().replace("_", "-")


def progress_markdown(outcome: CheckpointOutcome) -> str:
    lines = [
        f"# {outcome.sitting} · {outcome.stage.value} · {outcome.checkpoint.value}",
        "",
        f"**State:** {outcome.state.value} — {outcome.summary()}",
        "",
        f"Window: {outcome.opens.isoformat(timespec='minutes') if outcome.opens else '—'} → "
        f"{outcome.closes.isoformat(timespec='minutes')} · as of "
        f"{outcome.as_of.isoformat(timespec='minutes')}",
        "",
    ]
    if outcome.missing:
        lines += ["| code | name | missing |", "|---|---|---|"]
        for m in outcome.missing[:ARTIFACT_ROWS]:
            lines.append(f"| {m.party} | {m.party_name} | {describe(m)} |")
        if len(outcome.missing) > ARTIFACT_ROWS:
            lines.append(f"| … | | {len(outcome.missing) - ARTIFACT_ROWS} more |")
    elif outcome.note:
        lines.append(f"_{outcome.note}_")
    return "\n".join(lines)


@task(name="publish-progress", cache_policy=NO_CACHE)
def publish_progress(outcome: CheckpointOutcome, delivery: Delivery) -> str:
    """The progress table per site/school as a markdown artifact (names only, no personal data)."""
    key = artifact_key(outcome.sitting, outcome.stage)
    mail = (
        f"\n\n**Mail:** {delivery.queued} due, {delivery.sent} sent, {delivery.failed} failed, "
        f"{delivery.pending} pending"
    )
    errors = "".join(f"\n- {e}" for e in delivery.errors[:50])
    create_markdown_artifact(
        markdown=progress_markdown(outcome) + mail + errors,
        key=key,
        description=f"{outcome.sitting} {outcome.stage.value}: {outcome.summary()}",
    )
    return key


@task(name="queue-messages", cache_policy=NO_CACHE)
def queue(outcome: CheckpointOutcome) -> list[int]:
    """Render and queue the messages due now; returns the ids still pending (none twice).

    Composing (templates, .ics, sign-in link tokens) happens outside any write: the link
    rows and the outbox rows are then written in one short transaction, all or nothing, so
    another run's writes wait for seconds, not for the whole composing."""
    settings = get_settings()
    with session_scope() as session:  # reads only
        sitting = get_sitting(session, outcome.sitting)
        planned = plan_messages(session, sitting, outcome, settings.ops_email)
        if not planned:
            return []
        sites = set(session.exec(select(School.code).where(col(School.is_site).is_(True))))
    portal = DeferredPortalLinks(settings.public_url, sitting, outcome.as_of)
    links = (settings.public_url, link_secret())
    drafts = compose(planned, outcome, sitting, sites, links, portal)
    with session_scope() as session:
        store_links(session, portal.rows)
        return queue_messages(
            session, drafts, queued_at=outcome.as_of, mail_domain=message_domain(settings.mail_from)
        )


@task(name="deliver-messages", cache_policy=NO_CACHE)
def deliver(ids: list[int]) -> Delivery:
    """Send the batch over a small pool of reused SMTP connections; a long one in chunks, its
    progress (sent / queued) shown in a progress artifact while it runs."""
    delivery = Delivery(queued=len(ids), sent=0, failed=0, pending=0, errors=[])
    if not ids:
        return delivery
    database_url, config = get_settings().resolved_database_url(), smtp_config()
    chunks = [ids[i : i + PROGRESS_CHUNK] for i in range(0, len(ids), PROGRESS_CHUNK)]
    progress: UUID | None = None
    if len(chunks) > 1:
        progress = cast(  # sync call in a sync task: not a coroutine
            UUID,
            create_progress_artifact(
                progress=0.0, description=f"delivery: 0 sent / {len(ids)} queued"
            ),
        )
    done = 0
    for chunk in chunks:
        report = deliver_sync(database_url, chunk, config)
        delivery.sent += report.sent
        delivery.failed += report.failed
        delivery.pending += report.pending
        delivery.errors += [f"message {r}: {e}" for r, e in report.errors + report.partial]
        done += len(chunk)
        if progress is not None:
            update_progress_artifact(
                artifact_id=progress,
                progress=100.0 * done / len(ids),
                description=(
                    f"delivery: {delivery.sent} sent / {len(ids)} queued"
                    f" ({delivery.failed} failed, {delivery.pending} pending)"
                ),
            )
    return delivery


@task(name="record-last-run", cache_policy=NO_CACHE)
def record_run(outcome: CheckpointOutcome, state: str) -> str:
    """Keep this run as the stage's last one (state and time) and refresh the sitting's
    overview artifact; the flow's last task."""
    with session_scope() as session:
        record_last_run(
            session,
            outcome.sitting,
            outcome.stage,
            outcome.checkpoint,
            state,
            as_of=outcome.as_of,
            finished_at=datetime.now(UTC),
            flow_run_id=str(runtime.flow_run.id) if runtime.flow_run.id else None,
        )
    publish_overview_in_run(outcome.sitting, outcome.as_of)
    return state
