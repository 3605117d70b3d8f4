"""Serve a one-off checkpoint schedule (a subprocess of tests/test_server_restart.py)."""

import sys
from datetime import datetime

from deployments.build import one_off
from deployments.plan import PlannedRun
from flows.sitting_checkpoint import sitting_checkpoint
from models.domain import Checkpoint, StageCode

if __name__ == "__main__":
    at = datetime.fromisoformat(sys.argv[1])
    run = PlannedRun(at, StageCode.registration, Checkpoint.close)
    sitting_checkpoint.serve(name="restart-test", schedules=[one_off(run, "2024-1")])
