"""The exam's go/no-go: the day before the exam the `open` run pauses for ops' decision per
site not ready; decided through the paused run's form (resumed through the Prefect API with
an input) or on the command line, or timed out; recorded with who decided, mailed to the site,
and honoured by the exam stage's condition."""

import json
import threading
import time
from collections.abc import Callable
from contextvars import copy_context
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import ArtifactSort
from prefect.flow_runs import resume_flow_run
from sqlmodel import col, select

from examflow.db import session_scope
from examflow.synthetic import write_csv
from flows.exam_stage import exam_stage
from models.arrangement import SeatAssignment
from models.domain import SHANGHAI, Checkpoint
from models.go_no_go import GoNoGoDecision
from models.portal_access import PortalLink
from notifications.sink import MailSink
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.mailbox import received, text_of

EXAM_OPEN = datetime(2024, 5, 17, 9, 0, tzinfo=SHANGHAI)  # the day before the exam
AFTER_EXAM = "2024-05-19T00:05:00"  # the exam stage's close
READY_FACTS = (
    "affairs_trained",
    "tech_trained",
    "platform_installed",
    "mock_passed",
    "tickets_downloaded",
    "labels_downloaded",
    "door_signs_downloaded",
    "sign_in_sheets_downloaded",
    "rooms_laid_out",
)


@pytest.fixture
def exam_eve(register_loaded: Path, mail_sink: MailSink) -> Path:
    """2024-1, arranged: P1 (2 candidates) lacks its mock exam, P4 (1) has recorded nothing,
    P3 (3) is ready on the eve of the exam."""
    rows = [["P1", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    rows += [["P3", f"乙{i}", new_id(), "中级", ""] for i in range(3)]
    rows += [["P4", "丁0", new_id(), "初级", ""]]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T12:00").exit_code == 0
    for fact in READY_FACTS:
        assert run("mark", "2024-1", "P3", fact, "--as-of", "2024-05-10").exit_code == 0
        if fact != "mock_passed":
            assert run("mark", "2024-1", "P1", fact, "--as-of", "2024-05-10").exit_code == 0
    return register_loaded


def tickets(site: str) -> list[str]:
    with session_scope() as session:
        return sorted(
            session.exec(
                select(SeatAssignment.ticket_number).where(
                    SeatAssignment.site_code == site, col(SeatAssignment.seat) > 0
                )
            )
        )


def decisions() -> list[GoNoGoDecision]:
    with session_scope() as session:
        return list(session.exec(select(GoNoGoDecision).order_by(col(GoNoGoDecision.id))))


def exam_items(as_of: str) -> tuple[str, list[dict[str, Any]]]:
    result = run("status", "2024-1", "--as-of", as_of, "--json")
    assert result.exit_code == 0, result.output
    (exam,) = [s for s in json.loads(result.stdout)["stages"] if s["stage"] == "exam"]
    return exam["state"], exam["items"]


def attendance(tmp_path: Path, present: list[str], absent: list[str] | None = None) -> None:
    rows = [[t, "出席"] for t in present] + [[t, "缺考"] for t in absent or []]
    sheet = write_csv(tmp_path / "attendance.csv", ["准考证号", "出勤"], rows)
    result = run("attendance", "2024-1", str(sheet), "--as-of", "2024-05-18T19:00")
    assert result.exit_code == 0, result.output


def while_paused(act: Callable[[UUID, dict[str, Any]], None]) -> threading.Thread:
    """In a thread (with this test's Prefect settings): wait until the exam's open run is
    paused, then ``act(run id, the form's JSON schema)``."""

    def wait_and_act() -> None:
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        name=FlowRunFilterName(any_=["2024-1 · exam · open"]),
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                        ),
                    )
                )
                if runs and runs[0].state and runs[0].state.state_details.run_input_keyset:
                    keyset = runs[0].state.state_details.run_input_keyset
                    schema = client.read_flow_run_input(runs[0].id, keyset["schema"])
                    act(runs[0].id, json.loads(schema))
                    return
                time.sleep(0.5)
        raise AssertionError("the exam's open run never paused")

    thread = threading.Thread(target=copy_context().run, args=(wait_and_act,))
    thread.start()
    return thread


