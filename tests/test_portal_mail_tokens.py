"""Sign-in links leave no usable token in the outbox: once a message is delivered, the link in
its stored body is blanked (scheduled mail and the requested sign-in mail alike), while the
link the school received still signs it in."""

import contextlib
import re
from pathlib import Path

import pytest
from sqlmodel import select

from examflow.db import session_scope
from models.domain import Checkpoint, StageCode
from models.outbox import OutboxMessage, OutboxStatus
from models.portal_access import PortalLink, token_hash
from notifications.sink import MailSink
from tests.mailbox import received, text_of
from tests.test_portal_mail_links import REMIND, run_checkpoint, sign_in_at

TOKEN = re.compile(r"[?&]t=([A-Za-z0-9_\-]{20,})")


def stored_bodies() -> list[tuple[OutboxStatus, str]]:
    with session_scope() as session:
        return [
            (row.status, row.text_body + "\n" + row.html_body)
            for row in session.exec(select(OutboxMessage))
        ]


def linked_hashes() -> set[str]:
    with session_scope() as session:
        return {link.token_hash for link in session.exec(select(PortalLink))}


def test_a_delivered_reminder_keeps_no_usable_sign_in_token_and_the_mailed_link_still_signs_in(
    register_loaded: Path, mail_sink: MailSink
) -> None:
    run_checkpoint(StageCode.registration, Checkpoint.remind, REMIND)

    [message] = [m for m in received(mail_sink.mail_dir) if m["To"] == "a@p2.edu.cn"]
    found = TOKEN.search(text_of(message))
    assert found is not None
    mailed = found.group(1)
    bodies = stored_bodies()
    assert bodies and all(status is OutboxStatus.sent for status, _ in bodies)
    assert not any(mailed in body for _, body in bodies)
    stored_tokens = {t for _, body in bodies for t in TOKEN.findall(body)}
    assert not {token_hash(t) for t in stored_tokens} & linked_hashes()
    assert any("链接已发送" in body for _, body in bodies)  # the link's place is marked
    assert sign_in_at("2024-04-27T09:30:00", mailed) == (
        303,
        "/schools/P2/sittings/2024-1#stage-registration",
    )


def test_an_undelivered_reminder_keeps_its_link_until_it_is_sent(
    register_loaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SMTP server: the rows stay pending with their links, to be sent later."""
    monkeypatch.setenv("EXAMFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("EXAMFLOW_SMTP_PORT", "9")  # discard: nothing listens
    monkeypatch.setenv("EXAMFLOW_SMTP_SECURITY", "none")
    monkeypatch.setenv("EXAMFLOW_OPS_EMAIL", "ops@organiser.example.cn")
    with contextlib.suppress(Exception):  # the delivery may report the unreachable server
        run_checkpoint(StageCode.registration, Checkpoint.remind, REMIND)
    bodies = [body for status, body in stored_bodies() if status is OutboxStatus.pending]
    assert bodies
    tokens = {t for body in bodies for t in TOKEN.findall(body)}
    assert tokens and {token_hash(t) for t in tokens} <= linked_hashes()
