"""Benchmark: reminder fan-out, and a close checkpoint at national scale.

1. 5,000 reminders (one per lagging site) rendered from the templates, queued in the outbox
   and delivered over 8 reused connections to an SMTP sink running in another process —
   the path a `remind` checkpoint takes — against raw aiosmtplib sending the same messages,
   prebuilt, over the same 8 connections, in the same run. Target: ratio >= 0.7.
2. A `close` checkpoint over 1,500 sites and 200,000 candidates (evaluate the condition,
   plan and queue the messages, build the artifact), excluding delivery. Target: < 5 s.

    .venv/bin/python benchmarks/fanout.py [--sites 5000] [--national-candidates 200000]
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

REGISTERED = datetime.fromisoformat("2024-04-20T10:00:00+08:00")
REMIND = datetime.fromisoformat("2024-05-09T09:00:00+08:00")
CLOSE = datetime.fromisoformat("2024-05-13T00:05:00+08:00")


def load_register(n_schools: int, n_sites: int, n_candidates: int) -> None:
    """Calendar, schools (all sites borrowing-free), registrations; in the current home."""
    from adapters.tabular import read_table
    from examflow.db import session_scope
    from examflow.synthetic import (
        REGISTRATION_HEADER,
        SCHOOL_HEADER,
        make_registrations,
        make_schools,
    )
    from models.domain import Level
    from models.registration import REGISTRATION_COLUMNS, register_file
    from models.schools import SCHOOL_COLUMNS, agree_to_host, import_schools
    from models.sitting_calendar import parse_calendar
    from models.sittings import get_sitting, store_calendar

    def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue().encode()

    schools = make_schools(n_schools, n_sites, seats=400, pilot_scale=5000)
    rows = make_registrations(schools, n_candidates, [Level.junior, Level.intermediate])
    calendar = parse_calendar((ROOT / "calendars" / "2024-h1.toml").read_text(encoding="utf-8"))
    with session_scope() as session:
        store_calendar(session, calendar, "bench", REGISTERED)
        import_schools(
            session,
            read_table(csv_bytes(SCHOOL_HEADER, [s.row() for s in schools]), "s", SCHOOL_COLUMNS),
            REGISTERED,
        )
        spec = get_sitting(session, "2024-1").spec
        for s in schools:
            if s.host:
                agree_to_host(session, spec, s.host, s.code, REGISTERED)
    with session_scope() as session:
        table = read_table(csv_bytes(REGISTRATION_HEADER, rows), "r", REGISTRATION_COLUMNS)
        register_file(
            session,
            get_sitting(session, "2024-1"),
            table,
            file_name="r",
            sha256="b",
            as_of=REGISTERED,
        )


def checkpoint_without_delivery(
    as_of: datetime, checkpoint_name: str
) -> tuple[list[int], float, str]:
    """What a checkpoint run does before delivery: evaluate, plan, render, queue, artifact."""
    from examflow.db import session_scope
    from examflow.settings import get_settings
    from models.checkpoints import evaluate_checkpoint, plan_messages
    from models.domain import Checkpoint, StageCode
    from models.outbox import message_domain, queue_messages
    from models.sittings import get_sitting
    from notifications.compose import compose
    from tasks.checkpoint_tasks import progress_markdown

    start = time.perf_counter()
    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        outcome = evaluate_checkpoint(
            session, sitting, StageCode.platform_install, Checkpoint(checkpoint_name), as_of
        )
        planned = plan_messages(session, sitting, outcome, "ops@example.cn")
        drafts = compose(planned, outcome, sitting, set())
        ids = queue_messages(
            session, drafts, queued_at=as_of, mail_domain=message_domain(get_settings().mail_from)
        )
        markdown = progress_markdown(outcome)
    return (
        ids,
        time.perf_counter() - start,
        f"{outcome.state.value}, {len(markdown)} chars of artifact",
    )


def fanout(n_sites: int, connections: int) -> None:
    import fanout_delivery as fd

    from examflow.db import engine_for
    from examflow.settings import get_settings
    from notifications.mime import envelope_recipients, mime_bytes
    from notifications.sender import SmtpConfig, deliver

    load_register(n_sites, n_sites, n_sites)
    db_url = get_settings().resolved_database_url()
    engine_for(db_url)
    sink, port = fd.start_sink(Path(os.environ["EXAMFLOW_HOME"]) / "mail")
    try:
        ids, prep_s, state = checkpoint_without_delivery(REMIND, "remind")
        rows = fd.load(db_url, ids)
        prebuilt = [(envelope_recipients(r), mime_bytes(r, fd.MAIL_FROM)) for r in rows]

        def raw_once() -> float:
            start = time.perf_counter()
            asyncio.run(fd.raw_send(prebuilt, port, connections))
            return time.perf_counter() - start

        config = SmtpConfig(
            host="127.0.0.1", port=port, mail_from=fd.MAIL_FROM, connections=connections
        )
        raw_before = raw_once()
        start = time.perf_counter()
        report = asyncio.run(deliver(db_url, ids, config))
        deliver_s = time.perf_counter() - start
        raw_s = min(raw_before, raw_once())  # the faster raw run: a conservative ratio
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    n = len(ids)
    assert report.sent == n, report
    ours = n / (prep_s + deliver_s)
    raw = n / raw_s
    print(
        f"1. reminder fan-out: {n} reminders ({state}), {connections} connections, "
        "sink in another process"
    )
    print(
        f"   render + queue: {prep_s:.2f} s; deliver: {deliver_s:.2f} s "
        f"({n / deliver_s:,.0f} msg/s)"
    )
    print(f"   examflow end to end: {ours:,.0f} msg/s; raw aiosmtplib (prebuilt): {raw:,.0f} msg/s")
    print(
        f"   ratio examflow/raw: {ours / raw:.2f} (target >= 0.7); "
        f"delivery alone: {raw_s / deliver_s:.2f}"
    )


def national_close(n_candidates: int) -> None:
    from examflow.db import session_scope
    from models.facts import SiteFact, record_fact

    load_register(2000, 1500, n_candidates)
    with session_scope() as session:  # all but 40 sites have installed and passed the mock exam
        for i in range(1, 1501 - 40):
            for fact in (SiteFact.platform_installed, SiteFact.mock_passed):
                record_fact(session, "2024-1", f"S{i:05d}", fact, REGISTERED, source="bench")
    ids, seconds, state = checkpoint_without_delivery(CLOSE, "close")
    print(
        f"2. close checkpoint over 1,500 sites / {n_candidates:,} candidates, excluding delivery:"
    )
    print(f"   {seconds:.2f} s ({state}; {len(ids)} message(s) queued) (target < 5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--national-candidates", type=int, default=200_000)
    args = parser.parse_args()
    for part in ("fanout", "national"):
        with tempfile.TemporaryDirectory(prefix=f"examflow-{part}-") as home:
            os.environ["EXAMFLOW_HOME"] = home
            if part == "fanout":
                fanout(args.sites, args.connections)
            else:
                national_close(args.national_candidates)


if __name__ == "__main__":
    main()
