"""examflow on real Prefect workers, the production shape: `examflow deploy` into a process
work pool, two `prefect worker start --pool examflow`, a Prefect server and the app on
PostgreSQL, a real SMTP sink. A batch of checkpoints of all three sittings made due now runs
once each, on both workers, every message delivered once. Then a worker dies (SIGKILL, with
the flow run it was running) in the middle of a fan-out: heartbeats stop, the zombie
automation marks the run Crashed, the re-run automation schedules it again, the other worker
runs it, and every message is delivered, at most one extra copy per SMTP connection.

Needs EXAMFLOW_TEST_POSTGRES_URL and EXAMFLOW_TEST_PREFECT_PG_URL (tests/pg.py; .ci/run's
PostgreSQL pass)."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from examflow.synthetic import SCHOOL_HEADER, make_schools, write_csv
from notifications.sink import MailSink
from tests import pg
from tests.conftest import CALENDAR
from tests.mailbox import received

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SCHOOLS = 60
CONNECTIONS = 2
HEARTBEAT_S = 30  # Prefect's minimum
ZOMBIE_AFTER_S = 75
LEASE_S = 15
SITTINGS = ("2024-1", "2024-2", "2024-3")
# per sitting: registration open (every school, with its .ics) and three reminders on three
# days (every pilot school without registrations: all of them here)
BATCH = {
    "2024-1": ["2024-02-21", "2024-04-26", "2024-04-28", "2024-04-29"],
    "2024-2": ["2024-02-21", "2024-05-18", "2024-05-20", "2024-05-21"],
    "2024-3": ["2024-02-21", "2024-05-25", "2024-05-27", "2024-05-28"],
}
RETRIED = ("registration", "remind", "2024-05-10T09:00:00+08:00")  # a day of its own
KILLED_RUN_DAY = "2024-04-10"  # 2024-1 reminders on a day of their own: a fresh fan-out

needs_pg = pytest.mark.skipif(
    not (os.environ.get(pg.POSTGRES_ENV) and os.environ.get(pg.PREFECT_PG_ENV)),
    reason="needs EXAMFLOW_TEST_POSTGRES_URL and EXAMFLOW_TEST_PREFECT_PG_URL",
)


def examflow(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "from examflow.cli import main; main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_machine(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and every process it started, as if its machine had died."""
    for pid in [*descendants(worker.pid), worker.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=30)


