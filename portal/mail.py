"""The sign-in mail: queued in the outbox like every message, delivered after the answer.

The link's token is in the message body only until the server has accepted the message:
then the sender blanks it in the outbox row as it marks the row ``sent`` (never re-sent), as
it does for every message (notifications/sender.py, models.portal_access.without_signin_tokens).
"""

import logging
from datetime import datetime

from sqlmodel import Session

from models.domain import SHANGHAI
from models.outbox import MessageDraft, message_domain, queue_messages
from models.portal_access import portal_signin_url
from models.schools import School
from notifications.rendering import render_message
from notifications.sender import deliver_sync
from portal.context import Portal
from tasks.smtp import smtp_config

log = logging.getLogger("portal.mail")


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


def deliver_signin_mail(portal: Portal, ids: list[int]) -> None:
    """Deliver now (after the page was answered); the sender blanks the link's token in the
    outbox row as it marks the row sent."""
    try:
        deliver_sync(portal.database_url, ids, smtp_config())
    except Exception as exc:  # the outbox keeps it pending; the school can ask again
        log.warning("sign-in mail not delivered: %s", type(exc).__name__)