@pytest.mark.prefect
def test_ops_resume_the_paused_run_with_a_decision_per_site_which_is_recorded_mailed_and_honoured(
    exam_eve: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    seen: dict[str, Any] = {}

    def decide(run_id: UUID, schema: dict[str, Any]) -> None:
        seen.update(schema)
        resume_flow_run(
            run_id,
            run_input={
                "site_P1_choice": "go",
                "site_P1_reason": "模考已通过，记录待补",
                "site_P4_choice": "hold",
                "site_P4_reason": "机房停电",
                "note": "",
                "decided_by": "王运维",
            },
        )

    helper = while_paused(decide)
    state = exam_stage("2024-1", Checkpoint.open, EXAM_OPEN, decision_timeout=60, return_state=True)
    helper.join()

    # the form listed exactly the two sites not ready, each with go / hold / undecided
    fields = seen["properties"]
    assert set(fields) == {
        "site_P1_choice",
        "site_P1_reason",
        "site_P4_choice",
        "site_P4_reason",
        "note",
        "decided_by",
    }
    assert fields["site_P1_choice"]["enum"] == ["undecided", "go", "hold"]
    assert "模考及平台测试已通过" in fields["site_P1_choice"]["description"]
    assert seen["required"] == ["decided_by"]

    assert state.name == "Upcoming" and state.is_completed()  # the exam day is tomorrow
    assert state.message is not None
    assert "P1 go (waived by 王运维)" in state.message
    assert "P4 hold by 王运维" in state.message and "timed out" not in state.message

    recorded = decisions()
    assert [(d.site_code, d.choice, d.decided_by, d.via) for d in recorded] == [
        ("P1", "go", "王运维", "prefect-ui"),
        ("P4", "hold", "王运维", "prefect-ui"),
    ]

    with get_client(sync_client=True) as client:  # shown in the UI: the overview and its own
        overview, table = (
            client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )[0]
            for key in ("2024-1-overview", "2024-1-go-no-go")
        )
    assert "Exam go/no-go: P1 go, P4 hold (artifact 2024-1-go-no-go)." in str(overview.description)
    assert "| P4 | 五号考点学院 | hold (暂不开考) | 机房停电 | 王运维 |" in str(table.data)

    mail = {m["To"]: m for m in received(mail_sink.mail_dir)}
    assert set(mail) == {"ops@organiser.example.cn", "a@p1.edu.cn", "a@p4.edu.cn"}
    go_text, hold_text = text_of(mail["a@p1.edu.cn"]), text_of(mail["a@p4.edu.cn"])
    assert "准予开考" in str(mail["a@p1.edu.cn"]["Subject"]) and "模考已通过，记录待补" in go_text
    assert "决定人：王运维" in go_text
    assert "暂不开考" in str(mail["a@p4.edu.cn"]["Subject"])
    assert tickets("P4")[0] in hold_text and "丁0" in hold_text
    assert mail["a@p4.edu.cn"]["Cc"] == "t@p4.edu.cn"

    # the condition: P1 counts as ready (waived); P4 owes no attendance, the organiser owes
    # its candidate; attendance from the sites that opened completes the stage
    attendance(exam_eve, tickets("P1") + tickets("P3"))
    state_name, items = exam_items(AFTER_EXAM)
    assert items == [
        {
            "party": "organiser",
            "party_kind": "organiser",
            "stage": "exam",
            "item": "held_site",
            "count": 1,
            "detail": {"site": "P4", "tickets": tickets("P4"), "reason": "机房停电"},
        }
    ]
    assert state_name == "stalled"
    attendance(exam_eve, [], absent=tickets("P4"))  # ops record P4's candidate absent
    assert exam_items(AFTER_EXAM)[0] == "complete"

    # a re-run of the same checkpoint asks nothing again and mails nothing again
    again = exam_stage("2024-1", Checkpoint.open, EXAM_OPEN, decision_timeout=60, return_state=True)
    assert again.message is not None and "no site to decide on" in again.message
    assert len(received(mail_sink.mail_dir)) == 3


