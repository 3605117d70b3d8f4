"""The Prefect server restarted while a deployment is served: a checkpoint that fell due while
it was down runs when it is back, late, once."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from examflow.cli.local_stack import prefect_server, server_pid_file
from models.domain import SHANGHAI
from tests.cli import run
from tests.conftest import CALENDAR
from tests.prefect_api import prefect_api

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def flow_runs(api: str) -> list[dict[str, Any]]:
    runs = prefect_api("POST", f"{api}/flow_runs/filter", json={"limit": 50})
    return [r for r in runs if r.get("deployment_id")]


def state_names(api: str, run_id: str) -> list[str]:
    states = prefect_api("GET", f"{api}/flow_run_states/", params={"flow_run_id": run_id})
    return [s["name"] for s in states]


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_checkpoint_due_while_the_server_was_down_runs_late_once(
    home: Path, tmp_path: Path
) -> None:
    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "1",
        # the runner polls far less often than the server notices late runs, so that the
        # restarted server marks the run Late before the runner claims it
        "PREFECT_RUNNER_POLL_FREQUENCY": "60",
        "EXAMFLOW_HOME": str(home),
    }
    log = tmp_path / "server.log"
    # far enough ahead that a slow machine has served the deployment well before it falls due
    due = datetime.now(SHANGHAI).replace(microsecond=0) + timedelta(seconds=60)
    with prefect_server(port, env, log):
        serve = subprocess.Popen(
            [sys.executable, "-m", "tests.serve_one_off", due.isoformat()],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            scheduled = wait_for(lambda: flow_runs(api), 50, "the scheduled run")
            assert len(scheduled) == 1 and scheduled[0]["state_type"] == "SCHEDULED"
            # the server's process group is noted while it runs (to stop it by hand should
            # examflow be killed outright)
            os.killpg(int(server_pid_file(log).read_text()), 0)
        except BaseException:
            serve.kill()
            raise
    assert not server_pid_file(log).exists()
    try:  # the server is down while the checkpoint falls due
        time.sleep(max(0.0, (due - datetime.now(SHANGHAI)).total_seconds()) + 5)
        back_at = datetime.now(SHANGHAI)
        with prefect_server(port, env, log):
            finished = wait_for(
                lambda: [r for r in flow_runs(api) if r["state_type"] in ("COMPLETED", "FAILED")],
                120,
                "the late run to finish",
            )
            runs = flow_runs(api)
            names = state_names(api, finished[0]["id"])
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
    assert len(runs) == 1  # once
    late_run = finished[0]
    # Whether the server's late-runs service marks it Late before the runner claims it is a
    # race between the two (CI once lost it), so what is checked is what the label means: the
    # run was due at the checkpoint and started only once the server was back.
    assert datetime.fromisoformat(late_run["expected_start_time"]) == due
    assert datetime.fromisoformat(late_run["start_time"]) > back_at, names
    assert late_run["state_name"] == "StageComplete"
