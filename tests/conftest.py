"""Shared fixtures: every test gets its own examflow home and SQLite database file (or its own
PostgreSQL database: tests/pg.py)."""

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from hypothesis import settings

from tests import pg

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from notifications.sink import MailSink

ROOT = Path(__file__).resolve().parents[1]
CALENDAR = ROOT / "calendars" / "2024-h1.toml"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# Hypothesis' per-example deadline (200 ms) measures the machine, not examflow: on a shared CI
# machine a slow example replays fast and hypothesis reports the test as flaky. The bounded
# property tests set their own example counts; none of them is a timing check.
settings.register_profile("examflow", deadline=None, print_blob=True)
settings.load_profile("examflow")

# CI sets this: a system tool the tests need (CJK font, Chromium) that is missing fails the run
# instead of skipping what it would have tested. Locally such tests skip, with the reason.
REQUIRE_ALL = "EXAMFLOW_REQUIRE_ALL"


def missing_system_tool(what: str) -> NoReturn:
    if os.environ.get(REQUIRE_ALL) == "1":
        pytest.fail(f"{what} ({REQUIRE_ALL}=1: it must be installed)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def needs_cjk_font() -> None:
    """The materials' CJK TrueType font (fonts-wqy-microhei or $EXAMFLOW_CJK_FONT)."""
    from notifications.documents.fonts import CJKFontMissing, find_cjk_font

    try:
        find_cjk_font()
    except CJKFontMissing as exc:
        missing_system_tool(f"no CJK font to embed ({exc})")


@pytest.fixture(scope="session")
def needs_chromium() -> None:
    """Headless Chromium (Debian's chromium) for the Prefect UI check."""
    from scripts.screenshot_ui import CHROMIUM, INSTALL_HINT

    if not CHROMIUM.exists():
        missing_system_tool(f"needs {CHROMIUM}: {INSTALL_HINT}")


@pytest.fixture
def chromium_browser() -> "Iterator[Browser]":
    """Debian's headless chromium driven by Playwright: `pip install playwright` ships the
    driver, and its own browser download cannot run here, so the system's binary is launched."""
    executable = shutil.which("chromium")
    if executable is None:
        missing_system_tool("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing_system_tool(f"needs playwright (pip): {exc}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh examflow home (var/) with its own database file; with EXAMFLOW_TEST_POSTGRES_URL
    set, its own fresh PostgreSQL database instead (tests/pg.py)."""
    monkeypatch.setenv("EXAMFLOW_HOME", str(tmp_path / "var"))
    monkeypatch.delenv("EXAMFLOW_DATABASE_URL", raising=False)
    with ExitStack() as stack:
        if postgres_url := os.environ.get(pg.POSTGRES_ENV):
            url = stack.enter_context(pg.app_database(postgres_url))
            monkeypatch.setenv("EXAMFLOW_DATABASE_URL", url)
        yield tmp_path / "var"


@pytest.fixture
def register_loaded(home: Path, tmp_path: Path) -> Path:
    """The notice's calendar and a small register (tests.helpers.SCHOOLS) loaded."""
    from examflow.synthetic import SCHOOL_HEADER, write_csv
    from tests.cli import run
    from tests.helpers import SCHOOLS

    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    result = run(
        "schools", "import", str(write_csv(tmp_path / "schools.csv", SCHOOL_HEADER, SCHOOLS))
    )
    assert result.exit_code == 0, result.output
    return tmp_path


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One real Prefect test server for the session (flow runs, states, artifacts); with
    EXAMFLOW_TEST_PREFECT_PG_URL set, a `prefect server start` on PostgreSQL (tests/pg.py)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with ExitStack() as stack:
        if prefect_pg_url := os.environ.get(pg.PREFECT_PG_ENV):
            home = tmp_path_factory.mktemp("prefect-server")
            stack.enter_context(pg.prefect_server_on_postgres(prefect_pg_url, home))
        else:
            stack.enter_context(prefect_test_harness(server_startup_timeout=60))
        stack.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
        yield


@pytest.fixture
def mail_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator["MailSink"]:
    """A real SMTP server on 127.0.0.1 storing messages as files; examflow points at it."""
    from notifications.sink import MailSink

    with MailSink(tmp_path / "mail", 0) as sink:
        monkeypatch.setenv("EXAMFLOW_SMTP_HOST", sink.host)
        monkeypatch.setenv("EXAMFLOW_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("EXAMFLOW_SMTP_SECURITY", "none")
        monkeypatch.setenv("EXAMFLOW_OPS_EMAIL", "ops@organiser.example.cn")
        yield sink


@pytest.fixture
def scored(register_loaded: Path) -> dict[str, str]:
    """2024-1: P3 has 3 candidates (甲2 absent; 甲0 59, 甲1 88), P1 has 乙 (60), N1 borrows
    P3 for 丙 (75); arranged, attendance and scores recorded. Returns ticket by name."""
    from sqlmodel import col, select

    from examflow.db import session_scope
    from examflow.synthetic import write_csv
    from models.arrangement import SeatAssignment
    from models.registration import Registration
    from tests.cli import run
    from tests.helpers import OPEN, new_id, reg_file

    assert run("sites", "agree", "P3", "N1", "2024-1").exit_code == 0
    rows = [["P3", f"甲{i}", new_id(), "初级", ""] for i in range(3)]
    rows += [["P1", "乙", new_id(), "中级", ""], ["N1", "丙", new_id(), "初级", "P3"]]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    with session_scope() as session:
        tickets = dict(
            session.exec(
                select(Registration.name, SeatAssignment.ticket_number).join(
                    SeatAssignment, col(SeatAssignment.registration_id) == col(Registration.id)
                )
            ).all()
        )
    sheet = [[t, "缺考" if name == "甲2" else "出席"] for name, t in tickets.items()]
    write_csv(register_loaded / "att.csv", ["准考证号", "出勤"], sheet)
    assert run("attendance", "2024-1", str(register_loaded / "att.csv")).exit_code == 0
    scores = [
        [tickets["甲0"], "59"],
        [tickets["甲1"], "88"],
        [tickets["乙"], "60"],
        [tickets["丙"], "75"],
    ]
    write_csv(register_loaded / "scores.csv", ["准考证号", "成绩"], scores)
    result = run("scores", "import", "2024-1", str(register_loaded / "scores.csv"))
    assert result.exit_code == 0, result.output
    return tickets
