"""Delivering the outbox to a real SMTP server (aiosmtpd on 127.0.0.1) from a real SQLite file."""

import asyncio
import datetime as dt
import email
import ipaddress
import logging
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import event
from sqlmodel import Session, col, select

from examflow.db import engine_for
from examflow.settings import Settings, SmtpSecurity
from models.outbox import (
    MessageDraft,
    OutboxMessage,
    OutboxStatus,
    outbox_counts,
    outbox_key,
    queue_messages,
)
from notifications.sender import DeliveryReport, SmtpConfig, deliver, deliver_sync
from notifications.sink import MailSink

ROOT = Path(__file__).resolve().parents[1]
SITTING = "2024-1"
DAY = dt.date(2024, 3, 20)
NOW = dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC)
SUBJECT_ZH = "【提醒】请于3月25日前完成考点设备调试——北京市第一职业学校（考点编号 S0001）"
USER, PASSWORD = "examflow", "s3cret-口令"


def draft(i: int, *, to: str | None = None, subject: str = "提醒", **extra: Any) -> MessageDraft:
    ref = f"S{i:04d}"
    return MessageDraft(
        sitting_code=SITTING,
        stage="platform_install",
        checkpoint="remind",
        day=DAY,
        recipient_ref=ref,
        to_addr=to or f"{ref.lower()}@school.example.cn",
        subject=subject,
        text_body=f"{ref}：请完成考试平台安装。",
        html_body=f"<p>{ref}：请完成考试平台安装。</p>",
        **extra,
    )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'examflow.db'}"


def queue(db_url: str, drafts: list[MessageDraft]) -> list[int]:
    with Session(engine_for(db_url)) as session:
        ids = queue_messages(session, drafts, queued_at=NOW, mail_domain="exam.example.cn")
        session.commit()
    return ids


def rows(db_url: str) -> list[OutboxMessage]:
    with Session(engine_for(db_url)) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def config(port: int, **overrides: Any) -> SmtpConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "mail_from": "考试组织方 <noreply@exam.example.cn>",
        "connections": 4,
        "timeout": 5.0,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }
    settings.update(overrides)
    return SmtpConfig(**settings)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail") as running:
        yield running


def received(sink: MailSink) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=default_policy)
        for path in sink.messages()
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_queued_messages_all_go_out_over_reused_connections_and_are_marked_sent(
    db_url: str, sink: MailSink
) -> None:
    ids = queue(db_url, [draft(i) for i in range(40)])

    report = deliver_sync(db_url, ids, config(sink.port, connections=4))

    assert report == DeliveryReport(sent=40, failed=0, pending=0, errors=[])
    assert len(sink.messages()) == 40
    assert sink.connections_used <= 4  # 40 messages, at most one connection per worker
    for row in rows(db_url):
        assert row.status is OutboxStatus.sent
        assert row.attempts == 1 and row.last_error is None
        assert row.sent_at is not None and row.sent_at.tzinfo is not None


def test_a_rerun_sends_nothing_twice(db_url: str, sink: MailSink) -> None:
    """Delivering again, or queueing the same drafts again, re-sends nothing."""
    drafts = [draft(i) for i in range(10)]
    ids = queue(db_url, drafts)
    deliver_sync(db_url, ids, config(sink.port))

    again = deliver_sync(db_url, ids, config(sink.port))
    everything_pending = deliver_sync(db_url, None, config(sink.port))
    requeued = queue(db_url, drafts)

    assert again == DeliveryReport(sent=0, failed=0, pending=0)
    assert everything_pending == DeliveryReport(sent=0, failed=0, pending=0)
    assert requeued == []
    assert deliver_sync(db_url, requeued, config(sink.port)).sent == 0
    assert len(sink.messages()) == 10
    with Session(engine_for(db_url)) as session:
        counts = outbox_counts(session, SITTING, "platform_install")
    assert counts == {OutboxStatus.pending: 0, OutboxStatus.sent: 10, OutboxStatus.failed: 0}


