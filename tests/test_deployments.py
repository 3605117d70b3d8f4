"""Each sitting is a deployment: one scheduled run per checkpoint, at Asia/Shanghai times."""

from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.client.schemas.objects import FlowRun

from deployments.build import sitting_deployment
from deployments.plan import plan_checkpoints
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.sitting_calendar import SittingSpec, parse_calendar
from tests.conftest import CALENDAR

FUTURE_YEAR = datetime.now(UTC).year + 1


def future_2024_3() -> SittingSpec:
    """The notice's third sitting, moved to next year so that every checkpoint is upcoming."""
    text = CALENDAR.read_text(encoding="utf-8").replace("2024-", f"{FUTURE_YEAR}-")
    return parse_calendar(text).sitting(f"{FUTURE_YEAR}-3")


def test_plan_puts_checkpoints_on_the_calendar_dates_in_shanghai_time() -> None:
    spec = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sitting("2024-3")
    runs = {(r.stage, r.checkpoint, r.at) for r in plan_checkpoints(spec)}
    at = lambda *a: datetime(*a, tzinfo=SHANGHAI)  # noqa: E731
    assert (StageCode.platform_install, Checkpoint.open, at(2024, 5, 17, 9)) in runs
    assert (StageCode.platform_install, Checkpoint.remind, at(2024, 6, 6, 9)) in runs  # 3 days
    assert (StageCode.platform_install, Checkpoint.remind, at(2024, 6, 8, 9)) in runs  # 1 day
    assert (StageCode.platform_install, Checkpoint.close, at(2024, 6, 10, 0, 5)) in runs
    assert (StageCode.registration, Checkpoint.remind, at(2024, 5, 28, 9)) in runs  # deadline day
    assert (StageCode.registration, Checkpoint.close, at(2024, 5, 29, 0, 5)) in runs
    assert (StageCode.exam, Checkpoint.open, at(2024, 6, 15, 9)) in runs  # the day before
    assert (StageCode.publicity, Checkpoint.open, at(2024, 6, 27, 9)) in runs
    assert (StageCode.certificates, Checkpoint.close, at(2025, 1, 1, 0, 5)) in runs
    assert len(runs) == len(plan_checkpoints(spec))


def test_remind_offsets_are_configurable() -> None:
    spec = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sitting("2024-3")
    reminders = [r for r in plan_checkpoints(spec, (5,)) if r.checkpoint is Checkpoint.remind]
    training = [r.at.date().isoformat() for r in reminders if r.stage is StageCode.training]
    assert training == []  # 5 days before 06-08 is before the window opens on 06-05
    install = [r.at.date().isoformat() for r in reminders if r.stage is StageCode.platform_install]
    assert install == ["2024-06-04"]


def scheduled_runs(deployment_id: object) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST",
            "/deployments/{id}/schedule",
            path_params={"id": deployment_id},
            json={
                "start_time": datetime.now(UTC).isoformat(),
                "end_time": (datetime.now(UTC) + timedelta(days=800)).isoformat(),
                "min_runs": 0,
                "max_runs": 200,
            },
        )
        response.raise_for_status()
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(),
            limit=200,
        )


@pytest.mark.prefect
def test_deployment_has_one_upcoming_run_per_checkpoint_and_redeploy_does_not_duplicate(
    prefect_server: None,
) -> None:
    spec = future_2024_3()
    deployment = sitting_deployment(spec)
    assert deployment.name == spec.code
    deployment_id = deployment.apply()
    runs = scheduled_runs(deployment_id)
    planned = plan_checkpoints(spec)
    assert len(runs) == len(planned)
    got = sorted(
        (r.expected_start_time, r.parameters["stage"], r.parameters["checkpoint"])
        for r in runs
        if r.expected_start_time
    )
    want = sorted((p.at.astimezone(UTC), p.stage.value, p.checkpoint.value) for p in planned)
    assert got == want
    assert all(r.parameters["sitting"] == spec.code for r in runs)
    assert all(r.state is not None and r.state.is_scheduled() for r in runs)

    # the calendar changes (one reminder only): re-deploying replaces, never duplicates
    changed = sitting_deployment(spec, remind_days=(1,))
    assert changed.apply() == deployment_id
    after = scheduled_runs(deployment_id)
    assert len(after) == len(plan_checkpoints(spec, (1,))) < len(runs)
    assert len({(r.expected_start_time, r.parameters["stage"]) for r in after}) == len(after)


def test_ops_deployments_offer_dropdowns_for_facts_stages_and_checkpoints() -> None:
    from deployments.build import ops_deployments

    record, run_checkpoint = ops_deployments()
    assert (record.name, run_checkpoint.name) == ("record-site-fact", "run-checkpoint")
    schema = record._parameter_openapi_schema.model_dump()
    definitions = schema.get("definitions", {})
    fact = definitions["SiteFact"]
    assert "platform_installed" in fact["enum"] and "rooms_laid_out" in fact["enum"]
    assert set(schema["required"]) == {"sitting", "site", "fact"}
    run_schema = run_checkpoint._parameter_openapi_schema.model_dump()
    assert "publicity" in run_schema["definitions"]["StageCode"]["enum"]
    assert run_schema["definitions"]["Checkpoint"]["enum"] == ["open", "remind", "close"]
    from flows.record_site_fact import record_site_fact

    assert "Retry on the Stalled run" in (record_site_fact.description or "")  # help in the UI


@pytest.mark.prefect
def test_record_site_fact_flow_records_the_fact(
    register_loaded: object, prefect_server: None
) -> None:
    from examflow.db import session_scope
    from flows.record_site_fact import record_site_fact
    from models.facts import SiteFact, facts_by_site

    assert record_site_fact("2024-1", "P1", SiteFact.mock_passed) is True
    assert record_site_fact("2024-1", "P1", SiteFact.mock_passed) is False  # no change
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P1": {SiteFact.mock_passed}}


def test_every_stage_has_a_condition_a_flow_and_scheduled_checkpoints() -> None:
    from flows.sitting_checkpoint import STAGE_FLOWS
    from models.stages import CONDITIONS

    spec = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sitting("2024-1")
    planned = {r.stage for r in plan_checkpoints(spec)}
    assert set(CONDITIONS) == set(STAGE_FLOWS) == planned == set(StageCode)
