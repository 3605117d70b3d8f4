"""What `examflow demo` prints at the end stays whole and readable in an 80-column terminal."""

import io
import re
from datetime import datetime
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from examflow.cli import demo
from models.domain import SHANGHAI

LONG_NOTE = (
    "re-triggered after S00011, S00012: 2 of 12 sites: 考试平台已安装 (2), "
    "模考及平台测试已通过 (2), 考场已布置 (2), 考务管理人员已参加培训 (2), 技术人员已参加培训 (2)"
)
ROWS = [
    demo.DemoRow(datetime(2024, 4, 28, 23, 59, tzinfo=SHANGHAI), "registration", "close",
                 "StageComplete", 40, "all 40 schools done"),
    demo.DemoRow(datetime(2024, 5, 12, 23, 59, tzinfo=SHANGHAI), "platform_install", "close",
                 "Stalled", 1234, LONG_NOTE),
    demo.DemoRow(datetime(2024, 5, 20, 9, 0, tzinfo=SHANGHAI), "exam", "remind",
                 "MailPending", 0, "[red]not markup[/red]: 1 message(s) not delivered"),
    demo.DemoRow(datetime(2024, 6, 1, 9, 0, tzinfo=SHANGHAI), "certificates", "open", "Open", 0),
]  # fmt: skip


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture
def printed(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The summary as an 80-column terminal shows it (a console like the CLI's own)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, highlight=False, soft_wrap=True, color_system=None)
    monkeypatch.setattr(demo, "out", console)
    demo.print_summary(ROWS)
    return buffer.getvalue()


def test_no_line_of_the_summary_is_wider_than_80_columns(printed: str) -> None:
    wide = [line for line in printed.splitlines() if cell_len(line) > 80]
    assert wide == []


def test_every_run_shows_its_date_stage_checkpoint_state_and_count_uncut(printed: str) -> None:
    lines = printed.splitlines()
    for row in ROWS:
        when = f"{row.at:%Y-%m-%d %H:%M}".split()
        expected = [*when, row.stage, row.checkpoint, row.state, str(row.sent)]
        assert any(line.split() == expected for line in lines), (expected, printed)
    assert "…" not in printed


def test_every_summary_is_shown_whole_however_long(printed: str) -> None:
    for row in ROWS:
        assert squeeze(row.note) in squeeze(printed)


def test_the_totals_and_the_mail_folder_close_the_summary(printed: str, home: Path) -> None:
    assert "4 checkpoint runs, 1274 messages sent; mail in" in printed
    assert f"{(home / 'mail').resolve()}/" in squeeze(printed)
