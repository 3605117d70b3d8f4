"""Personal data never leaves the owning school's messages: not in flow parameters, logs,
artifacts, nor examflow's own files under var/ (a full demo of sitting 2024-1 is scanned)."""

import re
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from notifications.sink import MailSink
from tests.mailbox import received, text_of

FULL_ID = re.compile(r"(?<!\d)\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dX](?!\d)")
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def leaks(text: str) -> list[str]:
    return FULL_ID.findall(text) + PHONE.findall(text)


def test_demo_leaves_no_id_number_or_phone_in_prefect_or_var(
    home: Path, prefect_server: None, mail_sink: MailSink
) -> None:
    from examflow.cli.demo import run_demo

    rows = run_demo()
    assert any(r.state == "Stalled" for r in rows) and rows[-1].state == "StageComplete"
    found: list[str] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
        assert len(runs) >= 30
        for run in runs:
            found += leaks(repr(run.parameters)) + leaks(run.name) + leaks(str(run.state))
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
            )
            found += [hit for log in logs for hit in leaks(log.message)]
        artifacts = client.read_artifacts(limit=200)
        assert artifacts
        found += [hit for a in artifacts for hit in leaks(str(a.data)) + leaks(a.description or "")]
    for path in home.rglob("*"):
        if path.is_file() and path.suffix in {".log", ".txt", ".json", ".md"}:
            found += leaks(path.read_text(encoding="utf-8", errors="replace"))
    assert found == []
    # a school's own results message carries its candidates' IDs masked, never in full
    bodies = [text_of(m) for m in received(mail_sink.mail_dir)]
    results = [b for b in bodies if "成绩已公示" in b]
    assert results and all(re.search(r"\d{6}\*{8}[\dX]{4}", b) for b in results)
    assert not any(leaks(b) for b in bodies)
