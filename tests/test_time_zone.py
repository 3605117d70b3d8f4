"""A naive time means Asia/Shanghai, whatever the machine's zone (TZ) is.

The registration window of 2024-1 closes at the end of 2024-04-29 in Shanghai. A naive
2024-04-29T23:30 read in New York's zone would be 2024-04-30 11:30 in Shanghai, after the
close; read as Shanghai time it is half an hour before it."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from examflow.db import session_scope
from examflow.synthetic import SCHOOL_HEADER, write_csv
from models.facts import SiteFact, SiteFactRecord, record_fact
from notifications.sink import MailSink
from tests.cli import run
from tests.conftest import CALENDAR
from tests.helpers import OPEN, SCHOOLS, new_id, reg_file

ROOT = Path(__file__).resolve().parents[1]
EXAMFLOW = [sys.executable, "-c", "from examflow.cli import main; main()"]  # `examflow`
NAIVE = "2024-04-29T23:30"
ZONES = ("America/New_York", "Asia/Shanghai")


def _prepare(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A home with the calendar, the register and 2 registrations of 2024-1 (P1 and P3)."""
    monkeypatch.setenv("EXAMFLOW_HOME", str(home))
    home.mkdir(parents=True)
    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    schools = write_csv(home / "schools.csv", SCHOOL_HEADER, SCHOOLS)
    assert run("schools", "import", str(schools)).exit_code == 0
    rows = [["P1", "甲", new_id(), "初级", ""], ["P3", "乙", new_id(), "中级", ""]]
    result = run("register", "2024-1", str(reg_file(home, rows)), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    return dict(os.environ)


def _examflow(env: dict[str, str], zone: str, *args: str) -> tuple[int, Any]:
    done = subprocess.run(
        [*EXAMFLOW, *args],
        cwd=ROOT,
        env={**env, "TZ": zone},
        capture_output=True,
        text=True,
        timeout=240,
    )
    text = done.stdout.strip()
    if not text.startswith("{"):  # `run` may log before its one line of JSON
        text = text.splitlines()[-1]
    return done.returncode, json.loads(text)


@pytest.mark.prefect
def test_status_and_a_checkpoint_read_a_naive_as_of_as_shanghai_in_any_machine_zone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: None,
    mail_sink: MailSink,
) -> None:
    from prefect.settings import PREFECT_API_URL

    monkeypatch.delenv("EXAMFLOW_DATABASE_URL", raising=False)
    statuses, runs = {}, {}
    for zone in ZONES:  # each zone on its own database: a run sends its mail once
        env = _prepare(tmp_path / zone.replace("/", "-"), monkeypatch)
        env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        statuses[zone] = _examflow(env, zone, "status", "2024-1", "--as-of", NAIVE, "--json")
        runs[zone] = _examflow(
            env, zone, "run", "2024-1", "registration", "close", "--as-of", NAIVE, "--json"
        )
    code, status = statuses["America/New_York"]
    assert code == 0
    assert status["as_of"] == "2024-04-29T23:30:00+08:00"
    registration = next(s for s in status["stages"] if s["stage"] == "registration")
    assert registration["state"] == "open"
    assert statuses["Asia/Shanghai"] == statuses["America/New_York"]
    code, outcome = runs["America/New_York"]
    assert (code, outcome["state"]) == (0, "Open")
    assert runs["Asia/Shanghai"] == runs["America/New_York"]


@pytest.fixture
def new_york() -> Iterator[None]:
    """This process in New York's zone (what a naive datetime's astimezone() reads)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_fact_recorded_at_a_naive_moment_is_stored_as_that_moment_in_shanghai(
    register_loaded: Path, new_york: None
) -> None:
    with session_scope() as session:
        record_fact(session, "2024-1", "P1", SiteFact.platform_installed, datetime(2024, 5, 2, 9))
    with session_scope() as session:
        (record,) = session.exec(select(SiteFactRecord))
        assert record.recorded_at.replace(tzinfo=UTC) == datetime(2024, 5, 2, 1, tzinfo=UTC)