@pytest.mark.prefect
def test_a_pause_nobody_answers_times_out_and_proceeds_without_a_waiver_saying_so(
    exam_eve: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    started = time.monotonic()
    state = exam_stage("2024-1", Checkpoint.open, EXAM_OPEN, decision_timeout=3, return_state=True)
    assert time.monotonic() - started < 30  # the run's own deadline, not the pause's grace

    assert state.name == "Upcoming" and state.is_completed()
    assert state.message is not None
    assert "go/no-go timed out after 3 s, proceeding with what was decided" in state.message
    assert "P1 undecided (not ready, no waiver)" in state.message
    assert "P4 undecided (not ready, no waiver)" in state.message
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(str(state.state_details.flow_run_id)))
    assert flow_run.state is not None and flow_run.state.message == state.message

    assert decisions() == []
    assert [m["To"] for m in received(mail_sink.mail_dir)] == ["ops@organiser.example.cn"]
    attendance(exam_eve, tickets("P1") + tickets("P3") + tickets("P4"))
    state_name, items = exam_items(AFTER_EXAM)
    assert state_name == "stalled"  # no waiver: P1 and P4 were not ready
    assert {(i["party"], i["item"]) for i in items} >= {
        ("P1", "mock_passed"),
        ("P4", "mock_passed"),
    }


@pytest.mark.prefect
def test_a_decision_on_the_command_line_while_paused_ends_the_wait(
    exam_eve: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    from models.go_no_go import GoNoGo, record_decision
    from models.sittings import get_sitting

    def decide_on_cli(run_id: UUID, schema: dict[str, Any]) -> None:
        with session_scope() as session:  # what `examflow go-no-go` records
            sitting = get_sitting(session, "2024-1")
            for site in ("P1", "P4"):
                record_decision(
                    session,
                    sitting,
                    site,
                    GoNoGo.go,
                    reason="现场核实",
                    decided_by="李",
                    as_of=EXAM_OPEN,
                    via="cli",
                )

    helper = while_paused(decide_on_cli)
    state = exam_stage("2024-1", Checkpoint.open, EXAM_OPEN, decision_timeout=60, return_state=True)
    helper.join()
    assert state.message is not None
    assert "go/no-go decided on the command line: P1 go (waived by 李), P4 go" in state.message


def test_go_no_go_on_the_command_line_records_who_mails_the_site_and_lists_held_candidates(
    exam_eve: Path, mail_sink: MailSink
) -> None:
    held = run(
        "go-no-go", "2024-1", "--site", "P4", "--hold", "--reason", "机房停电",
        "--by", "王运维", "--as-of", "2024-05-17T10:00",
    )  # fmt: skip
    assert held.exit_code == 0, held.output
    assert "2024-1 P4: hold" in held.stdout and "by 王运维" in held.stdout
    assert f"{tickets('P4')[0]}  丁0  初级" in held.stdout
    assert "site P4 told: 1 sent" in held.stdout
    (message,) = received(mail_sink.mail_dir)
    assert message["To"] == "a@p4.edu.cn" and "丁0" in text_of(message)
    assert [(d.site_code, d.choice, d.decided_by, d.via) for d in decisions()] == [
        ("P4", "hold", "王运维", "cli")
    ]

    waived = run(
        "go-no-go", "2024-1", "--site", "P1", "--go", "--reason", "平台已装好",
        "--by", "王运维", "--as-of", "2024-05-17T10:05",
    )  # fmt: skip
    assert waived.exit_code == 0, waived.output
    _, items = exam_items(AFTER_EXAM)
    p1 = [i for i in items if i["party"] == "P1"]
    assert p1 == [  # its facts waived; the waiver noted on what it still owes
        {
            "party": "P1",
            "party_kind": "site",
            "stage": "exam",
            "item": "no_attendance",
            "count": 2,
            "detail": {"waiver": "平台已装好", "waived_by": "王运维"},
        }
    ]
    # before the decision was made, a replay sees no waiver
    _, earlier = exam_items("2024-05-17T10:01")
    assert ("P1", "mock_passed") in {(i["party"], i["item"]) for i in earlier}


def test_the_decision_mail_signs_the_site_in_at_its_sitting_page_s_exam_stage(
    exam_eve: Path, mail_sink: MailSink
) -> None:
    from tests.test_portal_mail_links import LINK, sign_in_at

    decided = run(
        "go-no-go", "2024-1", "--site", "P1", "--go", "--reason", "平台已装好",
        "--by", "王运维", "--as-of", "2024-05-17T10:00",
    )  # fmt: skip
    assert decided.exit_code == 0, decided.output

    (message,) = received(mail_sink.mail_dir)
    text = text_of(message)
    html = message.get_body(("html",))
    assert html is not None
    found = LINK.search(text)
    assert found is not None and "在学校服务平台办理" in text
    token = found.group(1)
    assert f'href="{found.group(0)}"' in str(html.get_content())  # type: ignore[attr-defined]
    with session_scope() as session:
        [link] = session.exec(select(PortalLink)).all()
    assert (link.school_code, link.contact, link.sitting_code, link.stage) == (
        "P1",
        "a@p1.edu.cn",
        "2024-1",
        "exam",
    )
    assert token not in link.token_hash
    # on the exam day and after it, the link opens the site's page at the exam stage
    assert sign_in_at("2024-05-18T16:00:00", token) == (
        303,
        "/schools/P1/sittings/2024-1#stage-exam",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--site", "P2", "--go", "--reason", "x"], "not a site with candidates"),
        (["--site", "P1", "--go", "--reason", " "], "needs a reason"),
        (["--site", "P1", "--go", "--reason", "x", "--as-of", "2024-05-18T08:30"], "too late"),
        (["--site", "P1", "--go", "--hold", "--reason", "x"], "exactly one of --go or --hold"),
    ],
)
def test_go_no_go_refuses_an_inactive_site_no_reason_a_decision_after_the_start_or_both(
    exam_eve: Path, args: list[str], error: str
) -> None:
    if "--as-of" not in args:
        args = [*args, "--as-of", "2024-05-17T10:00"]
    result = run("go-no-go", "2024-1", *args)
    assert result.exit_code != 0 and error in result.output
    assert decisions() == []


