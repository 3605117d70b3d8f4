"""Mail sent by a command rather than a checkpoint (a review's outcome): queue, then deliver."""

from datetime import datetime

from examflow.db import session_scope
from examflow.settings import get_settings
from models.domain import in_shanghai
from models.outbox import MessageDraft, is_announcement, message_domain, queue_messages
from notifications.rendering import render_message
from notifications.sender import DeliveryReport, deliver_sync
from tasks.smtp import smtp_config


def send_now(
    *,
    sitting: str,
    stage: str,
    checkpoint: str,
    recipient_ref: str,
    to_addr: str,
    template: str,
    context: dict[str, object],
    as_of: datetime,
) -> DeliveryReport:
    """One message through the outbox (an announcement goes once; any other once a day)."""
    settings = get_settings()
    rendered = render_message(template, context)
    draft = MessageDraft(
        sitting_code=sitting,
        stage=stage,
        checkpoint=checkpoint,
        day=in_shanghai(as_of).date(),
        once=is_announcement(template),
        recipient_ref=recipient_ref,
        to_addr=to_addr,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )
    with session_scope() as session:
        ids = queue_messages(
            session,
            [draft],
            queued_at=in_shanghai(as_of),
            mail_domain=message_domain(settings.mail_from),
        )
    if not ids:
        return DeliveryReport()
    return deliver_sync(settings.resolved_database_url(), ids, smtp_config())
