"""Stage checkpoints as Prefect flow runs on a real test server, mailing a real SMTP server."""

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from sqlmodel import func, select

from examflow.db import session_scope
from flows.record_site_fact import record_site_fact
from flows.sitting_checkpoint import sitting_checkpoint
from models.arrangement import SeatAssignment
from models.checkpoints import CheckpointResult
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.facts import SiteFact, SiteFactRecord
from notifications.sink import MailSink
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.mailbox import received, text_of

pytestmark = pytest.mark.prefect

REMIND = datetime(2024, 5, 9, 9, 0, tzinfo=SHANGHAI)
CLOSE = datetime(2024, 5, 13, 0, 5, tzinfo=SHANGHAI)


@pytest.fixture
def sitting_with_sites(register_loaded: Path, prefect_server: None, mail_sink: MailSink) -> Path:
    """Sites P1 (2 candidates) and P3 (3) are active in 2024-1; P3 is fully installed,
    P1 has its platform installed but no mock exam passed."""
    rows = [["P1", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    rows += [["P3", f"乙{i}", new_id(), "中级", ""] for i in range(3)]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    for site, fact in [
        ("P3", "platform_installed"),
        ("P3", "mock_passed"),
        ("P1", "platform_installed"),
    ]:
        assert run("mark", "2024-1", site, fact, "--as-of", "2024-05-02").exit_code == 0
    return register_loaded


def checkpoint(
    stage: StageCode, point: Checkpoint, as_of: datetime
) -> tuple[str, CheckpointResult, UUID]:
    state = sitting_checkpoint("2024-1", stage, point, as_of, return_state=True)
    result = state.result(raise_on_failure=False)
    assert isinstance(result, CheckpointResult), result
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return state.name or "", result, run_id


def test_reminder_goes_only_to_the_site_missing_something_and_never_twice(
    sitting_with_sites: Path, mail_sink: MailSink
) -> None:
    name, result, _ = checkpoint(StageCode.platform_install, Checkpoint.remind, REMIND)
    assert name == "Open" and result.sent == 1
    (message,) = received(mail_sink.mail_dir)
    assert message["To"] == "t@p1.edu.cn" and message["Cc"] == "a@p1.edu.cn"
    assert "安装考试平台尚未完成" in str(message["Subject"])  # decoded from RFC 2047
    assert "2024年05月12日 24:00" in str(message["Subject"])
    body = text_of(message)
    assert "模考及平台测试已通过" in body and "考试平台已安装" not in body

    name, again, _ = checkpoint(StageCode.platform_install, Checkpoint.remind, REMIND)
    assert name == "Open" and again.sent == 0
    assert len(received(mail_sink.mail_dir)) == 1


def test_close_stalls_lists_the_site_escalates_once_then_completes_after_the_fact(
    sitting_with_sites: Path, mail_sink: MailSink
) -> None:
    name, result, run_id = checkpoint(StageCode.platform_install, Checkpoint.close, CLOSE)
    assert name == "Stalled"
    assert result.missing == ["P1: 模考及平台测试已通过"]
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        assert flow_run.name == "2024-1 · platform_install · close"
        assert flow_run.state is not None and flow_run.state.name == "Stalled"
        assert flow_run.state.is_failed()  # so that the UI's Retry works
        assert flow_run.state.message == "1 of 2 sites: 模考及平台测试已通过 (1)"
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["2024-1-platform-install"])),
            sort=ArtifactSort.CREATED_DESC,  # the newest version first (ids are random uuid4s)
        )
    assert artifacts, "the progress artifact was not published"
    markdown = str(artifacts[0].data)
    assert "| P1 | 一号职业技术学院 | 模考及平台测试已通过 |" in markdown
    assert "P3 |" not in markdown
    (escalation,) = received(mail_sink.mail_dir)
    assert escalation["To"] == "ops@organiser.example.cn"
    assert "Stalled" in str(escalation["Subject"])

    name, again, _ = checkpoint(StageCode.platform_install, Checkpoint.close, CLOSE.replace(hour=8))
    assert name == "Stalled" and again.sent == 0  # once per checkpoint day

    assert run("mark", "2024-1", "P1", "mock_passed", "--as-of", "2024-05-13T09:00").exit_code == 0
    name, fixed, _ = checkpoint(
        StageCode.platform_install, Checkpoint.close, CLOSE.replace(hour=10)
    )
    assert name == "StageComplete" and fixed.missing == [] and fixed.sent == 0
    assert len(received(mail_sink.mail_dir)) == 1


def test_examflow_run_prints_json_with_state_sent_and_missing(
    sitting_with_sites: Path, mail_sink: MailSink
) -> None:
    result = run(
        "run", "2024-1", "platform_install", "close", "--as-of", "2024-05-13T00:05", "--json"
    )
    assert result.exit_code == 1  # Stalled is a Failed-type state
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["state"] == "Stalled" and data["sent"] == 1
    assert data["missing"] == ["P1: 模考及平台测试已通过"]


