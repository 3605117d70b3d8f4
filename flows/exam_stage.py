"""The exam stage flow: one checkpoint of 正式考试, and the day before it, ops' go/no-go.

Why ``pause_flow_run`` and not ``suspend_flow_run`` (Prefect 3.9.1): the exam stage runs as
a subflow of the sitting's deployment run, and the server refuses to suspend a subflow or a
run without a deployment (``examflow run``); a suspended run also starts again from the top
on resume, when the sites not ready may have changed, so the form it waits for would no
longer be the one it showed. A pause keeps this process waiting instead (it polls the API),
needs neither a deployment nor a result store, and lets the run itself end the wait on time:
once a pause's own timeout has passed the server fails the run whatever it proposes, so the
run resumes itself (``resume_flow_run`` with an empty decision) at its deadline, shortly
before that timeout, and goes on with what was decided.
"""

import re
import threading
import time
from contextvars import copy_context
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger, runtime
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model

from flows.stage_run import flow_moment, run_stage
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode
from models.go_no_go import GoNoGo
from tasks.go_no_go_tasks import (
    Choice,
    SiteToDecide,
    decided_since,
    latest_decision_id,
    mail_decisions,
    publish_decisions,
    record_choices,
    sites_to_decide,
)

DECISION_TIMEOUT = 6 * 3600
"""How long a live exam ``open`` run (09:00 the day before) waits for ops' go/no-go: 15:00."""
REPLAY_DECISION_TIMEOUT = 0
"""How long a run at a given ``as_of`` (a rehearsal such as ``examflow demo``, a replay) waits
by default: nobody is there to decide, so it does not pause."""
WATCHER_BY = "examflow (no form submitted)"  # the watcher's resume input: nothing decided
UNDECIDED = "undecided"


@flow(name="exam", flow_run_name="{sitting} · exam · {checkpoint}")
def exam_stage(
    sitting: str,
    checkpoint: Checkpoint,
    as_of: datetime | None = None,
    decision_timeout: int | None = None,
) -> State[CheckpointResult]:
    """Exam day (正式考试).

    Complete when every active site was ready (training, platform and mock exam, materials,
    rooms laid out: facts recorded before the first slot) and attendance is recorded.
    `close` stalls otherwise and mails ops the list of sites and what they lacked.

    `open` (the day before) mails ops the go/no-go table, then, if a site is not ready,
    **pauses for ops' decision**: Resume shows a form with each such site, go (readiness
    waived, with a reason) or hold (the site does not open; its candidates are listed for
    re-seating), a note and who decides. After `decision_timeout` seconds (default: until
    15:00 for a scheduled run; no pause at all for a run given `as_of`, a rehearsal) it goes
    on with what was decided (nothing decided: no waiver) and says so. `examflow go-no-go` records
    the same decisions without the UI; the run notices them and goes on.
    """
    moment = flow_moment(as_of)
    final = run_stage(StageCode.exam, sitting, checkpoint, moment)
    if checkpoint is not Checkpoint.open:
        return final
    if decision_timeout is None:
        decision_timeout = DECISION_TIMEOUT if as_of is None else REPLAY_DECISION_TIMEOUT
    said = go_no_go(sitting, moment, decision_timeout)
    return State(
        type=final.type,
        name=final.name,
        message=f"{final.message}; {said}" if final.message else said,
        data=final.result(raise_on_failure=False),
    )


def go_no_go(sitting: str, as_of: datetime, timeout: int) -> str:
    """Ask ops about every site not ready and not yet decided; record, mail and show what
    they decided. Returns what happened, for the run's final state."""
    sites = sites_to_decide(sitting, as_of)
    if not sites:
        return "go/no-go: no site to decide on"
    if timeout <= 0:
        listed = ", ".join(s.code for s in sites)
        return f"go/no-go not asked (a run at a given moment): {listed} not ready, no waiver"
    logger = get_run_logger()
    codes = [s.code for s in sites]
    logger.info("go/no-go: waiting up to %s s for ops on %s", timeout, ", ".join(codes))
    form = decision_form(sitting, sites)
    watcher = Deadline(sitting, codes, timeout)
    started = time.monotonic()
    answer: Any = None
    with watcher:
        try:
            answer = pause_flow_run(
                wait_for_input=form,
                timeout=timeout + watcher.grace,
                poll_interval=watcher.poll,
                key=f"go-no-go-{runtime.flow_run.run_count}",
            )
        except FlowPauseTimeout:  # the watcher could not resume the run (API unreachable)
            answer = None
    decided_at = as_of + timedelta(seconds=time.monotonic() - started)
    recorded_ids: list[int] = []
    refused: list[str] = []
    if answer is not None and watcher.why is None:  # ops submitted the form
        choices = choices_from(answer, sites)
        if choices:
            recorded = record_choices(
                sitting, choices, answer.decided_by, answer.note, decided_at, "prefect-ui"
            )
            recorded_ids, refused = recorded.ids, recorded.refused
            mail_decisions(sitting, recorded_ids, decided_at)
    publish_decisions(sitting, decided_at)
    return describe_outcome(sitting, sites, watcher, refused, timeout, decided_at)


