"""The ops console in Prefect: the sitting's overview table, a fan-out's progress, the events
that may clear a stall, and the automation and concurrency limit that serve and deploy make;
on a real Prefect test server."""

import json
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    ArtifactFilterType,
    DeploymentFilter,
    DeploymentFilterName,
)
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.client.schemas.sorting import ArtifactSort
from prefect.server.events.schemas.automations import EventTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.settings import PREFECT_API_URL

from deployments.build import rerun_stalled_trigger
from examflow.db import session_scope
from flows.sitting_checkpoint import sitting_checkpoint
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.facts import SiteFact, facts_by_site
from notifications.sink import MailSink
from tests.cli import run
from tests.conftest import CALENDAR
from tests.helpers import OPEN, new_id, reg_file

pytestmark = pytest.mark.prefect

CLOSE = datetime(2024, 5, 13, 0, 5, tzinfo=SHANGHAI)
IN_WINDOW = datetime(2024, 5, 6, 9, 0, tzinfo=SHANGHAI)
RERUN = "examflow: re-run a Stalled stage when its cause may be fixed"


@pytest.fixture
def api_url(prefect_server: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test server's API, also in the environment (as a shell run by ops sees it)."""
    url = str(PREFECT_API_URL.value())
    monkeypatch.setenv("PREFECT_API_URL", url)
    return url


@pytest.fixture
def stalled_install(register_loaded: Path, api_url: str, mail_sink: MailSink) -> Path:
    """2024-1: sites P1 (2 candidates) and P3 (3); P3 installed with its mock exam passed, P1
    installed without a mock exam. The platform_install close at 05-13 00:05 stalls."""
    rows = [["P1", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    rows += [["P3", f"乙{i}", new_id(), "中级", ""] for i in range(3)]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0
    for site, fact in [
        ("P3", "platform_installed"),
        ("P3", "mock_passed"),
        ("P1", "platform_installed"),
    ]:
        assert run("mark", "2024-1", site, fact, "--as-of", "2024-05-02").exit_code == 0
    return register_loaded


def latest_artifact(key: str) -> Any:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key}"
    return found[0]


def overview_rows() -> dict[str, dict[str, str]]:
    artifact = latest_artifact("2024-1-overview")
    assert artifact.type == "table"
    return {row["stage"]: row for row in json.loads(str(artifact.data))}


def events_named(
    api: str, name: str, what: str, since: datetime, expected: int
) -> list[dict[str, Any]]:
    """Events ``name`` about ``what`` (a fact, an importer kind) since ``since``. The server
    keeps events a moment after receiving them: poll until ``expected`` are there."""
    deadline = time.monotonic() + 20
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{api}/events/filter",
            json={
                "filter": {
                    "event": {"name": [name]},
                    "resource": {"id_prefix": ["examflow."]},
                    "occurred": {"since": since.isoformat()},
                }
            },
            timeout=10,
        )
        response.raise_for_status()
        found = [e for e in response.json()["events"] if e["resource"]["examflow.what"] == what]
        if len(found) >= expected:
            return found
        time.sleep(0.5)
    return found


def test_the_overview_shows_every_stage_and_an_ops_fact_refreshes_it_and_emits_an_event(
    stalled_install: Path, api_url: str
) -> None:
    state = sitting_checkpoint(
        "2024-1", StageCode.platform_install, Checkpoint.close, CLOSE, return_state=True
    )
    assert state.name == "Stalled"
    rows = overview_rows()
    assert list(rows) == [
        "registration",
        "training",
        "platform_install",
        "materials",
        "exam",
        "publicity",
        "certificates",
    ]
    install = rows["platform_install"]
    assert install["window"] == "2024-04-18 → 2024-05-12 23:59"  # the notice's
    assert install["state"] == "stalled"
    assert install["still owing"] == "1 sites"  # P1's mock exam
    assert install["last run"] == "close: Stalled"
    assert install["last run as of"] == "2024-05-13 00:05"
    assert install["details"] == "artifact 2024-1-platform-install"
    assert rows["registration"]["state"] == "complete"
    assert rows["registration"]["last run"] == "—"  # no run of it yet
    assert rows["training"]["state"] == "stalled"
    assert rows["training"]["still owing"] == "2 sites + organiser (1)"  # and rooms
    assert rows["exam"]["state"] == "upcoming"

    # ops record the missing fact at the command line: the overview follows, and an event
    # says the stage (whose last run ended Stalled) may be complete now
    since = datetime.now(UTC)
    marked = run("mark", "2024-1", "P1", "mock_passed", "--as-of", "2024-05-13T09:00")
    assert marked.exit_code == 0, marked.output
    rows = overview_rows()
    assert rows["platform_install"]["state"] == "complete"
    assert rows["platform_install"]["still owing"] == "0"
    assert rows["platform_install"]["last run"] == "close: Stalled"  # no run since
    (event,) = events_named(api_url, "examflow.fact.recorded", "mock_passed", since, 1)
    assert event["resource"]["prefect.resource.id"] == "examflow.sitting.2024-1"
    assert event["resource"]["examflow.party"] == "P1"
    assert event["resource"]["examflow.what"] == "mock_passed"
    (stage,) = event["related"]
    assert stage["prefect.resource.id"] == "examflow.stage.2024-1.platform_install"
    assert stage["prefect.resource.role"] == "stage"
    assert stage["examflow.last-checkpoint-state"] == "Stalled"
    assert not re.search(r"\d{17}[\dX]", json.dumps(event))  # no ID number


def test_a_school_action_emits_school_acted_with_the_stage_and_the_sitting_as_related_resources(
    stalled_install: Path, api_url: str, mail_sink: MailSink
) -> None:
    from tests.test_portal_security import ask_for_link, csrf_of, mailed_tokens, portal_at, sign_in

    since = datetime.now(UTC)
    with portal_at("2024-05-06T09:00:00") as portal:  # P1's platform_install window
        assert ask_for_link(portal, "P1", "a@p1.edu.cn") == 200
        assert sign_in(portal, mailed_tokens(mail_sink)[-1]) == 303
        csrf = csrf_of(portal.get("/schools/P1/sittings/2024-1").text)
        done = portal.post(
            "/schools/P1/sittings/2024-1/facts", data={"fact": "mock_passed", "csrf": csrf}
        )
        assert done.status_code == 200

    (event,) = events_named(api_url, "examflow.school.acted", "fact:mock_passed", since, 1)
    # the main resource, which the re-run automation matches, is the sitting as before
    assert event["resource"]["prefect.resource.id"] == "examflow.sitting.2024-1"
    assert event["resource"]["examflow.sitting"] == "2024-1"
    assert event["resource"]["examflow.party"] == "P1"
    stage, sitting = event["related"]
    assert (stage["prefect.resource.role"], stage["prefect.resource.id"]) == (
        "stage",
        "examflow.stage.2024-1.platform_install",
    )
    assert stage["examflow.last-checkpoint-state"] == "none"
    assert (sitting["prefect.resource.role"], sitting["prefect.resource.id"]) == (
        "sitting",
        "examflow.sitting.2024-1",
    )
    assert "a@p1.edu.cn" not in json.dumps(event)
    assert not re.search(r"\d{17}[\dX]", json.dumps(event))  # no ID number
    # the re-run automation's trigger, as Prefect's server judges it, still takes the event
    # when the stage's last checkpoint ended Stalled, and only then
    spec = rerun_stalled_trigger(timedelta(seconds=30)).model_dump(
        include={"expect", "match", "match_related", "for_each", "posture", "within"}
    )
    trigger = EventTrigger.model_validate(spec)
    assert not trigger.covers(ReceivedEvent.model_validate(event))
    stage["examflow.last-checkpoint-state"] = "Stalled"
    assert trigger.covers(ReceivedEvent.model_validate(event))


def test_an_imported_file_emits_one_event_per_stage_it_may_complete(
    stalled_install: Path, api_url: str
) -> None:
    facts = stalled_install / "facts.csv"
    facts.write_text("考点代码,事项\nP1,mock_passed\n", encoding="utf-8")
    since = datetime.now(UTC)
    assert run("mark", "2024-1", "--file", str(facts)).exit_code == 0
    found = events_named(api_url, "examflow.file.imported", "facts", since, 3)
    stages = sorted(e["related"][0]["examflow.stage"] for e in found)
    assert stages == ["materials", "platform_install", "training"]
    assert {e["related"][0]["examflow.last-checkpoint-state"] for e in found} == {"none"}


def test_a_long_fan_out_shows_its_delivery_in_a_progress_artifact(
    stalled_install: Path, api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tasks.checkpoint_tasks.PROGRESS_CHUNK", 1)  # two chunks of one
    state = sitting_checkpoint(
        "2024-1", StageCode.platform_install, Checkpoint.open, IN_WINDOW, return_state=True
    )
    result = state.result(raise_on_failure=False)
    assert (result.queued, result.sent) == (2, 2)  # the window opens for P1 and P3
    with get_client(sync_client=True) as client:
        (progress,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert progress.data == 100.0
    assert progress.description == "delivery: 2 sent / 2 queued (0 failed, 0 pending)"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nobody listens on it once the socket is closed


def test_a_fact_is_recorded_when_prefect_cannot_be_reached(
    register_loaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [["P1", "甲", new_id(), "初级", ""]]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{closed_port()}/api")
    started = time.monotonic()
    marked = run("mark", "2024-1", "P1", "mock_passed", "--as-of", "2024-05-07")
    assert marked.exit_code == 0, marked.output
    assert time.monotonic() - started < 5
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P1": {SiteFact.mock_passed}}


def rerun_automations() -> list[Any]:
    with get_client(sync_client=True) as client:
        return [a for a in client.read_automations() if a.name == RERUN]


def test_deploy_creates_the_rerun_automation_once_and_limits_each_sitting_to_one_run(
    register_loaded: Path, api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMFLOW_RERUN_DEBOUNCE_SECONDS", "120")
    for _ in range(2):
        deployed = run("deploy", str(CALENDAR), "--work-pool", "examflow-ops-console")
        assert deployed.exit_code == 0, deployed.output
    (automation,) = rerun_automations()
    with get_client(sync_client=True) as client:
        (run_checkpoint,) = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["run-checkpoint"]))
        )
        sitting = client.read_deployment_by_name("sitting-checkpoint/2024-1")
    trigger = automation.trigger
    assert trigger.within.total_seconds() == 120
    assert trigger.for_each == {"related:stage:prefect.resource.id"}
    assert "examflow.fact.recorded" in trigger.expect
    (action,) = automation.actions
    assert action.type == "run-deployment"
    assert action.deployment_id == run_checkpoint.id
    assert action.parameters["checkpoint"] == "close"
    assert sitting.global_concurrency_limit is not None
    assert sitting.global_concurrency_limit.limit == 1
    assert sitting.concurrency_options is not None
    assert sitting.concurrency_options.collision_strategy is ConcurrencyLimitStrategy.ENQUEUE
    assert "2024-1-overview" in (sitting.description or "")
    with get_client(sync_client=True) as client:
        client.delete_automation(automation.id)  # the session's server is shared


def test_the_record_site_fact_flow_emits_the_event_from_inside_its_run(
    stalled_install: Path, api_url: str
) -> None:
    from flows.record_site_fact import record_site_fact

    since = datetime.now(UTC)
    assert record_site_fact("2024-1", "P3", SiteFact.rooms_laid_out) is True
    (event,) = events_named(api_url, "examflow.fact.recorded", "rooms_laid_out", since, 1)
    assert event["resource"]["examflow.party"] == "P3"
    assert event["related"][0]["prefect.resource.id"] == "examflow.stage.2024-1.materials"
