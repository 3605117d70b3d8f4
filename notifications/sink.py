"""A local SMTP sink: an aiosmtpd server on 127.0.0.1 that stores every message as a file.

Each accepted message becomes ``<mail_dir>/<YYYYmmdd-HHMMSS>-<seq>-<message-id>.eml`` (UTC
time, the raw bytes as received, nothing added). For tests it can also play a troubled
server: ``fail_first`` answers ``421`` to the first N RCPT (or DATA) commands and
``refuse_recipients`` answers ``550`` for those addresses.

Run it on its own with ``python -m notifications.sink --port 8025 --dir var/mail``; it runs
until SIGTERM or Ctrl-C.
"""

import argparse
import asyncio
import re
import signal
import ssl
import sys
import threading
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]+")


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return data if end < 0 else data[:end]


def sanitized_message_id(data: bytes) -> str:
    """The message's Message-ID made safe for a file name (``no-id`` when it has none)."""
    match = _MESSAGE_ID.search(_header_block(data))
    if match is None:
        return "no-id"
    text = match.group(1).decode("ascii", errors="replace").strip().strip("<>")
    return _UNSAFE.sub("_", text)[:120].strip("._") or "no-id"


class _SinkHandler:
    """aiosmtpd handler: write each message to a file; optionally refuse or defer."""

    def __init__(
        self,
        mail_dir: Path,
        fail_first: int,
        fail_on: Literal["rcpt", "data"],
        refuse_recipients: Collection[str],
        delay: float = 0.0,
    ) -> None:
        self.mail_dir = mail_dir
        self.delay = delay
        self.fail_first = fail_first
        self.fail_on = fail_on
        self.refuse = {address.lower() for address in refuse_recipients}
        self.deferred = 0
        self.seq = 0
        self.peers: set[object] = set()
        self.lock = threading.Lock()

    def _defer(self) -> bool:
        with self.lock:
            if self.deferred < self.fail_first:
                self.deferred += 1
                return True
            return False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.fail_on == "rcpt" and self._defer():
            return "421 try later"
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_on == "data" and self._defer():
            return "421 try later"
        if self.delay:  # a slow server: lets tests kill a sender mid-fan-out
            await asyncio.sleep(self.delay)
        data: bytes = envelope.original_content or b""
        self.store(data)
        with self.lock:
            self.peers.add(session.peer)
        return "250 Message accepted for delivery"

    def store(self, data: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = sanitized_message_id(data)
        while True:
            with self.lock:
                self.seq += 1
                seq = self.seq
            path = self.mail_dir / f"{stamp}-{seq:06d}-{name}.eml"
            try:
                with path.open("xb") as out:
                    out.write(data)
            except FileExistsError:
                continue
            return path


class _Controller(Controller):
    """aiosmtpd's Controller, able to bind port 0 and report the port the OS picked."""

    def _create_server(self) -> Any:
        async def create() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


class MailSink:
    """An SMTP server on 127.0.0.1 storing every message under ``mail_dir``.

    ``port=0`` picks a free port (see ``.port`` once started). ``ssl_context`` makes it an
    implicit-TLS server; other keyword arguments go to ``aiosmtpd.smtp.SMTP``
    (``tls_context``, ``require_starttls``, ``authenticator``, ``auth_require_tls``, ...).
    """

    def __init__(
        self,
        mail_dir: Path | str,
        port: int = 0,
        *,
        fail_first: int = 0,
        fail_on: Literal["rcpt", "data"] = "rcpt",
        refuse_recipients: Collection[str] = (),
        delay: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
        **smtp_kwargs: Any,
    ) -> None:
        self.mail_dir = Path(mail_dir)
        self.handler = _SinkHandler(self.mail_dir, fail_first, fail_on, refuse_recipients, delay)
        self._requested_port = port
        self._ssl_context = ssl_context
        self._smtp_kwargs = smtp_kwargs
        self._controller: _Controller | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the mail sink is not running")
        port: int = self._controller.port
        return port

    @property
    def connections_used(self) -> int:
        """How many distinct client connections delivered at least one message."""
        return len(self.handler.peers)

    def messages(self) -> list[Path]:
        """The stored message files, oldest first."""
        return sorted(self.mail_dir.glob("*.eml"))

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the mail sink is already running")
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        controller = _Controller(
            self.handler,
            hostname=HOST,
            port=self._requested_port,
            ssl_context=self._ssl_context,
            **self._smtp_kwargs,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a sink until SIGTERM or Ctrl-C; prints ``listening on HOST:PORT`` once ready."""
    parser = argparse.ArgumentParser(
        prog="python -m notifications.sink", description="Local SMTP sink on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=8025, help="port (0: any free port)")
    parser.add_argument("--dir", default="var/mail", help="folder for the .eml files")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per message (tests)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with MailSink(args.dir, args.port, delay=args.delay) as sink:
        print(f"listening on {sink.host}:{sink.port}, storing in {sink.mail_dir}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
