"""Two sittings' checkpoints run at the same moment against one database and one SMTP server
(SQLite by default; PostgreSQL with EXAMFLOW_TEST_POSTGRES_URL, see tests/pg.py): each ends
in its own state and sends its own messages, once; nothing waits on a lock forever.

Run both ways a deployment runs them: as two threads of one process (shared engine and
pool), and as two `examflow run` processes (how a served deployment or a process worker runs
each flow run)."""

import json
import os
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from examflow.db import session_scope
from models.checkpoints import CheckpointResult
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.outbox import OutboxMessage, OutboxStatus
from notifications.sink import MailSink
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.mailbox import received

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 180
EXAMFLOW = [sys.executable, "-c", "from examflow.cli import main; main()"]  # `examflow`
CLOSES = {  # five minutes after each sitting's platform_install window ends
    "2024-1": datetime(2024, 5, 13, 0, 5, tzinfo=SHANGHAI),
    "2024-2": datetime(2024, 6, 2, 0, 5, tzinfo=SHANGHAI),
}
EXPECTED: dict[str, dict[str, Any]] = {
    "2024-1": {"state": "Stalled", "missing": ["P1: 模考及平台测试已通过"]},
    "2024-2": {"state": "Stalled", "missing": ["P4: 考试平台已安装", "P4: 模考及平台测试已通过"]},
}


@pytest.fixture
def two_sittings(register_loaded: Path, prefect_server: None, mail_sink: MailSink) -> Path:
    """2024-1: P1 (2) and P3 (3), P1 without a mock exam. 2024-2: P4 (2) and P3 (2), P4 with
    nothing done. Both platform_install windows have closed unmet at their close checkpoint."""
    rows_1 = [["P1", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    rows_1 += [["P3", f"乙{i}", new_id(), "中级", ""] for i in range(3)]
    rows_2 = [["P4", f"丙{i}", new_id(), "初级", ""] for i in range(2)]
    rows_2 += [["P3", f"丁{i}", new_id(), "中级", ""] for i in range(2)]
    for sitting, rows in [("2024-1", rows_1), ("2024-2", rows_2)]:
        path = reg_file(register_loaded, rows, name=f"reg-{sitting}.csv")
        result = run("register", sitting, str(path), "--as-of", OPEN)
        assert result.exit_code == 0, result.output
    for sitting, site, fact, as_of in [
        ("2024-1", "P3", "platform_installed", "2024-05-02"),
        ("2024-1", "P3", "mock_passed", "2024-05-02"),
        ("2024-1", "P1", "platform_installed", "2024-05-02"),
        ("2024-2", "P3", "platform_installed", "2024-05-20"),
        ("2024-2", "P3", "mock_passed", "2024-05-20"),
    ]:
        assert run("mark", sitting, site, fact, "--as-of", as_of).exit_code == 0
    return register_loaded


def in_threads() -> dict[str, dict[str, Any]]:
    """Both checkpoints as flow runs in two threads of this process, started together."""
    from flows.sitting_checkpoint import sitting_checkpoint

    start = threading.Barrier(len(CLOSES))
    outcomes: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def checkpoint(sitting: str) -> None:
        try:
            start.wait(timeout=30)
            state = sitting_checkpoint(
                sitting,
                StageCode.platform_install,
                Checkpoint.close,
                CLOSES[sitting],
                return_state=True,
            )
            result = state.result(raise_on_failure=False)
            assert isinstance(result, CheckpointResult), result
            outcomes[sitting] = {"state": state.name, "sent": result.sent}
            outcomes[sitting] |= {"missing": result.missing, "failed": result.failed}
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=checkpoint, args=(s,)) for s in CLOSES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RUN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a checkpoint run never finished"
    assert errors == []
    return outcomes


def close_args(sitting: str, moment: datetime) -> list[str]:
    return ["run", sitting, "platform_install", "close", "--as-of", moment.isoformat(), "--json"]


def in_processes() -> dict[str, dict[str, Any]]:
    """Both checkpoints as `examflow run … --json`, two processes started together, on this
    test's database, SMTP server and Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    processes = {
        sitting: subprocess.Popen(
            [*EXAMFLOW, *close_args(sitting, moment)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for sitting, moment in CLOSES.items()
    }
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        for sitting, process in processes.items():
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
            assert "database is locked" not in stderr and "deadlock" not in stderr.lower()
            assert process.returncode == 1, stderr  # Stalled is a Failed-type state
            outcomes[sitting] = json.loads(stdout.strip().splitlines()[-1])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return outcomes


@pytest.mark.parametrize("runner", [in_threads, in_processes], ids=["threads", "processes"])
def test_two_sittings_close_at_once_each_with_its_own_state_and_mail_once(
    two_sittings: Path, mail_sink: MailSink, runner: Any
) -> None:
    outcomes = runner()

    for sitting, expected in EXPECTED.items():
        assert outcomes[sitting]["state"] == expected["state"]
        assert outcomes[sitting]["missing"] == expected["missing"]
        assert outcomes[sitting]["sent"] == 1 and outcomes[sitting]["failed"] == 0
    messages = received(mail_sink.mail_dir)
    assert sorted(str(m["To"]) for m in messages) == ["ops@organiser.example.cn"] * 2
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert subjects[0].startswith("【Stalled】2024-1 · platform_install · close")
    assert subjects[1].startswith("【Stalled】2024-2 · platform_install · close")
    assert len({m["Message-ID"] for m in messages}) == 2
    with session_scope() as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert sorted((r.sitting_code, r.status) for r in rows) == [
        ("2024-1", OutboxStatus.sent),
        ("2024-2", OutboxStatus.sent),
    ]

    again = runner()  # both re-triggered together the same day: nothing goes out twice

    assert {s: (o["state"], o["sent"]) for s, o in again.items()} == {
        "2024-1": ("Stalled", 0),
        "2024-2": ("Stalled", 0),
    }
    assert len(received(mail_sink.mail_dir)) == 2