def describe_outcome(
    sitting: str,
    sites: list[SiteToDecide],
    watcher: "Deadline",
    refused: list[str],
    timeout: int,
    as_of: datetime,
) -> str:
    from examflow.db import session_scope
    from models.go_no_go import decisions_at

    with session_scope() as session:
        decided = decisions_at(session, sitting, as_of)
    parts = []
    for s in sites:
        d = decided.get(s.code)
        if d is None:
            parts.append(f"{s.code} undecided (not ready, no waiver)")
        elif d.choice is GoNoGo.go:
            parts.append(f"{s.code} go (waived by {d.decided_by})")
        else:
            parts.append(
                f"{s.code} hold by {d.decided_by} ({s.candidates} candidate(s) to re-seat)"
            )
    head = "go/no-go"
    if watcher.why == "timeout":
        head += f" timed out after {timeout} s, proceeding with what was decided"
    elif watcher.why == "decided":
        head += " decided on the command line"
    said = f"{head}: " + ", ".join(parts)
    if refused:
        said += "; not recorded: " + "; ".join(refused)
    return said


def _field_name(code: str) -> str:
    return "site_" + re.sub(r"\W", "_", code)


def decision_form(sitting: str, sites: list[SiteToDecide]) -> type[RunInput]:
    """The Resume form: per site a choice (go / hold / undecided) and a reason; a note, and
    who decides. Its description (shown above the form) lists what each site lacks."""
    fields: dict[str, Any] = {}
    for s in sites:
        name = _field_name(s.code)
        fields[f"{name}_choice"] = (
            Literal["undecided", "go", "hold"],
            Field(
                default=UNDECIDED,
                title=f"{s.code} {s.name}",
                description=(
                    f"go: 豁免就绪要求，照常开考 · hold: 不开考，{s.candidates} 名考生待改派"
                    f" · 缺：{'、'.join(s.lacks)}"
                ),
            ),
        )
        fields[f"{name}_reason"] = (
            str,
            Field(default="", title=f"{s.code} 理由 (reason)", description="go 必填"),
        )
    fields["note"] = (str, Field(default="", title="备注 (note)"))
    fields["decided_by"] = (
        str,
        Field(min_length=1, title="决定人 (who decides)", description="your name"),
    )
    form: type[RunInput] = create_model("GoNoGoForm", __base__=RunInput, **fields)
    lines = [
        f"**{sitting} go/no-go**: {len(sites)} site(s) not ready the day before the exam.",
        "",
        # one line each: the UI's markdown breaks lines where the text does
        "Choose per site **go** (readiness waived; give a reason) or **hold** (the site "
        "does not open; its candidates are listed for re-seating or a later sitting).",
        "",
        "Undecided sites get no waiver.",
        "",
        "| site | name | lacks | candidates |",
        "|---|---|---|---|",
        *(f"| {s.code} | {s.name} | {'、'.join(s.lacks)} | {s.candidates} |" for s in sites),
    ]
    form._description = "\n".join(lines)
    return form


def choices_from(answer: Any, sites: list[SiteToDecide]) -> list[Choice]:
    choices = []
    for s in sites:
        name = _field_name(s.code)
        value = getattr(answer, f"{name}_choice", UNDECIDED)
        if value != UNDECIDED:
            reason = str(getattr(answer, f"{name}_reason", ""))
            choices.append(Choice(site=s.code, choice=GoNoGo(value), reason=reason))
    return choices


class Deadline:
    """While the run is paused: resume it at the deadline with no decision, or as soon as
    every site asked about was decided elsewhere (``examflow go-no-go``). ``why`` says
    which ("timeout", "decided"), or None when ops resumed it through the form."""

    def __init__(self, sitting: str, sites: list[str], timeout: int) -> None:
        self.sitting, self.sites, self.timeout = sitting, set(sites), timeout
        self.poll = max(1, min(10, timeout // 30))
        self.grace = 3 * self.poll + 30  # the pause's own timeout: after the deadline
        self.why: str | None = None
        self.flow_run_id = UUID(str(runtime.flow_run.id))
        self._stop = threading.Event()
        self._since = latest_decision_id(sitting)
        context = copy_context()  # the Prefect settings (API URL) of this run
        self._thread = threading.Thread(target=context.run, args=(self._watch,), daemon=True)

    def __enter__(self) -> "Deadline":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        end = time.monotonic() + self.timeout
        while not self._stop.wait(self.poll):
            if self.sites <= decided_since(self.sitting, self._since):
                why = "decided"
            elif time.monotonic() >= end:
                why = "timeout"
            else:
                continue
            if self._resume(why):
                return

    def _resume(self, why: str) -> bool:
        """Resume the paused run with an empty decision; False if it is not paused (yet)."""
        try:
            resume_flow_run(self.flow_run_id, run_input={"decided_by": WATCHER_BY})
        except Exception:  # not paused yet, or ops resumed it this very moment
            return self._stop.is_set()
        self.why = why  # read by the run only after this thread has ended (__exit__)
        return True
