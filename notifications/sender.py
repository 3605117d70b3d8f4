"""Delivering pending outbox rows over a small pool of reused SMTP connections.

Each of ``connections`` workers owns one aiosmtplib connection (opened lazily, reused for
every message it sends) and pulls rows from a shared queue. It writes each message straight
to its wire form (:func:`notifications.mime.mime_bytes`, tens of µs, where building and
flattening an ``EmailMessage`` costs about a millisecond) and hands it to ``sendmail``. A row
is marked ``sent`` (``models.outbox.mark_sent``; the outbox owns its status transitions) and
committed the moment the server accepts it, and the worker waits for that commit before it
sends its next message, so a crash re-sends at most the message in flight on each
connection, with its Message-ID. The database is read and written on one thread of its own,
never on the event loop: a slow commit holds up only the worker waiting for it.

**Claims.** A row is sent only by the delivery that claimed it (``models.outbox.claim_pending``:
a lease with this call's owner id and an expiry, ``lease_seconds`` ahead, renewed every third
of that while the call runs), a few dozen rows a claim, as the workers need them. Deliveries
running at once (a Retry beside the scheduled run, two processes, two workers on two machines)
therefore split the rows between them and send each once. A row whose lease another live
delivery holds is waited for until it is sent or failed, or its lease expires (its owner
died): then it is taken over and sent. So a delivery returns when every row it was given is
done, whoever sent it; the crash bound above holds across processes (a row accepted by the
server just before its owner died is sent again, with its Message-ID, once its lease has
expired). A row given up on (still pending after ``max_attempts``) is released at once, so
another delivery may try it; none tries a row twice in one call.

What happens on an error:

- **permanent** (5xx to RCPT for every recipient, or to DATA): the row is ``failed``;
- **transient** (connection refused/reset/closed, timeouts, 4xx): the attempt is recorded,
  the connection is dropped and the row retried on a fresh one after exponential backoff
  with jitter, up to ``max_attempts`` times in this call; then it stays ``pending``;
- **configuration** (authentication refused, TLS certificate or STARTTLS/AUTH not
  available, 5xx to the greeting/EHLO/MAIL FROM): nothing will go out, so the call stops.

If every connection has just given up on a row without anything going out in between, the
server is taken to be down and the call stops too. Rows not attempted then stay ``pending``
with a ``last_error`` that says why. Undelivered mail is never marked sent.

Logs carry counts, row ids and error types only: no addresses, subjects or bodies.
"""

import asyncio
import logging
import os
import random
import re
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self, TypeVar, cast

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from sqlalchemy import Connection, Engine, Row, select, update
from sqlmodel import col

from examflow.db import engine_for
from examflow.settings import Settings
from models.outbox import (
    OutboxMessage,
    OutboxStatus,
    check_single_address,
    claim_pending,
    mark_failed,
    mark_sent,
    note_still_pending,
    record_attempt,
    release_leases,
    renew_leases,
    still_pending,
)
from models.portal_access import without_signin_tokens
from notifications.mime import MailContent, envelope_recipients, envelope_sender, mime_bytes

logger = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]
CHUNK = 1000
CLAIM_BATCH = 128  # rows a claim takes: ~2 s of sending on 8 connections, far below a lease
_ERROR_LIMIT = 500
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*")


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP server, and how hard to try."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "none"
    mail_from: str = "examflow <examflow@localhost>"
    connections: int = 8
    timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    validate_certs: bool = True
    cert_bundle: str | None = None
    lease_seconds: float = 120.0  # a claim on a row lasts this long unless renewed

    def __post_init__(self) -> None:
        if self.security not in ("none", "starttls", "tls"):
            raise ValueError(f"security must be none, starttls or tls, not {self.security!r}")
        if self.connections < 1 or self.max_attempts < 1:
            raise ValueError("connections and max_attempts must be at least 1")
        if self.lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if self.timeout <= 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("timeout must be positive and backoff times not negative")
        check_single_address(self.mail_from, "mail_from")

    @classmethod
    def from_settings(cls, s: Settings) -> Self:
        return cls(
            host=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            security=s.smtp_security.value,
            mail_from=s.mail_from,
            connections=s.smtp_connections,
            timeout=s.smtp_timeout,
            lease_seconds=s.outbox_lease_seconds,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): capped, with jitter."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)


