"""The sign-in mail: queued in the outbox like every message, delivered after the answer.

The link's token is in the message body only until the server has accepted the message:
then it is blanked in the outbox row (the row is ``sent`` and never re-sent).
"""

import logging
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from models.domain import SHANGHAI
from models.outbox import MessageDraft, OutboxMessage, OutboxStatus, message_domain, queue_messages
from models.portal_access import portal_signin_url
from models.schools import School
from notifications.rendering import render_message
from notifications.sender import deliver_sync
from portal.context import Portal
from tasks.smtp import smtp_config

log = logging.getLogger("portal.mail")
REDACTED = "（链接已发送，此处不再保存）"


def signin_url(base_url: str, token: str) -> str:
    return portal_signin_url(base_url, token)


def queue_signin_mail(
    portal: Portal,
    session: Session,
    school: School,
    address: str,
    token: str,
    link_id: int,
    as_of: datetime,
    minutes: int,
) -> list[int]:
    url = signin_url(portal.settings.public_url, token)
    rendered = render_message(
        "portal_signin",
        {"school_name": school.name, "school_code": school.code, "url": url, "minutes": minutes},
    )
    draft = MessageDraft(
        sitting_code="portal",
        stage="signin",
        checkpoint=f"link-{link_id}",
        day=as_of.astimezone(SHANGHAI).date(),
        recipient_ref=school.code,
        to_addr=address,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )
    return queue_messages(
        session, [draft], queued_at=as_of, mail_domain=message_domain(portal.settings.mail_from)
    )


def deliver_signin_mail(portal: Portal, ids: list[int], token: str) -> None:
    """Deliver now (after the page was answered); blank the token once the mail went out."""
    try:
        deliver_sync(portal.database_url, ids, smtp_config())
    except Exception as exc:  # the outbox keeps it pending; the school can ask again
        log.warning("sign-in mail not delivered: %s", type(exc).__name__)
    with portal.db() as session:
        for row_id in ids:
            row = session.get(OutboxMessage, row_id)
            if row is None or row.status != OutboxStatus.sent:
                continue
            session.connection().execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row_id)
                .values(
                    text_body=row.text_body.replace(token, REDACTED),
                    html_body=row.html_body.replace(token, REDACTED),
                )
            )
