"""The ops flow that records a site fact from the Prefect UI's Run form."""

from datetime import datetime

from prefect import flow, get_run_logger

from examflow.db import session_scope
from examflow.events import ConditionEvent, emit_condition_changed
from flows.stage_run import flow_moment
from models.checkpoint_runs import FACT_STAGES
from models.facts import SiteFact, record_fact
from models.sittings import get_sitting


@flow(name="record-site-fact", flow_run_name="{sitting} · {site} · {fact}")
def record_site_fact(
    sitting: str, site: str, fact: SiteFact, undo: bool = False, as_of: datetime | None = None
) -> bool:
    """Record (or with `undo`, withdraw) a fact of one exam site for one sitting.

    Facts: affairs_trained, tech_trained (training); platform_installed, mock_passed
    (platform install); tickets_downloaded, labels_downloaded, door_signs_downloaded,
    sign_in_sheets_downloaded, rooms_laid_out (materials). A change emits an event: a stage
    whose last checkpoint ended Stalled is re-run by itself (at most once per stage per
    debounce period); else re-trigger it: Retry on the Stalled run, or run the run-checkpoint
    deployment. Returns whether anything changed.
    """
    moment = flow_moment(as_of)
    with session_scope() as session:
        get_sitting(session, sitting)
        changed = record_fact(session, sitting, site, fact, moment, done=not undo, source="prefect")
    if changed:
        emit_condition_changed(
            ConditionEvent.fact_recorded,
            sitting,
            [FACT_STAGES[fact]],
            party=site,
            what=fact.value,
            as_of=moment,
        )
    get_run_logger().info(
        "%s %s %s: %s",
        sitting,
        site,
        fact.value,
        ("withdrawn" if undo else "recorded") if changed else "no change",
    )
    return changed
