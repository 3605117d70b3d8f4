"""Outbox delivery against raw aiosmtplib: messages/s over 8 reused connections.

Starts ``python -m notifications.sink`` in another process, queues N messages in a fresh
SQLite outbox, and times

- **deliver**: ``notifications.sender.deliver`` (loads rows, builds MIME, sends, marks each
  row sent with its own commit);
- **raw**: a bare aiosmtplib loop on the same number of reused connections sending the same
  messages, prebuilt as bytes before the clock starts (``sendmail``), recording nothing;
- **raw send_message** (for information): the same loop handing prebuilt ``EmailMessage``
  objects to ``send_message``, which flattens each one as it goes.

Each round queues fresh rows; the three alternate. Prints the median rates and the ratio
deliver/raw.

    .venv/bin/python benchmarks/fanout_delivery.py [--messages 5000] [--rounds 3]
"""

import argparse
import asyncio
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

import aiosmtplib
from sqlmodel import Session, col, select

from examflow.db import engine_for
from models.outbox import MessageDraft, OutboxMessage, message_domain, queue_messages
from notifications.mime import build_mime, envelope_recipients, envelope_sender, mime_bytes
from notifications.rendering import render_message
from notifications.sender import SmtpConfig, deliver

ROOT = Path(__file__).resolve().parents[1]
MAIL_FROM = "考试组织方 <noreply@exam.example.cn>"


def start_sink(mail_dir: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "notifications.sink", "--port", "0", "--dir", str(mail_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening on 127.0.0.1:PORT, storing in ..."
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"the sink did not start: {line!r}")
    port = int(line.split()[2].rstrip(",").rsplit(":", 1)[1])
    return process, port


def drafts(n: int, day: dt.date) -> list[MessageDraft]:
    out = []
    for i in range(n):
        ref = f"S{i:05d}"
        rendered = render_message(
            "_selftest",
            {
                "school_name": f"第{i}职业技术学校",
                "stage_label": "考点设备调试、安装考试平台",
                "missing": ["安装考试平台", "完成模拟考试", "提交设备调试报告"],
                "deadline": "2024年3月25日 17:00",
            },
        )
        out.append(
            MessageDraft(
                sitting_code="bench",
                stage="platform_install",
                checkpoint="remind",
                day=day,
                recipient_ref=ref,
                to_addr=f"{ref.lower()}@school.example.cn",
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
            )
        )
    return out


def queue(db_url: str, n: int, day: dt.date) -> list[int]:
    with Session(engine_for(db_url)) as session:
        ids = queue_messages(
            session,
            drafts(n, day),
            queued_at=dt.datetime.now(dt.UTC),
            mail_domain=message_domain(MAIL_FROM),
        )
        session.commit()
    return ids


def load(db_url: str, ids: list[int]) -> list[OutboxMessage]:
    with Session(engine_for(db_url)) as session:
        query = select(OutboxMessage).where(col(OutboxMessage.id).in_(ids))
        return list(session.exec(query.order_by(col(OutboxMessage.id))))


Prebuilt = tuple[list[str], bytes] | EmailMessage


async def raw_send(messages: list[Prebuilt], port: int, connections: int) -> None:
    queue: asyncio.Queue[Prebuilt] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    sender = envelope_sender(MAIL_FROM)

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, start_tls=False, local_hostname="localhost"
        )
        await smtp.connect()
        try:
            while not queue.empty():
                message = queue.get_nowait()
                if isinstance(message, EmailMessage):
                    await smtp.send_message(message)
                else:
                    await smtp.sendmail(sender, *message)
        finally:
            if smtp.is_connected:
                await smtp.quit()

    async with asyncio.TaskGroup() as group:
        for _ in range(connections):
            group.create_task(worker())


class Timing(NamedTuple):
    rate: float  # messages per second, wall clock
    cpu_us: float  # this (client) process's CPU time per message, in µs


