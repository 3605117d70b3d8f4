"""One send per message, whatever runs at once: a delivery claims outbox rows (a lease with an
owner and an expiry) before it sends them, so deliveries running together split the rows and
send each once, and a lease left by a dead process is taken over once it has expired.

On the test's own database (``home``): SQLite, or PostgreSQL with EXAMFLOW_TEST_POSTGRES_URL
(tests/pg.py; .ci/run's PostgreSQL pass runs this file)."""

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from examflow.db import get_engine
from examflow.settings import get_settings
from examflow.synthetic import SCHOOL_HEADER, make_schools, write_csv
from models.outbox import (
    MessageDraft,
    OutboxMessage,
    OutboxStatus,
    claim_pending,
    mark_sent,
    queue_messages,
    renew_leases,
)
from notifications.sender import DeliveryReport, SmtpConfig, deliver_sync
from notifications.sink import MailSink
from tests.cli import run
from tests.conftest import CALENDAR
from tests.mailbox import received

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2024, 3, 20, 1, 0, tzinfo=dt.UTC)
T = OutboxMessage.__table__  # type: ignore[attr-defined]


def drafts(n: int) -> list[MessageDraft]:
    return [
        MessageDraft(
            sitting_code="2024-1",
            stage="platform_install",
            checkpoint="remind",
            day=NOW.date(),
            recipient_ref=f"S{i:04d}",
            to_addr=f"s{i:04d}@school.example.cn",
            subject="提醒",
            text_body=f"S{i:04d}：请完成考试平台安装。",
            html_body=f"<p>S{i:04d}：请完成考试平台安装。</p>",
        )
        for i in range(n)
    ]


@pytest.fixture
def engine(home: Path) -> Engine:
    return get_engine()


def queued(engine: Engine, n: int) -> list[int]:
    with Session(engine) as session:
        ids = queue_messages(session, drafts(n), queued_at=NOW, mail_domain="exam.example.cn")
        session.commit()
    return ids


def smtp(port: int, **overrides: Any) -> SmtpConfig:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "connections": 4}
    return SmtpConfig(**(settings | overrides))


def to_counts(mail_dir: Path) -> Counter[str]:
    return Counter(str(message["To"]) for message in received(mail_dir))


# --- the claim itself ------------------------------------------------------------------------


def test_two_owners_claiming_the_same_rows_get_disjoint_sets(engine: Engine) -> None:
    ids = queued(engine, 10)
    until = NOW + dt.timedelta(minutes=2)
    with engine.connect() as conn:
        first = claim_pending(conn, ids, owner="a", now=NOW, until=until, limit=4)
        conn.commit()
        second = claim_pending(conn, ids, owner="b", now=NOW, until=until, limit=100)
        conn.commit()
        third = claim_pending(conn, ids, owner="c", now=NOW, until=until, limit=100)
        conn.commit()
    assert [row.id for row in first] == ids[:4]  # lowest ids first
    assert [row.id for row in second] == ids[4:]
    assert third == []


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(engine: Engine) -> None:
    ids = queued(engine, 3)
    with engine.connect() as conn:
        claim_pending(
            conn, ids, owner="dead", now=NOW, until=NOW + dt.timedelta(seconds=60), limit=3
        )
        conn.commit()
        before_expiry = NOW + dt.timedelta(seconds=59)
        assert claim_pending(conn, ids, owner="b", now=before_expiry, until=NOW, limit=3) == []
        after = NOW + dt.timedelta(seconds=60)
        taken = claim_pending(conn, ids, owner="b", now=after, until=after, limit=3)
        conn.commit()
        owners = conn.execute(select(T.c.lease_owner).where(T.c.id.in_(ids))).scalars().all()
    assert [row.id for row in taken] == ids
    assert set(owners) == {"b"}


def test_a_sent_row_is_never_claimed_again_and_renewal_keeps_a_lease_alive(engine: Engine) -> None:
    ids = queued(engine, 2)
    with engine.connect() as conn:
        claim_pending(conn, ids, owner="a", now=NOW, until=NOW + dt.timedelta(seconds=10), limit=2)
        mark_sent(conn, ids[0], sent_at=NOW, note=None)
        assert renew_leases(conn, "a", NOW + dt.timedelta(seconds=100)) == 1  # the pending one
        conn.commit()
        later = NOW + dt.timedelta(seconds=50)  # past the first expiry, within the renewed one
        assert claim_pending(conn, ids, owner="b", now=later, until=later, limit=2) == []
        much_later = NOW + dt.timedelta(seconds=100)
        taken = claim_pending(conn, ids, owner="b", now=much_later, until=much_later, limit=2)
        row = conn.execute(select(T.c.lease_owner, T.c.status).where(T.c.id == ids[0])).one()
    assert [r.id for r in taken] == [ids[1]]
    assert tuple(row) == (None, OutboxStatus.sent)  # sending released the lease


# --- deliveries at once ----------------------------------------------------------------------


