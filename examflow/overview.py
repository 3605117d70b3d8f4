"""A sitting at a glance: the table artifact ``<sitting>-overview`` in the Prefect UI.

One row per stage: its window, its state now, how many schools or sites still owe
something, and its last checkpoint run (which, the state it ended in, the moment it judged
and when it ran; kept in the database by the stage flow's last task). The markdown artifact
of each stage (``<sitting>-<stage>``) keeps the details. Checkpoint runs publish it from a
task (tasks.checkpoint_tasks); ops' and schools' actions from the shells through
``publish_overview`` (best effort, like the events: examflow.events).
"""

import logging
import os
from datetime import datetime

from examflow.db import session_scope
from models.checkpoint_runs import OverviewRow, sitting_overview
from models.domain import in_shanghai
from models.go_no_go import decisions_at
from models.sittings import get_sitting

log = logging.getLogger("examflow.overview")
TIME = "%Y-%m-%d %H:%M"


def overview_key(sitting: str) -> str:
    """Artifact keys allow [a-z0-9-] only: '2024-1-overview'."""
    return f"{sitting}-overview".lower().replace("_", "-").replace(" ", "-")


def stage_artifact_key(sitting: str, stage: str) -> str:
    return f"{sitting}-{stage}".lower().replace("_", "-")


def overview_table(sitting: str, rows: list[OverviewRow]) -> list[dict[str, str]]:
    """The table's rows (Asia/Shanghai times; codes and counts only, no personal data)."""
    table: list[dict[str, str]] = []
    for r in rows:
        opens = f"{in_shanghai(r.opens):%Y-%m-%d}" if r.opens else "—"
        owing = f"{r.owing} {r.owing_kind}" if r.owing else "0"
        if r.organiser_owes:
            owing += f" + organiser ({r.organiser_owes})"
        run = r.last_run
        table.append(
            {
                "stage": r.stage.value,
                "window": f"{opens} → {in_shanghai(r.closes):{TIME}}",
                "state": r.state.value,
                "still owing": owing,
                "last run": f"{run.checkpoint.value}: {run.state}" if run else "—",
                "last run as of": f"{in_shanghai(run.as_of):{TIME}}" if run else "—",
                "last run finished": f"{in_shanghai(run.finished_at):{TIME}:%S}" if run else "—",
                "details": f"artifact {stage_artifact_key(sitting, r.stage.value)}",
            }
        )
    return table


def overview_of(sitting: str, as_of: datetime) -> tuple[list[dict[str, str]], str]:
    """The overview's table and description at ``as_of``."""
    with session_scope() as session:
        row = get_sitting(session, sitting)
        rows = sitting_overview(session, row, as_of)
        decided = decisions_at(session, sitting, as_of)
    stalled = [r.stage.value for r in rows if r.state.value == "stalled"]
    go_no_go = (
        " Exam go/no-go: "
        + ", ".join(f"{site} {d.choice.value}" for site, d in sorted(decided.items()))
        + f" (artifact {sitting}-go-no-go)."
        if decided
        else ""
    )
    description = (
        f"{sitting} at a glance as of {in_shanghai(as_of):{TIME}} (Asia/Shanghai): "
        + (f"stalled: {', '.join(stalled)}" if stalled else "nothing stalled")
        + f". Per stage: artifacts {sitting}-<stage>."
        + go_no_go
    )
    return overview_table(sitting, rows), description


def publish_overview(sitting: str, as_of: datetime) -> bool:
    """Refresh the overview from a shell (an ops or school action): one POST to
    ``$PREFECT_API_URL/artifacts/`` with a short timeout; nothing without PREFECT_API_URL.
    Returns whether it was published. Never raises."""
    api_url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not api_url:
        return False
    try:
        import json

        from examflow.events import post_to_prefect

        table, description = overview_of(sitting, as_of)
        post_to_prefect(
            api_url,
            "/artifacts/",
            {
                "key": overview_key(sitting),
                "type": "table",
                "data": json.dumps(table, ensure_ascii=False),
                "description": description,
            },
        )
        return True
    except Exception as exc:
        log.warning("overview of %s not published: %s", sitting, type(exc).__name__)
        return False


def publish_overview_in_run(sitting: str, as_of: datetime) -> bool:
    """Refresh the overview from inside a flow or task run (it is linked to the run).
    Never raises."""
    try:
        from prefect.artifacts import create_table_artifact

        table, description = overview_of(sitting, as_of)
        create_table_artifact(table=table, key=overview_key(sitting), description=description)
        return True
    except Exception as exc:
        log.warning("overview of %s not published: %s", sitting, type(exc).__name__)
        return False