def test_a_stage_with_no_active_site_left_open_before_registration_closes(
    register_loaded: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    name, result, _ = checkpoint(
        StageCode.platform_install, Checkpoint.open, datetime(2024, 4, 18, 9, tzinfo=SHANGHAI)
    )
    assert name == "Open" and result.sent == 0


def test_registration_open_mails_every_school_with_its_ics(
    register_loaded: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    name, result, _ = checkpoint(
        StageCode.registration, Checkpoint.open, datetime(2024, 2, 21, 9, tzinfo=SHANGHAI)
    )
    assert name == "Open" and result.sent == 5
    by_to = {str(m["To"]): m for m in received(mail_sink.mail_dir)}
    site_ics = next(iter(by_to["a@p1.edu.cn"].iter_attachments())).get_content()
    school_ics = next(iter(by_to["a@n1.edu.cn"].iter_attachments())).get_content()
    text = site_ics.decode() if isinstance(site_ics, bytes) else str(site_ics)
    assert "BEGIN:VCALENDAR" in text and "安装考试平台" in text  # a site gets its own stages
    other = school_ics.decode() if isinstance(school_ics, bytes) else str(school_ics)
    assert "报名截止" in other and "安装考试平台" not in other


def test_undelivered_mail_never_reads_as_done_and_goes_out_after_the_server_recovers(
    sitting_with_sites: Path, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    monkeypatch.setenv("EXAMFLOW_SMTP_PORT", str(dead_port))
    name, result, _ = checkpoint(StageCode.platform_install, Checkpoint.remind, REMIND)
    assert name == "MailPending" and result.sent == 0 and result.pending == 1
    monkeypatch.setenv("EXAMFLOW_SMTP_PORT", str(mail_sink.port))
    name, result, _ = checkpoint(StageCode.platform_install, Checkpoint.remind, REMIND)
    assert name == "Open" and result.sent == 1
    assert len(received(mail_sink.mail_dir)) == 1


def test_smtp_password_can_come_from_a_prefect_secret_block(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    from tasks.smtp import smtp_config

    Secret(value="s3cret-from-block").save("examflow-smtp-password", overwrite=True)
    monkeypatch.setenv("EXAMFLOW_SMTP_PASSWORD_BLOCK", "examflow-smtp-password")
    config = smtp_config()
    assert config.password == "s3cret-from-block"
    assert "s3cret" not in repr(config)  # never in logs through a repr


def test_a_recipient_refused_with_550_is_failed_alone_and_reported_in_the_artifact(
    sitting_with_sites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = {"t@p1.edu.cn", "a@p1.edu.cn"}  # the technical contact and exam affairs in copy
    with MailSink(tmp_path / "refusing", 0, refuse_recipients=refused) as sink:
        monkeypatch.setenv("EXAMFLOW_SMTP_PORT", str(sink.port))
        name, result, _ = checkpoint(StageCode.platform_install, Checkpoint.remind, REMIND)
    assert name == "MailPending" and result.failed == 1 and result.sent == 0
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["2024-1-platform-install"])),
            sort=ArtifactSort.CREATED_DESC,
        )
    markdown = str(artifacts[0].data)
    assert "1 failed" in markdown and "550" in markdown


def test_a_refused_copy_recipient_still_sends_and_is_reported_in_the_artifact(
    sitting_with_sites: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MailSink(tmp_path / "half", 0, refuse_recipients={"a@p1.edu.cn"}) as sink:
        monkeypatch.setenv("EXAMFLOW_SMTP_PORT", str(sink.port))
        name, result, _ = checkpoint(StageCode.platform_install, Checkpoint.remind, REMIND)
        assert len(sink.messages()) == 1  # the technical contact got it
    assert name == "Open" and result.sent == 1
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["2024-1-platform-install"])),
            sort=ArtifactSort.CREATED_DESC,
        )
    assert "some recipients refused (550)" in str(artifacts[0].data)


def seats_given() -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(SeatAssignment)).one()


def test_the_training_close_arranges_the_rooms_and_its_remind_does_not(
    sitting_with_sites: Path, mail_sink: MailSink
) -> None:
    checkpoint(StageCode.training, Checkpoint.remind, datetime(2024, 5, 3, 9, tzinfo=SHANGHAI))
    assert seats_given() == 0
    name, result, _ = checkpoint(
        StageCode.training, Checkpoint.close, datetime(2024, 5, 7, 0, 5, tzinfo=SHANGHAI)
    )
    assert seats_given() == 5  # P1's 2 and P3's 3 candidates
    assert name == "Stalled"  # nobody has recorded a training yet
    assert "organiser: rooms not arranged yet" not in result.missing
    assert "P1: 考务管理人员已参加培训" in result.missing


@pytest.fixture
def new_york() -> Iterator[None]:
    """This process on New York's clock: what a naive datetime's astimezone() reads."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_naive_as_of_in_a_flow_means_shanghai_time_on_a_machine_in_new_york(
    sitting_with_sites: Path, mail_sink: MailSink, new_york: None
) -> None:
    # 23:30 on the registration deadline in Shanghai: still open (in New York's zone the
    # same naive value would be 11:30 the next day in Shanghai, after the close)
    name, _, _ = checkpoint(StageCode.registration, Checkpoint.close, datetime(2024, 4, 29, 23, 30))
    assert name == "Open"
    record_site_fact("2024-1", "P1", SiteFact.mock_passed, as_of=datetime(2024, 5, 2, 9))
    with session_scope() as session:
        record = session.exec(
            select(SiteFactRecord).where(
                SiteFactRecord.site_code == "P1", SiteFactRecord.fact == SiteFact.mock_passed.value
            )
        ).one()
    assert record.recorded_at.replace(tzinfo=UTC) == datetime(2024, 5, 2, 1, tzinfo=UTC)
