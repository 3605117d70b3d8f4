"""Nothing lost, nothing sent twice: `examflow run` killed with SIGKILL mid-fan-out, then re-run."""

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from examflow.synthetic import SCHOOL_HEADER, make_schools, write_csv
from tests.cli import run
from tests.conftest import CALENDAR
from tests.mailbox import received

ROOT = Path(__file__).resolve().parents[1]
SCHOOLS = 120
CONNECTIONS = 8
LEASE_S = 5

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def start_sink(mail_dir: Path) -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "notifications.sink",
            "--port",
            "0",
            "--dir",
            str(mail_dir),
            "--delay",
            "0.05",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    line = sink.stdout.readline()
    assert line.startswith("listening on "), line
    return sink, int(line.split()[2].rstrip(",").rsplit(":", 1)[1])


def examflow_run(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EXAMFLOW_HOME": str(home),
        "EXAMFLOW_SMTP_PORT": str(port),
        "EXAMFLOW_SMTP_CONNECTIONS": str(CONNECTIONS),
        # the killed run's claims on rows it had not finished are taken over after this
        "EXAMFLOW_OUTBOX_LEASE_SECONDS": str(LEASE_S),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    command = [
        str(ROOT / ".venv" / "bin" / "examflow"),
        "run",
        "2024-1",
        "registration",
        "open",
        "--as-of",
        "2024-02-21T09:00",
    ]
    if not Path(command[0]).exists():
        command[0:1] = [sys.executable, "-m", "examflow.cli"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_a_fan_out_killed_part_way_delivers_everything_on_rerun_with_few_duplicates(
    home: Path, tmp_path: Path, prefect_server: None
) -> None:
    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    schools = make_schools(SCHOOLS, 30)
    register = write_csv(tmp_path / "schools.csv", SCHOOL_HEADER, [s.row() for s in schools])
    assert run("schools", "import", str(register)).exit_code == 0
    mail_dir = tmp_path / "mail"
    sink, port = start_sink(mail_dir)
    try:
        first = examflow_run(home, port)
        deadline = time.monotonic() + 120
        while len(list(mail_dir.glob("*.eml"))) < 30:  # part way through the fan-out
            assert first.poll() is None, first.stdout.read() if first.stdout else ""
            assert time.monotonic() < deadline, "the fan-out did not start"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        accepted_before_rerun = len(list(mail_dir.glob("*.eml")))
        assert accepted_before_rerun < SCHOOLS
        second = examflow_run(home, port)
        output, _ = second.communicate(timeout=300)
        assert second.returncode == 0, output.decode(errors="replace")
    finally:
        sink.terminate()
        sink.wait(timeout=30)

    ids_by_recipient: dict[str, list[str]] = defaultdict(list)
    for message in received(mail_dir):
        ids_by_recipient[str(message["To"])].append(str(message["Message-ID"]))
    assert len(ids_by_recipient) == SCHOOLS  # every school got its message
    duplicates = sum(len(ids) - 1 for ids in ids_by_recipient.values())
    print(f"killed after {accepted_before_rerun} accepted; duplicates after re-run: {duplicates}")
    assert duplicates <= CONNECTIONS  # at most the messages in flight when killed
    for ids in ids_by_recipient.values():
        assert len(set(ids)) == 1  # a resend carries the first copy's Message-ID
