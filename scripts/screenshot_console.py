"""Screenshot the ops console in the Prefect UI, for the docs: the sitting's overview table
artifact and the exam's go/no-go Resume form.

    .venv/bin/python scripts/screenshot_console.py [--home DIR] [--eve 2024-05-17T09:00]
        [--overview-out docs/prefect-overview.png] [--go-no-go-out docs/prefect-go-no-go.png]

Starts `examflow up --demo` on free 127.0.0.1 ports (scripts/screenshot_ui.py's stack, with
EXAMFLOW_HOME=--home or a throw-away directory), waits until the demo has finished, and has
headless Chromium (Debian's, driven by Playwright; this script never downloads a browser)
photograph the newest `2024-1-overview` artifact. Then it runs the exam stage's `open`
checkpoint of 2024-1 on the eve of the exam against the same server with a decision timeout,
waits until that run is paused for ops' go/no-go, opens the run's page, presses Resume and
photographs the form. The paused run and the stack are stopped at the end, whatever happened.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from screenshot_ui import (
    ROOT,
    WINDOW,
    Deadline,
    ScreenshotError,
    Stack,
    api_post,
    demo_stack,
    foreground_share,
    isolated_env,
    wait_demo_finished,
)

SITTING = "2024-1"
OVERVIEW_KEY = f"{SITTING}-overview"
EXAM_OPEN_RUN = f"{SITTING} · exam · open"
FORM_TEXT = "决定人 (who decides)"  # the form's last field's title (flows/exam_stage.py)
DEFAULT_OVERVIEW_OUT = ROOT / "docs" / "prefect-overview.png"
DEFAULT_GO_NO_GO_OUT = ROOT / "docs" / "prefect-go-no-go.png"
DEFAULT_EVE = "2024-05-17T09:00"  # 09:00 the day before 2024-1's exam, Asia/Shanghai
BUDGET_S = 420.0
DEMO_TIMEOUT_S = 240.0
PAUSE_TIMEOUT_S = 120.0
# long enough that the run is still paused while we photograph it; it is stopped after
DECISION_TIMEOUT_S = 600
PAGE_TIMEOUT_MS = 30_000
CHROMIUM_ARGS = [
    "--no-sandbox",  # we may run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# the exam stage's open run at a given moment, with a decision timeout so that it pauses
PAUSE_PROGRAM = """
import sys
from datetime import datetime
from flows.exam_stage import exam_stage
from models.domain import SHANGHAI, Checkpoint
eve = datetime.fromisoformat(sys.argv[2]).replace(tzinfo=SHANGHAI)
exam_stage(sys.argv[1], Checkpoint.open, eve, decision_timeout=int(sys.argv[3]))
"""


# ------------------------------------------------------------------------------ the API


def newest_overview_id(api_url: str) -> str:
    artifacts = api_post(
        api_url,
        "/artifacts/filter",
        {"artifacts": {"key": {"any_": [OVERVIEW_KEY]}}, "sort": "CREATED_DESC", "limit": 1},
    )
    if not artifacts:
        raise ScreenshotError(f"no artifact {OVERVIEW_KEY!r} at {api_url} after the demo")
    return str(artifacts[0]["id"])


def find_paused_open_run(api_url: str) -> dict[str, Any] | None:
    """The exam's open run once it is paused with its form's input keys in place."""
    runs = api_post(
        api_url,
        "/flow_runs/filter",
        {
            "flow_runs": {
                "name": {"any_": [EXAM_OPEN_RUN]},
                "state": {"type": {"any_": ["PAUSED"]}},
            },
            "sort": "START_TIME_DESC",
            "limit": 1,
        },
    )
    for run in runs:
        state: dict[str, Any] = run.get("state") or {}
        if state.get("state_details", {}).get("run_input_keyset"):
            return run
    return None


@contextmanager
def paused_exam_run(stack: Stack, home: Path, eve: str, deadline: Deadline) -> Iterator[str]:
    """Run the exam's open checkpoint against the stack until it pauses; yields the run's id
    and stops the run (its process group) on exit."""
    env = isolated_env(home) | {
        "PREFECT_API_URL": stack.api_url,
        "EXAMFLOW_SMTP_HOST": "127.0.0.1",
        "EXAMFLOW_SMTP_PORT": str(stack.smtp_port),
        "EXAMFLOW_SMTP_SECURITY": "none",
    }
    log = home / "exam-open.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", PAUSE_PROGRAM, SITTING, eve, str(DECISION_TIMEOUT_S)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        limit = time.monotonic() + deadline.left(PAUSE_TIMEOUT_S)
        while (run := find_paused_open_run(stack.api_url)) is None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            if process.poll() is not None:
                raise ScreenshotError(f"the exam's open run ended without pausing:\n{tail}")
            if time.monotonic() > limit:
                raise ScreenshotError(f"the exam's open run did not pause:\n{tail}")
            time.sleep(1)
        yield str(run["id"])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# -------------------------------------------------------------------------- the browser


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise ScreenshotError("no chromium on PATH; apt-get install -y chromium fonts-wqy-microhei")
    return found


def shoot_overview(page: Any, url: str, png: Path) -> None:
    page.goto(url, wait_until="networkidle", timeout=PAGE_TIMEOUT_MS)
    page.get_by_text(OVERVIEW_KEY).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    page.locator("table").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    page.screenshot(path=str(png), full_page=True)


def shoot_go_no_go(page: Any, url: str, png: Path) -> None:
    page.goto(url, wait_until="networkidle", timeout=PAGE_TIMEOUT_MS)
    page.get_by_role("button", name="Resume").first.click(timeout=PAGE_TIMEOUT_MS)
    try:
        page.get_by_text(FORM_TEXT).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    except Exception as exc:
        page.screenshot(path=str(png.with_suffix(".failed.png")), full_page=True)
        raise ScreenshotError(f"no go/no-go form after Resume on {url}: {exc}") from exc
    page.wait_for_timeout(1000)  # the modal's transition
    page.screenshot(path=str(png), full_page=True)


def check_not_blank(png: Path) -> str:
    size, share = png.stat().st_size, foreground_share(png)
    if share < 0.05:
        raise ScreenshotError(f"{png} looks blank ({size} bytes, {share:.1%} foreground)")
    return f"{png}: {size // 1024} KB, {share:.0%} foreground"


def take(home: Path, eve: str, overview_out: Path, go_no_go_out: Path, budget: float) -> None:
    from playwright.sync_api import sync_playwright

    deadline = Deadline.after(budget)
    executable = chromium()
    with demo_stack(home) as stack:
        wait_demo_finished(stack, deadline.left(DEMO_TIMEOUT_S))
        ui_url = stack.api_url.removesuffix("/api")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": WINDOW[0], "height": WINDOW[1]})
                overview = f"{ui_url}/artifacts/artifact/{newest_overview_id(stack.api_url)}"
                shoot_overview(page, overview, overview_out)
                print(check_not_blank(overview_out), " <-", overview)
                with paused_exam_run(stack, home, eve, deadline) as run_id:
                    run_page = f"{ui_url}/runs/flow-run/{run_id}"
                    shoot_go_no_go(page, run_page, go_no_go_out)
                    print(check_not_blank(go_no_go_out), " <-", run_page)
            finally:
                browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, help="EXAMFLOW_HOME (default: a temporary one)")
    parser.add_argument("--eve", default=DEFAULT_EVE, help="as_of of the paused open run")
    parser.add_argument("--overview-out", type=Path, default=DEFAULT_OVERVIEW_OUT)
    parser.add_argument("--go-no-go-out", type=Path, default=DEFAULT_GO_NO_GO_OUT)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds in all")
    args = parser.parse_args()
    try:
        if args.home is not None:
            args.home.mkdir(parents=True, exist_ok=True)
            take(args.home, args.eve, args.overview_out, args.go_no_go_out, args.budget)
        else:
            with tempfile.TemporaryDirectory(prefix="examflow-console-") as home:
                take(Path(home), args.eve, args.overview_out, args.go_no_go_out, args.budget)
    except ScreenshotError as exc:
        print(f"screenshot_console: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
