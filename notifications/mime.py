"""Building the MIME message for an outbox row: multipart/alternative text + HTML (utf-8),
an optional attachment, the row's stable Message-ID, RFC 2047 encoded headers."""

from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Protocol

from models.domain import SHANGHAI


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new header class on every lookup (~10 µs each, a dozen
    per message); the classes are stateless, so build each once."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(key)
        return cls


# email.policy.SMTP (CRLF, RFC 2047 headers), only faster at building headers.
SMTP_POLICY = SMTP.clone(header_factory=_CachingHeaderRegistry())


class MailContent(Protocol):
    """What :func:`build_mime` reads: an ``OutboxMessageBase`` or a Core row of the outbox."""

    @property
    def to_addr(self) -> str: ...
    @property
    def cc_addr(self) -> str | None: ...
    @property
    def subject(self) -> str: ...
    @property
    def text_body(self) -> str: ...
    @property
    def html_body(self) -> str: ...
    @property
    def attachment_name(self) -> str | None: ...
    @property
    def attachment_type(self) -> str | None: ...
    @property
    def attachment(self) -> bytes | None: ...
    @property
    def message_id(self) -> str: ...
    @property
    def queued_at(self) -> datetime: ...


def build_mime(row: MailContent, mail_from: str, *, date: datetime | None = None) -> EmailMessage:
    """The message for ``row``, from ``mail_from``, dated ``date`` (default: when queued).

    Bodies are base64 encoded utf-8, so the message is 7-bit clean for any server; header
    values with Chinese are RFC 2047 encoded by the SMTP policy.
    """
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = mail_from
    msg["To"] = row.to_addr
    if row.cc_addr:
        msg["Cc"] = row.cc_addr
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime((date or row.queued_at).astimezone(SHANGHAI))
    msg["Message-ID"] = row.message_id
    msg["MIME-Version"] = "1.0"
    msg.set_content(row.text_body, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(row.html_body, subtype="html", charset="utf-8", cte="base64")
    if row.attachment is not None:
        maintype, _, subtype = (row.attachment_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            row.attachment,
            maintype=maintype,
            subtype=subtype,
            filename=row.attachment_name or "attachment",
        )
    return msg