@pytest.fixture
def workers(home: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Prefect server on PostgreSQL, the app on PostgreSQL (``home``), 60 schools, an SMTP
    sink, `examflow deploy` of the three sittings, and two process workers."""
    server_home = tmp_path / "prefect-server"
    with (
        pg.prefect_server_on_postgres(os.environ[pg.PREFECT_PG_ENV], server_home) as api_url,
        MailSink(tmp_path / "mail", 0) as sink,
    ):
        env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(tmp_path / "prefect-client"),
            "EXAMFLOW_SMTP_HOST": sink.host,
            "EXAMFLOW_SMTP_PORT": str(sink.port),
            "EXAMFLOW_SMTP_SECURITY": "none",
            "EXAMFLOW_SMTP_CONNECTIONS": str(CONNECTIONS),
            "EXAMFLOW_OUTBOX_LEASE_SECONDS": str(LEASE_S),
            "EXAMFLOW_ZOMBIE_AFTER_SECONDS": str(ZOMBIE_AFTER_S),
        }
        schools = make_schools(SCHOOLS, SCHOOLS)
        register = write_csv(tmp_path / "schools.csv", SCHOOL_HEADER, [s.row() for s in schools])
        examflow("calendar", "load", str(CALENDAR), env=env)
        examflow("schools", "import", str(register), env=env)
        examflow("deploy", str(CALENDAR), env=env)
        examflow("deploy", str(CALENDAR), env=env)  # twice: the automations stay one each
        processes: dict[str, subprocess.Popen[bytes]] = {}
        logs: dict[str, Path] = {}
        try:
            for name in ("worker-a", "worker-b"):
                logs[name] = tmp_path / f"{name}.log"
                worker_env = {
                    **env,
                    "PREFECT_HOME": str(tmp_path / name),
                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
                    "PREFECT_WORKER_QUERY_SECONDS": "2",
                    # the log is how this test sees which worker took a run; an earlier test's
                    # examflow command may have set the console to WARNING in this process
                    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO",
                }
                with logs[name].open("wb") as log:
                    processes[name] = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "prefect",
                            "worker",
                            "start",
                            "--pool",
                            "examflow",
                            "--name",
                            name,
                            "--limit",
                            "2",
                        ],
                        cwd=ROOT,
                        env=worker_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
            yield {"api_url": api_url, "sink": sink, "workers": processes, "logs": logs}
        finally:
            for process in processes.values():
                if process.poll() is None:
                    kill_machine(process)


async def create_runs(
    runs: list[tuple[str, str, str, str]], deployment: str | None = None
) -> list[UUID]:
    """Flow runs of the sitting deployments (or ``deployment``), (sitting, stage, checkpoint,
    as_of) each, scheduled now: checkpoints moved to "due now"."""
    from prefect import get_client
    from prefect.states import Scheduled

    ids = []
    async with get_client() as client:
        for sitting, stage, checkpoint, as_of in runs:
            name = f"sitting-checkpoint/{deployment or sitting}"
            found = await client.read_deployment_by_name(name)
            parameters = {"sitting": sitting, "stage": stage, "checkpoint": checkpoint}
            flow_run = await client.create_flow_run_from_deployment(
                found.id,
                parameters={**parameters, "as_of": as_of},
                state=Scheduled(scheduled_time=datetime.now(UTC)),
            )
            ids.append(flow_run.id)
    return ids


async def wait_final(ids: list[UUID], timeout: float) -> dict[UUID, Any]:
    from prefect import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            runs = {i: await client.read_flow_run(i) for i in ids}
            if all(r.state is not None and r.state.is_final() for r in runs.values()):
                return runs
            assert time.monotonic() < deadline, {i: r.state_name for i, r in runs.items()}
            await asyncio.sleep(1)


async def state_history(flow_run_id: UUID) -> list[str]:
    from prefect import get_client

    async with get_client() as client:
        return [s.type.value for s in await client.read_flow_run_states(flow_run_id)]


async def automation_names() -> list[str]:
    from prefect import get_client

    async with get_client() as client:
        return [a.name for a in await client.read_automations()]


def took_run(logs: dict[str, Path], flow_run_id: UUID) -> list[str]:
    """The workers that started ``flow_run_id`` (a submission the server turned back, the
    run waiting for its deployment's concurrency slot, does not count)."""
    taken = []
    for name, log in logs.items():
        text = log.read_text(errors="replace")
        submitted = text.count(f"submitting flow run '{flow_run_id}'")
        turned_back = text.count(f"Aborted submission of flow run '{flow_run_id}'")
        if submitted > turned_back:
            taken.append(name)
    return taken


def message_ids(mail_dir: Path) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in received(mail_dir))


@needs_pg
def test_two_workers_run_each_due_checkpoint_once_and_a_killed_workers_run_is_rerun(
    workers: dict[str, Any], tmp_path: Path
) -> None:
    from examflow.db import session_scope
    from models.outbox import OutboxStatus, outbox_counts

    mail_dir = tmp_path / "mail"
    names = Counter(asyncio.run(automation_names()))
    assert names["examflow: crash zombie flow runs"] == 1
    assert names["examflow: re-run crashed checkpoint runs"] == 1

    # -- a batch of checkpoints of all three sittings, due now --------------------------------
    batch = [
        (s, "registration", "open" if i == 0 else "remind", f"{day}T09:00:00+08:00")
        for s, days in BATCH.items()
        for i, day in enumerate(days)
    ]
    started = time.monotonic()
    ids = asyncio.run(create_runs(batch))
    runs = asyncio.run(wait_final(ids, timeout=900))
    batch_s = time.monotonic() - started
    assert {r.state_type.value for r in runs.values()} == {"COMPLETED"}, {
        i: (r.state_name, r.state.message if r.state else None) for i, r in runs.items()
    }
    assert [r.run_count for r in runs.values()] == [1] * len(batch)  # each ran once
    takers = {i: took_run(workers["logs"], i) for i in ids}
    assert all(len(t) == 1 for t in takers.values()), takers
    per_worker = Counter(t[0] for t in takers.values())
    print(f"\nbatch of {len(batch)} runs in {batch_s:.0f} s; runs per worker: {dict(per_worker)}")
    assert set(per_worker) == {"worker-a", "worker-b"}
    sent = message_ids(mail_dir)
    expected = len(batch) * SCHOOLS  # each checkpoint mails every school
    assert len(sent) == expected and set(sent.values()) == {1}
    with session_scope() as session:
        counts = [outbox_counts(session, s) for s in SITTINGS]
    assert sum(c[OutboxStatus.sent] for c in counts) == expected

    # -- ops press Retry (a run of run-checkpoint, same parameters) during a running run ----
    workers["sink"].handler.delay = 0.2
    scheduled_run, *_ = asyncio.run(create_runs([("2024-2", *RETRIED)]))
    deadline = time.monotonic() + 300
    while len(message_ids(mail_dir)) < len(sent) + 5:
        assert time.monotonic() < deadline, "the fan-out did not start"
        time.sleep(0.1)
    (retry,) = asyncio.run(create_runs([("2024-2", *RETRIED)], deployment="run-checkpoint"))
    both = asyncio.run(wait_final([scheduled_run, retry], timeout=600))
    assert {r.state_type.value for r in both.values()} == {"COMPLETED"}
    after_retry = message_ids(mail_dir)
    assert len(after_retry) == len(sent) + SCHOOLS and set(after_retry.values()) == {1}
    sent = after_retry

    # -- a worker dies in the middle of a fan-out -------------------------------------------
    workers["sink"].handler.delay = 0.4  # a slow server: the fan-out takes ~12 s
    before = len(sent)
    (killed_run,) = asyncio.run(
        create_runs([("2024-1", "registration", "remind", f"{KILLED_RUN_DAY}T09:00:00+08:00")])
    )
    deadline = time.monotonic() + 300
    while len(list(mail_dir.glob("*.eml"))) < before + 10:
        assert time.monotonic() < deadline, "the fan-out did not start"
        time.sleep(0.1)
    (victim,) = took_run(workers["logs"], killed_run)
    kill_machine(workers["workers"][victim])
    accepted_when_killed = len(list(mail_dir.glob("*.eml"))) - before
    assert accepted_when_killed < SCHOOLS
    killed_at = time.monotonic()
    workers["sink"].handler.delay = 0.0
    final = asyncio.run(wait_final([killed_run], timeout=600))[killed_run]
    recovered_s = time.monotonic() - killed_at
    history = asyncio.run(state_history(killed_run))
    print(
        f"killed {victim} after {accepted_when_killed} of {SCHOOLS} accepted; "
        f"re-run done {recovered_s:.0f} s later; states {history}"
    )
    assert final.state_type.value == "COMPLETED", (final.state_name, history)
    assert "CRASHED" in history
    assert final.run_count == 2
    survivor = "worker-b" if victim == "worker-a" else "worker-a"
    assert survivor in took_run(workers["logs"], killed_run)
    all_ids = message_ids(mail_dir)
    new = {m: n for m, n in all_ids.items() if m not in sent}
    assert len(new) == SCHOOLS  # every school got the killed run's reminder
    duplicates = sum(n - 1 for n in new.values())
    print(f"duplicates after the crash: {duplicates} (bound: {CONNECTIONS})")
    assert duplicates <= CONNECTIONS
