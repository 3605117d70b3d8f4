"""Stalls that clear themselves, on a real `prefect server start` with `examflow serve`
running: a fact recorded by ops re-runs the Stalled stage through the automation (once per
debounce period), a sitting deployment runs one run at a time (the second waits), and a
second `serve` does not duplicate the automation."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from examflow.cli.local_stack import prefect_server
from notifications.sink import MailSink
from tests.cli import run
from tests.conftest import CALENDAR
from tests.helpers import OPEN, new_id, reg_file
from tests.prefect_api import prefect_api

pytestmark = pytest.mark.slow

EXAMFLOW = [sys.executable, "-c", "from examflow.cli import main; main()"]
RERUN = "examflow: re-run a Stalled stage when its cause may be fixed"
DEBOUNCE_S = 8
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
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


def api_post(api_url: str, path: str, body: object) -> Any:
    return prefect_api("POST", f"{api_url}{path}", json=body)


def rerun_automations(api: str) -> list[dict[str, Any]]:
    return [a for a in api_post(api, "/automations/filter", {}) if a["name"] == RERUN]


def deployment_id(api_url: str, name: str) -> str:
    return str(prefect_api("GET", f"{api_url}/deployments/name/{name}")["id"])


def runs_of(api: str, deployment: str) -> list[dict[str, Any]]:
    body = {"deployments": {"id": {"any_": [deployment]}}, "limit": 50}
    return list(api_post(api, "/flow_runs/filter", body))


def state_names(api_url: str, run_id: str) -> list[str]:
    states = prefect_api("GET", f"{api_url}/flow_run_states/", params={"flow_run_id": run_id})
    return [s["name"] for s in states]


@contextmanager
def serving(env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        serve = subprocess.Popen(
            [*EXAMFLOW, "serve", str(CALENDAR)], env=env, cwd=cwd, stdout=out, stderr=out
        )
    try:
        yield serve
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def test_a_recorded_fact_reruns_the_stalled_stage_once_and_serve_keeps_one_automation(
    register_loaded: Path, home: Path, tmp_path: Path, mail_sink: MailSink
) -> None:
    # 2024-1: P1 and P3 active; P1 lacks its mock exam, so platform_install's close stalls
    rows = [["P1", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    rows += [["P3", f"乙{i}", new_id(), "中级", ""] for i in range(3)]
    assert run("register", "2024-1", str(reg_file(tmp_path, rows)), "--as-of", OPEN).exit_code == 0
    for site, fact in [
        ("P3", "platform_installed"),
        ("P3", "mock_passed"),
        ("P1", "platform_installed"),
    ]:
        assert run("mark", "2024-1", site, fact, "--as-of", "2024-05-02").exit_code == 0

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "EXAMFLOW_HOME": str(home),
        "EXAMFLOW_RERUN_DEBOUNCE_SECONDS": str(DEBOUNCE_S),
    }
    log = tmp_path / "serve.log"
    with prefect_server(port, env, tmp_path / "server.log"):
        with serving(env, tmp_path, log):
            (first,) = wait_for(lambda: rerun_automations(api), 180, "serve's automation")
            run_checkpoint = deployment_id(api, "sitting-checkpoint/run-checkpoint")
            stalled = subprocess.run(
                [
                    *EXAMFLOW,
                    "run",
                    "2024-1",
                    "platform_install",
                    "close",
                    "--as-of",
                    "2024-05-13T00:05",
                ],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert stalled.returncode == 1 and "Stalled" in stalled.stdout, stalled.stdout

            # ops record the missing fact (then withdraw and record it again: three events)
            os.environ["PREFECT_API_URL"] = api  # removed below: the shell's environment
            try:
                fixed_at = datetime.now(UTC)
                assert run("mark", "2024-1", "P1", "mock_passed").exit_code == 0
                assert run("mark", "2024-1", "P1", "mock_passed", "--undo").exit_code == 0
                assert run("mark", "2024-1", "P1", "mock_passed").exit_code == 0
            finally:
                del os.environ["PREFECT_API_URL"]
            final = wait_for(
                lambda: [
                    r
                    for r in runs_of(api, run_checkpoint)
                    if r["state_type"] in ("COMPLETED", "FAILED")
                ],
                DEBOUNCE_S + 90,
                "the automation's run of run-checkpoint",
            )
            time.sleep(DEBOUNCE_S + 4)  # the two later events fire nothing more
            reruns = runs_of(api, run_checkpoint)
            latest = prefect_api("GET", f"{api}/artifacts/2024-1-overview/latest")
            overview = {r["stage"]: r for r in json.loads(latest["data"])}

            # one sitting deployment, two runs at once: the second waits for the first
            sitting = deployment_id(api, "sitting-checkpoint/2024-1")
            params = {
                "stage": "training",
                "checkpoint": "remind",
                "as_of": "2024-05-03T09:00:00+08:00",
            }
            for _ in range(2):
                api_post(api, f"/deployments/{sitting}/create_flow_run", {"parameters": params})
            both = wait_for(
                lambda: (
                    lambda rs: rs if len(rs) == 2 and all(r["end_time"] for r in rs) else None
                )(runs_of(api, sitting)),
                120,
                "both runs of 2024-1",
            )
            waited = [state_names(api, r["id"]) for r in both]

        # a second serve (a restart) replaces the automation, never adds one
        with serving(env, tmp_path, log):
            (again,) = wait_for(
                lambda: [a for a in rerun_automations(api) if a["id"] != first["id"]],
                180,
                "the second serve's automation",
            )
            time.sleep(3)
            assert len(rerun_automations(api)) == 1

    (rerun,) = reruns  # once, although three events came within the debounce period
    assert final[0]["id"] == rerun["id"]
    assert rerun["state_name"] == "StageComplete"
    assert rerun["parameters"] == {
        "sitting": "2024-1",
        "stage": "platform_install",
        "checkpoint": "close",
    }
    assert rerun["created_by"]["type"] == "AUTOMATION"
    started = datetime.fromisoformat(rerun["start_time"])
    assert (started - fixed_at).total_seconds() >= DEBOUNCE_S - 1  # at the window's end
    assert (started - fixed_at).total_seconds() < DEBOUNCE_S + 60
    assert overview["platform_install"]["last run"] == "close: StageComplete"

    first_run, second_run = sorted(both, key=lambda r: r["start_time"])
    assert all(r["state_type"] == "COMPLETED" for r in both)  # neither dropped
    assert second_run["start_time"] >= first_run["end_time"]  # one at a time
    assert any("AwaitingConcurrencySlot" in names for names in waited)
    assert again["trigger"]["within"] == DEBOUNCE_S