def test_requeueing_after_a_partial_run_returns_only_the_undelivered(
    db_url: str, sink: MailSink
) -> None:
    """Rows queued earlier but never sent come back from queue_messages; sent ones do not."""
    drafts = [draft(i) for i in range(6)]
    first_ids = queue(db_url, drafts[:3])
    deliver_sync(db_url, first_ids[:2], config(sink.port))

    ids = queue(db_url, drafts)

    assert ids == [first_ids[2], *ids[1:]] and len(ids) == 4
    assert deliver_sync(db_url, ids, config(sink.port)).sent == 4
    assert len(sink.messages()) == 6


def test_chinese_subject_attachment_and_stable_message_id_arrive_intact(
    db_url: str, sink: MailSink
) -> None:
    ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    ids = queue(
        db_url,
        [
            draft(
                1,
                to="北京市第一职业学校 <s0001@school.example.cn>",
                subject=SUBJECT_ZH,
                cc_addr="ops@exam.example.cn",
                attachment=ics,
                attachment_name="考试日程.ics",
                attachment_type="text/calendar",
            )
        ],
    )

    assert deliver_sync(db_url, ids, config(sink.port)).sent == 1

    [path] = sink.messages()
    raw = path.read_bytes()
    assert raw.isascii()  # 7-bit clean: RFC 2047 headers, base64 bodies
    assert b"=?utf-8?" in raw
    [message] = received(sink)
    [row] = rows(db_url)
    assert message["Subject"] == SUBJECT_ZH
    assert message["Message-ID"] == row.message_id
    assert row.message_id.endswith("@exam.example.cn>")
    assert row.message_id.strip("<>").split("@")[0] in path.name
    assert message["To"].addresses[0].display_name == "北京市第一职业学校"
    assert message["Cc"].addresses[0].addr_spec == "ops@exam.example.cn"
    body = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert body is not None and "请完成考试平台安装" in body.get_content()
    assert html is not None and "<p>S0001" in html.get_content()
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "考试日程.ics"
    assert attachment.get_payload(decode=True) == ics


@pytest.mark.parametrize("fail_on", ["rcpt", "data"])
def test_a_server_answering_421_gets_every_message_once_it_recovers(
    db_url: str, tmp_path: Path, fail_on: str
) -> None:
    ids = queue(db_url, [draft(i) for i in range(12)])

    with MailSink(tmp_path / "mail", fail_first=6, fail_on=fail_on) as sink:  # type: ignore[arg-type]
        report = deliver_sync(db_url, ids, config(sink.port, connections=3, max_attempts=10))
        assert len(sink.messages()) == 12

    assert (report.sent, report.failed, report.pending) == (12, 0, 0)
    stored = rows(db_url)
    assert {row.status for row in stored} == {OutboxStatus.sent}
    assert sum(row.attempts for row in stored) == 12 + 6


def test_a_550_for_one_recipient_fails_only_that_row(db_url: str, tmp_path: Path) -> None:
    bad = "s0003@school.example.cn"
    ids = queue(db_url, [draft(i) for i in range(5)])

    with MailSink(tmp_path / "mail", refuse_recipients={bad}) as sink:
        report = deliver_sync(db_url, ids, config(sink.port))
        assert len(sink.messages()) == 4

    assert (report.sent, report.failed, report.pending) == (4, 1, 0)
    by_addr = {row.to_addr: row for row in rows(db_url)}
    assert by_addr[bad].status is OutboxStatus.failed
    error = by_addr[bad].last_error
    assert error is not None and "550" in error
    assert bad not in error  # addresses are scrubbed from error texts
    assert [row_id for row_id, _ in report.errors] == [by_addr[bad].id]
    assert all(r.status is OutboxStatus.sent for a, r in by_addr.items() if a != bad)


def test_nothing_listening_leaves_every_row_pending_with_its_error(db_url: str) -> None:
    ids = queue(db_url, [draft(i) for i in range(6)])

    report = deliver_sync(db_url, ids, config(free_port(), connections=2, max_attempts=2))

    assert (report.sent, report.failed, report.pending) == (0, 0, 6)
    for row in rows(db_url):
        assert row.status is OutboxStatus.pending
        assert row.sent_at is None
        assert row.last_error  # either the connection error or why it was not attempted
    assert any("SMTPConnectError" in (row.last_error or "") for row in rows(db_url))