@dataclass
class DeliveryReport:
    """What one delivery call did; ``errors`` holds (row id, error) for rows not sent, and
    ``partial`` the rows sent while some of their recipients (a copy, say) were refused."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    partial: list[tuple[int, str]] = field(default_factory=list)


Outcome = Literal["permanent", "transient", "configuration"]


def _is_5xx(code: int) -> bool:
    return 500 <= code < 600


def classify(exc: BaseException) -> Outcome:
    """Whether an error sending one message is permanent, transient or a configuration error."""
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        return "permanent" if codes and all(map(_is_5xx, codes)) else "transient"
    if isinstance(exc, SMTPAuthenticationError | SMTPNotSupported):
        return "configuration"
    if isinstance(exc, SMTPResponseException):
        if not _is_5xx(exc.code):
            return "transient"
        if isinstance(exc, SMTPDataError | SMTPRecipientRefused):
            return "permanent"
        if isinstance(exc, SMTPSenderRefused) and exc.code == 552:  # this message is too big
            return "permanent"
        return "configuration"
    if isinstance(exc, SMTPConnectError) and isinstance(exc.__cause__, ssl.SSLError):
        tls_error = exc.__cause__
        if isinstance(tls_error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return "transient"
        return "configuration"
    if isinstance(exc, SMTPServerDisconnected | SMTPTimeoutError | SMTPConnectError):
        return "transient"
    if isinstance(exc, OSError | TimeoutError):
        return "transient"
    if isinstance(exc, ValueError):  # an address aiosmtplib will not put on a command line
        return "permanent"
    if isinstance(exc, SMTPException):  # e.g. STARTTLS or AUTH not offered by the server
        return "configuration"
    raise exc


def describe(exc: BaseException) -> str:
    """A short description of ``exc`` for ``last_error``, with email addresses removed."""
    if isinstance(exc, SMTPRecipientsRefused):
        text = "recipients refused: " + "; ".join(
            f"{refusal.code} {refusal.message}" for refusal in exc.recipients
        )
    elif isinstance(exc, SMTPResponseException):
        text = f"{type(exc).__name__}: {exc.code} {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _ADDRESS.sub("<address>", text)[:_ERROR_LIMIT]


def _error_kind(exc: BaseException) -> str:
    """For logs: the exception type and SMTP code, nothing the server echoed back."""
    if isinstance(exc, SMTPRecipientsRefused):
        return f"SMTPRecipientsRefused {[refusal.code for refusal in exc.recipients]}"
    if isinstance(exc, SMTPResponseException):
        return f"{type(exc).__name__} {exc.code}"
    return type(exc).__name__


class _Connection:
    """One lazily opened, reused SMTP connection."""

    def __init__(self, config: SmtpConfig, local_hostname: str) -> None:
        self.config = config
        self.local_hostname = local_hostname
        self.smtp: SMTP | None = None

    async def ready(self) -> SMTP:
        if self.smtp is not None and self.smtp.is_connected:
            return self.smtp
        self.discard()
        c = self.config
        smtp = SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            local_hostname=self.local_hostname,
            timeout=c.timeout,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            validate_certs=c.validate_certs,
            cert_bundle=c.cert_bundle,
        )
        await smtp.connect()
        self.smtp = smtp
        return smtp

    def discard(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    async def quit(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (SMTPException, OSError, TimeoutError):
            smtp.close()


_T = OutboxMessage.__table__  # type: ignore[attr-defined]
_COLUMNS = [
    _T.c.to_addr,
    _T.c.cc_addr,
    _T.c.subject,
    _T.c.text_body,
    _T.c.html_body,
    _T.c.attachment_name,
    _T.c.attachment_type,
    _T.c.attachment,
    _T.c.message_id,
    _T.c.queued_at,
]
_R = TypeVar("_R")


def _chunks(ids: Sequence[int], size: int = CHUNK) -> list[Sequence[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


class _DatabaseThread:
    """The delivery's one database connection, opened, used and closed on one thread of its
    own: the event loop hands it each read and write and awaits the result, so a slow commit
    holds up only the worker waiting for it, never the loop."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-db")

    async def run(self, work: Callable[[Connection], _R]) -> _R:
        """``work(connection)`` on the database thread, one call after another."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, work)

    def _call(self, work: Callable[[Connection], _R]) -> _R:
        if self._conn is None:
            self._conn = self._engine.connect()
        return work(self._conn)

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        finally:
            self._thread.shutdown(wait=True)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _committed(
    transition: Callable[..., object], *args: Any, **kwargs: Any
) -> Callable[[Connection], None]:
    """One outbox transition and its commit, as one unit of work for the database thread."""

    def work(conn: Connection) -> None:
        transition(conn, *args, **kwargs)
        conn.commit()

    return work


def _mark_sent_blanked(
    conn: Connection, row: Row[Any], *, sent_at: datetime, note: str | None
) -> None:
    """mark_sent, and in the same transaction the message's sign-in links blanked: once the
    mail went out (it is never sent again) the outbox keeps no usable token (tokens are
    stored hashed). One rule for the requested sign-in mail and scheduled mail alike."""
    mark_sent(conn, row.id, sent_at=sent_at, note=note)
    text, html = without_signin_tokens(row.text_body), without_signin_tokens(row.html_body)
    if (text, html) != (row.text_body, row.html_body):
        conn.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row.id)
            .values(text_body=text, html_body=html)
        )


class _Delivery:
    def __init__(self, db: _DatabaseThread, config: SmtpConfig, owner: str) -> None:
        self.db = db
        self.config = config
        self.owner = owner  # this call's name on the rows it claims
        self.report = DeliveryReport()
        self.claimed: set[int] = set()
        self.attempted: set[int] = set()
        self.stop_reason: str | None = None
        self.gave_up_in_a_row = 0
        self.sender = envelope_sender(config.mail_from)

    # -- the database: one transition and one commit per outcome, on the database thread --
    # A worker awaits its commit before it takes the next row, so each connection has at
    # most one message accepted by the server but not yet recorded as sent.

    async def pending_ids(self, message_ids: Sequence[int] | None) -> list[int]:
        def read(conn: Connection) -> list[int]:
            pending = _T.c.status == OutboxStatus.pending
            if message_ids is None:
                query = select(_T.c.id).where(pending).order_by(_T.c.id)
                ids = list(conn.execute(query).scalars())
            else:
                ids = []
                for chunk in _chunks(sorted(set(message_ids))):
                    query = select(_T.c.id).where(_T.c.id.in_(chunk), pending).order_by(_T.c.id)
                    ids.extend(conn.execute(query).scalars())
            conn.rollback()
            return ids

        return await self.db.run(read)

    def _lease(self) -> tuple[datetime, datetime]:
        now = datetime.now(UTC)
        return now, now + timedelta(seconds=self.config.lease_seconds)

    async def claim(self, ids: Sequence[int], limit: int) -> list[Row[Any]]:
        """Lease up to ``limit`` of ``ids`` that are free to this call, and read them."""
        now, until = self._lease()

        def work(conn: Connection) -> list[Row[Any]]:
            rows = claim_pending(
                conn, ids, owner=self.owner, now=now, until=until, limit=limit, columns=_COLUMNS
            )
            conn.commit()
            return rows

        rows = await self.db.run(work)
        self.claimed.update(int(row.id) for row in rows)
        return rows

    async def still_pending(self, ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """Of ``ids``: (pending and free to claim, pending and held by another delivery)."""
        now = datetime.now(UTC)

        def read(conn: Connection) -> tuple[list[int], list[int]]:
            found = still_pending(conn, ids, owner=self.owner, now=now)
            conn.rollback()
            return found

        return await self.db.run(read)

    async def renew(self) -> None:
        """Keep this call's leases alive while it runs (every third of a lease)."""
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            _now, until = self._lease()
            await self.db.run(_committed(renew_leases, self.owner, until))

    async def release(self, row_ids: Sequence[int] | None = None) -> None:
        await self.db.run(_committed(release_leases, self.owner, row_ids))

    async def _sent(self, row: Row[Any], refused: dict[str, SMTPResponse]) -> None:
        row_id: int = row.id
        note = None
        if refused:  # accepted for some recipients: it went out
            codes = ", ".join(str(response.code) for response in refused.values())
            note = f"accepted, but some recipients refused ({codes})"
            self.report.partial.append((row_id, note))
        await self.db.run(_committed(_mark_sent_blanked, row, sent_at=datetime.now(UTC), note=note))
        self.report.sent += 1
        self.gave_up_in_a_row = 0

    async def _failed(self, row_id: int, error: str) -> None:
        await self.db.run(_committed(mark_failed, row_id, error))
        self.report.failed += 1
        self.report.errors.append((row_id, error))
        self.gave_up_in_a_row = 0

    async def _attempt_failed(self, row_id: int, error: str) -> None:
        await self.db.run(_committed(record_attempt, row_id, error))

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            logger.warning("outbox delivery stopped: %s", reason)

    # -- the workers ------------------------------------------------------------------------

    async def produce(
        self, queue: "asyncio.Queue[Row[Any] | None]", ids: list[int], batch: int
    ) -> None:
        """Claim ``ids`` a batch at a time and queue them for the workers; then wait for
        those another delivery holds until they are done, or free again (taken over)."""
        poll = min(1.0, self.config.lease_seconds / 10)
        todo = ids
        last_held: list[int] = []
        quiet_since = asyncio.get_running_loop().time()
        while todo and self.stop_reason is None:
            queued = 0
            for chunk in _chunks(todo):
                while self.stop_reason is None:
                    free = [row_id for row_id in chunk if row_id not in self.claimed]
                    rows = await self.claim(free, batch) if free else []
                    if not rows:
                        break
                    queued += len(rows)
                    for row in rows:
                        await queue.put(row)
            todo = [row_id for row_id in todo if row_id not in self.claimed]
            if not todo or self.stop_reason is not None:
                break
            free, held = await self.still_pending(todo)
            todo = sorted(free + held)
            if not todo:
                break
            now = asyncio.get_running_loop().time()
            if held != last_held or queued:
                last_held, quiet_since = held, now
            elif not free and now - quiet_since > 2 * self.config.lease_seconds:
                logger.warning(
                    "outbox delivery: %d rows held by another delivery without progress", len(held)
                )
                break
            if not queued:
                await asyncio.sleep(poll)

    async def work(self, queue: "asyncio.Queue[Row[Any] | None]", connection: _Connection) -> None:
        try:
            while (row := await queue.get()) is not None:
                if self.stop_reason is None:
                    await self._deliver(row, connection)
        finally:
            await connection.quit()

    async def _deliver(self, row: Row[Any], connection: _Connection) -> None:
        c = self.config
        row_id: int = row.id
        self.attempted.add(row_id)
        try:
            content = cast(MailContent, row)
            message = mime_bytes(content, c.mail_from, date=datetime.now(UTC))
            recipients = envelope_recipients(content)
        except Exception as exc:
            await self._failed(row_id, f"cannot build the message: {describe(exc)}")
            return
        error = ""
        for attempt in range(1, c.max_attempts + 1):
            try:
                smtp = await connection.ready()
                refused, _reply = await smtp.sendmail(self.sender, recipients, message)
            except Exception as exc:
                outcome = classify(exc)
                error = describe(exc)
                logger.debug(
                    "row %d attempt %d: %s (%s)", row_id, attempt, _error_kind(exc), outcome
                )
                if outcome == "permanent":
                    await self._failed(row_id, error)
                    return
                connection.discard()
                await self._attempt_failed(row_id, error)
                if outcome == "configuration":
                    self.report.errors.append((row_id, error))
                    self._stop(f"SMTP configuration problem: {_error_kind(exc)}")
                    return
                if attempt < c.max_attempts:
                    await asyncio.sleep(c.backoff(attempt))
                    if self.stop_reason is not None:
                        self.report.errors.append((row_id, error))
                        return
            else:
                await self._sent(row, refused)
                return
        self.report.errors.append(
            (row_id, f"still pending after {c.max_attempts} attempts: {error}")
        )
        await self.release([row_id])  # another delivery may try it; this call will not
        self.gave_up_in_a_row += 1
        if self.gave_up_in_a_row >= c.connections:
            self._stop(
                f"{self.gave_up_in_a_row} messages in a row not delivered: server unreachable"
            )

    async def mark_not_attempted(self, ids: list[int]) -> None:
        """Say on the rows this call never tried why they are still pending."""
        left = [row_id for row_id in ids if row_id not in self.attempted]
        error = f"not attempted: delivery stopped ({self.stop_reason})"[:_ERROR_LIMIT]
        await self.db.run(_committed(note_still_pending, left, error))


