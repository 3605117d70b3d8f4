"""Read what the SMTP sink received, as a school would see it."""

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path


def received(mail_dir: Path) -> list[EmailMessage]:
    messages = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]