def test_logs_hold_counts_not_addresses_or_subjects(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids = queue(db_url, [draft(i, subject=SUBJECT_ZH) for i in range(4)])
    caplog.set_level(logging.DEBUG, logger="notifications")

    with MailSink(
        tmp_path / "mail", fail_first=2, refuse_recipients={"s0001@school.example.cn"}
    ) as sink:
        deliver_sync(db_url, ids, config(sink.port))

    assert "sent" in caplog.text
    assert "@" not in caplog.text and "提醒" not in caplog.text and "S0001" not in caplog.text


# -- TLS and AUTH ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


def test_starttls_with_login_delivers(
    db_url: str, tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    ids = queue(db_url, [draft(i) for i in range(5)])
    server = MailSink(
        tmp_path / "mail",
        tls_context=server_context(tls_files),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    with server as sink:
        report = deliver_sync(
            db_url,
            ids,
            config(
                sink.port,
                security="starttls",
                username=USER,
                password=PASSWORD,
                cert_bundle=str(tls_files[0]),
            ),
        )
        assert len(sink.messages()) == 5
    assert (report.sent, report.failed, report.pending) == (5, 0, 0)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_login_delivers(
    db_url: str, tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    ids = queue(db_url, [draft(i) for i in range(5)])
    server = MailSink(
        tmp_path / "mail",
        ssl_context=server_context(tls_files),
        authenticator=authenticator,
        auth_required=True,
        # The session is TLS from the first byte, but aiosmtpd only counts STARTTLS as TLS
        # when it decides whether to offer AUTH; with True it would never offer it here.
        auth_require_tls=False,
    )
    with server as sink:
        report = deliver_sync(
            db_url,
            ids,
            config(
                sink.port,
                security="tls",
                username=USER,
                password=PASSWORD,
                cert_bundle=str(tls_files[0]),
            ),
        )
        assert len(sink.messages()) == 5
    assert (report.sent, report.failed, report.pending) == (5, 0, 0)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_stops_delivery_and_leaves_rows_pending(
    db_url: str, tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    """A configuration error is not retried row after row: the call stops, nothing is failed."""
    ids = queue(db_url, [draft(i) for i in range(20)])
    server = MailSink(
        tmp_path / "mail",
        ssl_context=server_context(tls_files),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,  # offer AUTH on the implicit-TLS session (see above)
    )
    with server as sink:
        report = deliver_sync(
            db_url,
            ids,
            config(
                sink.port,
                security="tls",
                username=USER,
                password="wrong",
                cert_bundle=str(tls_files[0]),
                backoff_base=5.0,
            ),
        )
        assert sink.messages() == []
    assert (report.sent, report.failed, report.pending) == (0, 0, 20)
    assert all(row.status is OutboxStatus.pending and row.last_error for row in rows(db_url))
    assert report.errors and "SMTPAuthenticationError: 535" in report.errors[0][1]


def test_an_untrusted_certificate_is_refused(
    db_url: str, tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    """Without the self-signed certificate as CA bundle, the client refuses to send."""
    ids = queue(db_url, [draft(i) for i in range(3)])
    with MailSink(tmp_path / "mail", ssl_context=server_context(tls_files)) as sink:
        report = deliver_sync(db_url, ids, config(sink.port, security="tls", backoff_base=5.0))
        assert sink.messages() == []
    assert (report.sent, report.failed, report.pending) == (0, 0, 3)
    assert "CERTIFICATE_VERIFY_FAILED" in report.errors[0][1]


def test_outbox_key_is_the_documented_format() -> None:
    assert outbox_key("2024-1", "exam", "open", DAY, "ops") == "2024-1|exam|open|2024-03-20|ops"
    assert draft(7).key == "2024-1|platform_install|remind|2024-03-20|S0007"


class CountingSentRows:
    """An aiosmtpd handler that, as each message arrives, notes how many rows are marked sent."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.sent_when_received: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with sqlite3.connect(self.database) as db:
            [(sent,)] = db.execute("SELECT count(*) FROM outboxmessage WHERE status = 'sent'")
        self.sent_when_received.append(sent)
        return "250 OK"


def test_each_row_is_committed_as_sent_before_the_next_message_goes_out(
    db_url: str, tmp_path: Path
) -> None:
    """So a crash re-sends at most the message that was in flight on each connection."""
    ids = queue(db_url, [draft(i) for i in range(8)])
    handler = CountingSentRows(tmp_path / "examflow.db")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        report = deliver_sync(db_url, ids, config(controller.port, connections=1))
    finally:
        controller.stop()

    assert report.sent == 8
    assert handler.sent_when_received == list(range(8))


def test_a_slow_commit_does_not_stall_other_coroutines_on_the_event_loop(
    db_url: str, sink: MailSink
) -> None:
    """Every commit is made to take 0.3 s; a ticker on the same loop keeps ticking meanwhile."""
    ids = queue(db_url, [draft(i) for i in range(3)])
    engine = engine_for(db_url)
    delay = 0.3
    slow_commits: list[float] = []

    def slow_commit(conn: Any) -> None:
        time.sleep(delay)  # a commit blocking its thread, as on a busy database
        slow_commits.append(delay)

    async def deliver_while_ticking() -> tuple[DeliveryReport, list[float]]:
        gaps: list[float] = []
        delivered = asyncio.Event()

        async def tick() -> None:
            last = time.perf_counter()
            while not delivered.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        report = await deliver(db_url, ids, config(sink.port, connections=1))
        delivered.set()
        await ticker
        return report, gaps

    event.listen(engine, "commit", slow_commit)
    try:
        report, gaps = asyncio.run(deliver_while_ticking())
    finally:
        event.remove(engine, "commit", slow_commit)

    assert report.sent == 3 and len(slow_commits) >= 3  # the slow commits really happened
    assert max(gaps) < delay / 2, f"the loop stood still for {max(gaps):.2f} s"


def test_settings_become_an_smtp_config_without_showing_the_password() -> None:
    settings = Settings(
        smtp_host="smtp.example.cn",
        smtp_port=465,
        smtp_username="examflow",
        smtp_password=SecretStr("s3cret"),
        smtp_security=SmtpSecurity.tls,
        smtp_connections=3,
        mail_from="考试组织方 <noreply@exam.example.cn>",
    )

    smtp = SmtpConfig.from_settings(settings)

    assert (smtp.host, smtp.port, smtp.security, smtp.connections) == (
        "smtp.example.cn",
        465,
        "tls",
        3,
    )
    assert smtp.username == "examflow" and smtp.password == "s3cret"
    assert "s3cret" not in repr(smtp)


def test_the_sink_runs_as_its_own_process_until_sigterm(db_url: str, tmp_path: Path) -> None:
    """``python -m notifications.sink`` stores what it receives and exits cleanly on SIGTERM."""
    ids = queue(db_url, [draft(i) for i in range(3)])
    process = subprocess.Popen(
        [sys.executable, "-m", "notifications.sink", "--port", "0", "--dir", str(tmp_path / "m")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.split()[2].rstrip(",").rsplit(":", 1)[1])
        assert deliver_sync(db_url, ids, config(port)).sent == 3
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert len(list((tmp_path / "m").glob("*.eml"))) == 3


class _BreakingSink(MailSink):
    """Answers 451 or a session-breaking 452 to the first DATA commands, then recovers."""

    def __init__(self, mail_dir: Path, reply: str, failures: int) -> None:
        super().__init__(mail_dir)
        self.reply, self.failures, self.answered = reply, failures, 0
        original = self.handler.handle_DATA

        async def handle_data(server: Any, session: Any, envelope: Any) -> str:
            if self.answered < self.failures:
                self.answered += 1
                if self.reply.startswith("452"):  # the server gives up on this session too
                    asyncio.get_running_loop().call_later(0.01, server.transport.close)
                return self.reply
            return await original(server, session, envelope)

        self.handler.handle_DATA = handle_data  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "reply", ["451 4.3.0 local error in processing", "452 4.3.1 insufficient system storage"]
)
def test_451_and_a_session_breaking_452_are_retried_on_a_fresh_session(
    db_url: str, tmp_path: Path, reply: str
) -> None:
    ids = queue(db_url, [draft(i) for i in range(10)])
    with _BreakingSink(tmp_path / "mail", reply, failures=4) as sink:
        report = deliver_sync(db_url, ids, config(sink.port, connections=2, max_attempts=10))
        assert len(sink.messages()) == 10
    assert (report.sent, report.failed, report.pending) == (10, 0, 0)
    assert {row.status for row in rows(db_url)} == {OutboxStatus.sent}