def test_two_deliveries_in_two_threads_send_each_of_2000_messages_once(
    engine: Engine, tmp_path: Path
) -> None:
    ids = queued(engine, 2000)
    url = get_settings().resolved_database_url()
    reports: list[DeliveryReport] = []
    start = threading.Barrier(2)
    with MailSink(tmp_path / "mail", 0, delay=0.001) as sink:

        def one() -> None:
            start.wait(timeout=10)
            reports.append(deliver_sync(url, ids, smtp(sink.port)))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    counts = to_counts(tmp_path / "mail")
    assert len(counts) == 2000 and set(counts.values()) == {1}
    assert sorted(r.sent for r in reports) != [0, 2000], "one delivery did all: no overlap"
    assert sum(r.sent for r in reports) == 2000
    assert [r.pending for r in reports] == [0, 0]
    with Session(engine) as session:
        statuses = set(session.exec(select(OutboxMessage.status)))
        leased = session.exec(
            select(OutboxMessage).where(col(OutboxMessage.lease_owner).is_not(None))
        )
        assert statuses == {OutboxStatus.sent} and list(leased) == []


def test_a_stale_lease_of_a_dead_process_is_taken_over_after_it_expires(
    engine: Engine, tmp_path: Path
) -> None:
    ids = queued(engine, 20)
    lease_ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    with engine.connect() as conn:  # a process that claimed half the rows, then died
        claim_pending(conn, ids, owner="dead", now=NOW, until=lease_ends, limit=10)
        conn.commit()
    url = get_settings().resolved_database_url()
    with MailSink(tmp_path / "mail", 0) as sink:
        started = time.monotonic()
        report = deliver_sync(url, ids, smtp(sink.port, lease_seconds=5))
        took = time.monotonic() - started
    counts = to_counts(tmp_path / "mail")
    assert report.sent == 20 and report.pending == 0
    assert len(counts) == 20 and set(counts.values()) == {1}
    assert took >= 2.0, "the dead process's rows were sent before its lease expired"


def test_a_delivery_waits_for_rows_another_live_delivery_holds_and_sends_none_of_them(
    engine: Engine, tmp_path: Path
) -> None:
    ids = queued(engine, 10)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with engine.connect() as conn:  # another delivery, alive: it sends its rows 2 s from now
        held = [r.id for r in claim_pending(conn, ids, owner="other", now=NOW, until=far, limit=5)]
        conn.commit()

    def other_sends() -> None:
        time.sleep(2)
        with engine.connect() as conn:
            for row_id in held:
                mark_sent(conn, row_id, sent_at=dt.datetime.now(dt.UTC), note=None)
            conn.commit()

    url = get_settings().resolved_database_url()
    with MailSink(tmp_path / "mail", 0) as sink:
        other = threading.Thread(target=other_sends)
        other.start()
        started = time.monotonic()
        report = deliver_sync(url, ids, smtp(sink.port, lease_seconds=30))
        took = time.monotonic() - started
        other.join()
    assert report.sent == 5 and report.pending == 0
    assert took >= 1.5  # it returned once the other delivery's rows were done
    assert sorted(to_counts(tmp_path / "mail")) == [
        f"s{i:04d}@school.example.cn" for i in range(5, 10)
    ]


def test_the_sender_releases_its_leases_when_it_gives_up(engine: Engine, tmp_path: Path) -> None:
    ids = queued(engine, 3)
    url = get_settings().resolved_database_url()
    with MailSink(tmp_path / "mail", 0, fail_first=1000) as sink:
        report = deliver_sync(
            url, ids, smtp(sink.port, max_attempts=2, backoff_base=0.0, backoff_max=0.0)
        )
    assert report.sent == 0 and report.pending == 3
    with engine.connect() as conn:
        assert (
            conn.execute(select(T.c.lease_owner).where(T.c.id.in_(ids))).scalars().all()
            == [None] * 3
        )


# --- two `examflow run` processes of the same checkpoint -----------------------------------

SCHOOLS = 2000
# A week before registration closes: every pilot school without registrations is reminded
# (the window's `open` would do too, but its per-school .ics costs ~0.07 s a message today).
REMIND = ["2024-1", "registration", "remind", "--as-of", "2024-04-22T09:00"]


def two_thousand_schools(tmp_path: Path) -> None:
    """The calendar and 2,000 schools, all pilot sites with nobody registered yet."""
    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    schools = make_schools(SCHOOLS, SCHOOLS)
    register = write_csv(tmp_path / "schools.csv", SCHOOL_HEADER, [s.row() for s in schools])
    assert run("schools", "import", str(register)).exit_code == 0


def examflow_run(home: Path, port: int) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "EXAMFLOW_HOME": str(home),
        "EXAMFLOW_SMTP_PORT": str(port),
        "EXAMFLOW_SMTP_HOST": "127.0.0.1",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    command = [sys.executable, "-c", "from examflow.cli import main; main()"]
    command += ["run", *REMIND, "--json"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
@pytest.mark.prefect
def test_two_examflow_runs_of_one_checkpoint_at_once_send_2000_messages_once(
    home: Path, tmp_path: Path, prefect_server: None
) -> None:
    two_thousand_schools(tmp_path)
    mail_dir = tmp_path / "mail"
    with MailSink(mail_dir, 0, delay=0.002) as sink:
        processes = [examflow_run(home, sink.port) for _ in range(2)]
        outputs = [p.communicate(timeout=600) for p in processes]
    sent = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
        sent.append(json.loads(out)["sent"])
    print(f"sent by each of the two runs: {sent}")
    assert sum(sent) == SCHOOLS
    counts = to_counts(mail_dir)
    assert len(counts) == SCHOOLS
    assert [to for to, n in counts.items() if n > 1] == []
    with Session(get_engine()) as session:
        statuses = Counter(session.exec(select(OutboxMessage.status)))
    assert statuses == {OutboxStatus.sent: SCHOOLS}
