"""`examflow run` started several times at the same moment on a fresh machine: every run works.

Without PREFECT_API_URL each `examflow run` starts Prefect's ephemeral server, which migrates
its database on start; on a fresh PREFECT_HOME two of them raced in alembic and one died with
"Online migration expected to match one row". The processes here share nothing but the
fresh home directory, exactly as two ops' terminals on one machine would.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMFLOW = [sys.executable, "-c", "from examflow.cli import main; main()"]
RUNS = 2  # what two ops terminals do; each more is one more server starting on 2 cores
TIMEOUT_S = 300


def _fresh_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "EXAMFLOW_")) or k == "PREFECT_SERVER_ANALYTICS_ENABLED"
    }
    env.update(EXAMFLOW_HOME=str(home), DO_NOT_TRACK="1")
    return env


def test_runs_started_together_on_a_fresh_prefect_home_all_finish(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = _fresh_env(home)
    load = subprocess.run(
        [*EXAMFLOW, "calendar", "load", str(ROOT / "calendars" / "2024-h1.toml")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert load.returncode == 0, load.stderr
    assert not (home / "prefect").exists()  # nothing of Prefect's yet: a fresh machine

    command = [*EXAMFLOW, "run", "2024-1", "registration", "open", "--as-of", "2024-01-10"]
    processes = [
        subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(RUNS)
    ]
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
            outputs.append((process.returncode, stdout.decode(), stderr.decode()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    for returncode, stdout, stderr in outputs:
        assert "Online migration" not in stderr
        assert returncode == 0, stderr[-2000:]
        assert stdout.startswith("2024-1 · registration · open: Upcoming — sent 0")