async def deliver(
    database_url: str, message_ids: Sequence[int] | None, config: SmtpConfig
) -> DeliveryReport:
    """Send the pending outbox rows ``message_ids`` (all pending rows if None).

    Rows that are not pending (already sent or failed) are skipped, so calling this again
    sends nothing twice; rows are claimed before they are sent, so neither does a delivery
    running at the same time (see the module's docstring). Returns how many this call sent
    and failed, and how many of the rows are still pending. The database is read and written
    on a thread of its own, never on the event loop.
    """
    engine = await asyncio.to_thread(engine_for, database_url)
    local_hostname = await asyncio.to_thread(socket.getfqdn)
    owner = f"{local_hostname}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    db = _DatabaseThread(engine)
    try:
        delivery = _Delivery(db, config, owner)
        ids = await delivery.pending_ids(message_ids)
        if ids:
            workers = min(config.connections, len(ids))
            queue: asyncio.Queue[Row[Any] | None] = asyncio.Queue(maxsize=4 * workers)
            try:
                async with asyncio.TaskGroup() as group:
                    renewing = group.create_task(delivery.renew())
                    working = [
                        group.create_task(delivery.work(queue, _Connection(config, local_hostname)))
                        for _ in range(workers)
                    ]
                    await delivery.produce(queue, ids, batch=CLAIM_BATCH)
                    for _ in range(workers):
                        await queue.put(None)
                    await asyncio.wait(working)
                    renewing.cancel()
            finally:
                await delivery.release()  # rows claimed and not done are free again
            if delivery.stop_reason is not None:
                await delivery.mark_not_attempted(ids)
            free, held = await delivery.still_pending(ids)
            pending = len(free) + len(held)
        else:
            pending = 0
        report = delivery.report
        report.pending = pending
    finally:
        await db.close()
    logger.info(
        "outbox delivery: %d sent, %d failed, %d still pending (of %d)",
        report.sent,
        report.failed,
        report.pending,
        len(ids),
    )
    return report


def deliver_sync(
    database_url: str, message_ids: Sequence[int] | None, config: SmtpConfig
) -> DeliveryReport:
    """:func:`deliver` for synchronous callers (not from inside a running event loop)."""
    return asyncio.run(deliver(database_url, message_ids, config))