@pytest.mark.prefect
def test_the_sitting_deployments_flow_pauses_in_its_exam_subflow_and_ends_with_the_decision(
    exam_eve: Path, prefect_server: None, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import exam_stage as exam_module
    from flows.sitting_checkpoint import sitting_checkpoint
    from models.domain import StageCode

    # a run given as_of (this test's moment) waits as long as a live run would
    monkeypatch.setattr(exam_module, "REPLAY_DECISION_TIMEOUT", 60)

    def decide(run_id: UUID, schema: dict[str, Any]) -> None:
        resume_flow_run(
            run_id,
            run_input={"site_P1_choice": "go", "site_P1_reason": "已核实", "decided_by": "赵"},
        )

    helper = while_paused(decide)
    state = sitting_checkpoint(
        "2024-1", StageCode.exam, Checkpoint.open, EXAM_OPEN, return_state=True
    )
    helper.join()
    assert state.name == "Upcoming" and state.message is not None
    assert "go/no-go: P1 go (waived by 赵), P4 undecided (not ready, no waiver)" in state.message


@pytest.mark.prefect
def test_a_rehearsal_at_a_given_moment_does_not_pause_and_says_nobody_was_asked(
    exam_eve: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    started = time.monotonic()
    state = exam_stage("2024-1", Checkpoint.open, EXAM_OPEN, return_state=True)  # as the demo
    assert time.monotonic() - started < 30
    assert state.message is not None
    assert "go/no-go not asked (a run at a given moment): P1, P4 not ready, no waiver" in (
        state.message
    )
    assert decisions() == []