def time_raw(messages: list[Prebuilt], port: int, connections: int) -> Timing:
    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run(raw_send(messages, port, connections))
    n = len(messages)
    return Timing(n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6)


def time_deliver(db_url: str, ids: list[int], config: SmtpConfig) -> Timing:
    start, cpu = time.perf_counter(), time.process_time()
    report = asyncio.run(deliver(db_url, ids, config))
    assert report.sent == len(ids), report
    n = len(ids)
    return Timing(n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    n, connections = args.messages, args.connections

    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        folder = Path(tmp)
        db_url = f"sqlite:///{folder / 'bench.db'}"
        sink, port = start_sink(folder / "mail")
        config = SmtpConfig(
            host="127.0.0.1", port=port, mail_from=MAIL_FROM, connections=connections
        )
        raw_rates: list[Timing] = []
        object_rates: list[Timing] = []
        deliver_rates: list[Timing] = []
        try:
            for round_ in range(args.rounds):
                day = dt.date(2024, 1, 1) + dt.timedelta(days=3 * round_)
                rows = load(db_url, queue(db_url, n, day))
                as_bytes: list[Prebuilt] = [
                    (envelope_recipients(row), mime_bytes(row, MAIL_FROM)) for row in rows
                ]
                ids = queue(db_url, n, day + dt.timedelta(days=1))
                rows = load(db_url, queue(db_url, n, day + dt.timedelta(days=2)))
                as_objects: list[Prebuilt] = [build_mime(row, MAIL_FROM) for row in rows]

                # alternate which goes first, so neither always gets the warmer machine
                for which in ("raw", "deliver") if round_ % 2 == 0 else ("deliver", "raw"):
                    if which == "raw":
                        raw_rates.append(time_raw(as_bytes, port, connections))
                    else:
                        deliver_rates.append(time_deliver(db_url, ids, config))
                object_rates.append(time_raw(as_objects, port, connections))
                raw_, ours, objects_ = raw_rates[-1], deliver_rates[-1], object_rates[-1]
                print(
                    f"round {round_ + 1}: raw {raw_.rate:5.0f} msg/s ({raw_.cpu_us:4.0f} µs CPU), "
                    f"deliver {ours.rate:5.0f} msg/s ({ours.cpu_us:4.0f} µs CPU), "
                    f"ratio {ours.rate / raw_.rate:4.2f}; "
                    f"raw send_message {objects_.rate:5.0f} msg/s ({objects_.cpu_us:4.0f} µs CPU)",
                    flush=True,
                )
            received = len(list((folder / "mail").glob("*.eml")))
            assert received == 3 * n * args.rounds, received
        except Exception:
            if sink.poll() is not None:  # e.g. someone's `pkill -f notifications.sink`
                sys.exit(f"the sink process ended early (exit code {sink.returncode})")
            raise
        finally:
            sink.terminate()
            sink.wait(timeout=10)

    def median(timings: list[Timing]) -> Timing:
        return Timing(
            statistics.median(t.rate for t in timings),
            statistics.median(t.cpu_us for t in timings),
        )

    raw, delivered, objects = median(raw_rates), median(deliver_rates), median(object_rates)
    paired = statistics.median(
        d.rate / r.rate for d, r in zip(deliver_rates, raw_rates, strict=True)
    )
    print(f"{n} messages, {connections} connections, sink in another process (medians)")
    for label, t in (
        ("raw aiosmtplib, prebuilt bytes (sendmail)", raw),
        ("raw aiosmtplib, prebuilt EmailMessage (send_message)", objects),
        ("outbox deliver", delivered),
    ):
        print(f"{label + ':':55} {t.rate:6.0f} msg/s, {t.cpu_us:5.0f} µs client CPU/msg")
    ratio = delivered.rate / raw.rate
    print(f"ratio deliver/raw: {ratio:.2f} (of medians), {paired:.2f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
