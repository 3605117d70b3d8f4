"""Screenshot the Prefect UI showing the demo's Stalled checkpoint run, for the docs.

    .venv/bin/python scripts/screenshot_ui.py [--out docs/prefect-ui-stalled.png]
        [--artifact-out PATH] [--api-url http://127.0.0.1:4200/api] [--timeout S] [--budget S]

Starts `examflow up --demo` on free 127.0.0.1 ports with a throw-away EXAMFLOW_HOME (or uses
a running server given --api-url), waits until the demo has finished, finds the top-level
`sitting-checkpoint` run `2024-1 · platform_install · close` in state `Stalled`, and has
headless Chromium (Debian's /usr/bin/chromium; this script never installs it) render its flow
run page and the markdown artifact the run wrote. Each capture must contain the expected text
in the rendered DOM and must not be a blank PNG; otherwise the script exits non-zero. The stack
it started is stopped at the end, whatever happened.

Standard library only, so that it also runs where the UI is not the project's.
"""

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "apt-get install -y chromium fonts-wqy-microhei"

SITTING_FLOW = "sitting-checkpoint"
RUN_NAME = "2024-1 · platform_install · close"
STALLED = "Stalled"
ARTIFACT_KEY = "2024-1-platform-install"
# printed by `examflow up` once run_demo() has returned and it starts serving deployments
DEMO_DONE_MARKER = "serving deployments"

DEFAULT_OUT = ROOT / "docs" / "prefect-ui-stalled.png"
WINDOW = (1600, 1000)
DEMO_TIMEOUT_S = 180.0
# demo wait plus captures; stopping the stack comes on top (seconds, normally ~5, at most ~60)
BUDGET_S = 240.0
CHROMIUM_TIMEOUT_S = 45.0
CAPTURE_ATTEMPTS = 3
# virtual time lets the SPA fetch and render without us guessing a wall-clock sleep
VIRTUAL_TIME_BUDGET_MS = 15_000
HTTP_TIMEOUT_S = 10.0
# a dark, empty Prefect page is ~7 KB; the real pages are 80-160 KB
MIN_PNG_BYTES = 20_000
# share of pixels that differ from the most common colour; the UI's "not found" page has ~2 %
MIN_FOREGROUND_SHARE = 0.05


class ScreenshotError(RuntimeError):
    """Something the caller should see as one clear line (plus a log tail if we have one)."""


@dataclass(frozen=True)
class Deadline:
    """One time limit shared by every wait, so that the whole run stays bounded."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    def left(self, cap: float) -> float:
        left = min(cap, self.at - time.monotonic())
        if left <= 0:
            raise ScreenshotError("ran out of time (see --budget)")
        return left


@dataclass(frozen=True)
class Capture:
    url: str
    png: Path
    png_bytes: int
    foreground_share: float


@dataclass(frozen=True)
class Result:
    run_id: str
    run: Capture
    artifact: Capture
    seconds: float


# ---------------------------------------------------------------------------- the local stack


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def examflow_cli() -> str:
    """The console script of the interpreter running us (the project's venv)."""
    candidate = Path(sys.executable).with_name("examflow")
    if candidate.exists():
        return str(candidate)
    raise ScreenshotError(f"no examflow CLI next to {sys.executable}; run `make install` first")


def isolated_env(home: Path) -> dict[str, str]:
    """The caller's environment minus any Prefect/examflow settings (the Makefile exports
    PREFECT_HOME=var/prefect, which would mix the demo into the real database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EXAMFLOW_"))}
    env |= {
        "EXAMFLOW_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # rich would otherwise size its tables to a terminal that is not there
        "COLUMNS": "120",
    }
    return env


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    smtp_port: int
    materials_port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextmanager
def demo_stack(home: Path) -> Iterator[Stack]:
    """`examflow up --demo` in its own process group, stopped on exit."""
    port, smtp_port, materials_port = free_port(), free_port(), free_port()
    log = home / "examflow-up.log"
    command = [
        examflow_cli(),
        "up",
        "--demo",
        "--port",
        str(port),
        "--smtp-port",
        str(smtp_port),
        "--materials-port",
        str(materials_port),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=isolated_env(home),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that we can stop all of it
        )
    stack = Stack(process, log, port, smtp_port, materials_port)
    try:
        yield stack
    except BaseException:
        stop_stack(stack, strict=False)  # keep the original error the one reported
        raise
    stop_stack(stack)


def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send sig to the group; False when nobody is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_noted_server(pid_file: Path) -> None:
    try:
        pgid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.2)
        _signal_group(pgid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def stop_stack(stack: Stack, strict: bool = True) -> None:
    """Ctrl-C to `examflow up` alone first: `serve` then pauses its schedules while the server
    is still up, and local_stack stops the server. Signalling the whole group at once kills the
    server under `serve`, whose shutdown then hangs; so the group only gets TERM/KILL after."""
    process, pgid = stack.process, stack.process.pid
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        if not _wait_exit(process, 30):
            _signal_group(pgid, signal.SIGTERM)
            if not _wait_exit(process, 10):
                _signal_group(pgid, signal.SIGKILL)
                process.wait(timeout=10)
    # stragglers: the server or flow-run subprocesses if the leader died first
    if _signal_group(pgid, signal.SIGTERM):
        time.sleep(2)
        _signal_group(pgid, signal.SIGKILL)
    # the Prefect server runs in its own session (examflow/cli/local_stack.py): killed outright,
    # `examflow up` leaves it running, noted in EXAMFLOW_HOME/prefect-server.pid
    _stop_noted_server(stack.log.parent / "prefect-server.pid")
    try:
        wait_ports_closed((stack.port, stack.smtp_port, stack.materials_port), timeout=15)
    except ScreenshotError as exc:
        if strict:
            raise
        print(f"screenshot_ui: {exc}", file=sys.stderr)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_ports_closed(ports: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(port_open(p) for p in ports):
        if time.monotonic() > deadline:
            still = [p for p in ports if port_open(p)]
            raise ScreenshotError(f"something still listens on 127.0.0.1:{still} after stopping")
        time.sleep(0.5)


def wait_demo_finished(stack: Stack, timeout: float) -> None:
    """Until `examflow up` says it serves deployments, i.e. run_demo() has returned."""
    deadline = time.monotonic() + timeout
    while DEMO_DONE_MARKER not in stack.log_text():
        if stack.process.poll() is not None:
            raise ScreenshotError(
                f"`examflow up --demo` exited with code {stack.process.returncode}:\n"
                + stack.log_tail()
            )
        if time.monotonic() > deadline:
            raise ScreenshotError(
                f"the demo did not finish in {timeout:.0f} s:\n" + stack.log_tail()
            )
        time.sleep(1)


# ------------------------------------------------------------------------- the Prefect API


def api_post(api_url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{api_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        result: list[dict[str, Any]] = json.load(response)
    return result


def find_stalled_run(api_url: str) -> dict[str, Any] | None:
    """The newest top-level run (the subflow carries the same name and state) of the checkpoint
    flow named RUN_NAME whose state is named Stalled."""
    runs = api_post(
        api_url,
        "/flow_runs/filter",
        {
            "flows": {"name": {"any_": [SITTING_FLOW]}},
            "flow_runs": {
                "name": {"any_": [RUN_NAME]},
                "state": {"name": {"any_": [STALLED]}},
                "parent_task_run_id": {"is_null_": True},
            },
            "sort": "START_TIME_DESC",
            "limit": 1,
        },
    )
    return runs[0] if runs else None


def wait_stalled_run(api_url: str, timeout: float) -> dict[str, Any]:
    """Poll, because with --api-url the demo may still be running elsewhere."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = find_stalled_run(api_url)
        except (OSError, ValueError):  # server not up yet, or answering garbage while starting
            run = None
        if run is not None:
            return run
        if time.monotonic() > deadline:
            raise ScreenshotError(
                f"no {SITTING_FLOW} run named {RUN_NAME!r} in state {STALLED!r} at {api_url} "
                f"after {timeout:.0f} s (has the demo run there?)"
            )
        time.sleep(2)


def find_artifact_id(api_url: str, run_id: str) -> str:
    """The run's markdown artifact; the checkpoint's subflow writes it, so look there too."""
    children = api_post(
        api_url, "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}}
    )
    artifacts = api_post(
        api_url,
        "/artifacts/filter",
        {
            "artifacts": {
                "key": {"any_": [ARTIFACT_KEY]},
                "flow_run_id": {"any_": [run_id, *(c["id"] for c in children)]},
            },
            "sort": "CREATED_DESC",
            "limit": 1,
        },
    )
    if not artifacts:
        raise ScreenshotError(f"run {run_id} ({RUN_NAME}) has no artifact {ARTIFACT_KEY!r}")
    return str(artifacts[0]["id"])


# ----------------------------------------------------------------------------- the browser


def chromium_command(user_data_dir: Path, png: Path, url: str) -> list[str]:
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # we may run as root in a container
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        # both from one page load, so the DOM we check is the page we photograph
        "--dump-dom",
        f"--screenshot={png}",
        url,
    ]


def render(url: str, png: Path, deadline: Deadline) -> str:
    """One headless Chromium run with a fresh profile; returns the rendered DOM."""
    png.unlink(missing_ok=True)
    timeout = deadline.left(CHROMIUM_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="examflow-chromium-") as profile:
        try:
            done = subprocess.run(
                chromium_command(Path(profile), png, url),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ScreenshotError(f"chromium took more than {timeout:.0f} s on {url}") from exc
    if done.returncode != 0 or not png.exists():
        errors = done.stderr.decode(errors="replace").splitlines()[-5:]
        raise ScreenshotError(
            f"chromium failed ({done.returncode}) on {url}:\n" + "\n".join(errors)
        )
    return done.stdout.decode("utf-8", errors="replace")


def capture(url: str, png: Path, expected: Sequence[str], deadline: Deadline) -> Capture:
    """Render until the DOM shows every expected text and the PNG is not blank; the SPA
    occasionally needs a second go (data fetched after the virtual-time budget ran out)."""
    problem = ""
    for _ in range(CAPTURE_ATTEMPTS):
        dom = render(url, png, deadline)
        missing = [text for text in expected if text not in dom]
        if missing:
            problem = f"the page at {url} never showed {missing}"
            continue
        size, share = png.stat().st_size, foreground_share(png)
        if size < MIN_PNG_BYTES or share < MIN_FOREGROUND_SHARE:
            problem = f"{png} looks blank ({size} bytes, {share:.1%} foreground)"
            continue
        return Capture(url, png, size, share)
    raise ScreenshotError(problem)


# ---------------------------------------------------------------------------- PNG checking


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> None:
    """Undo one scanline's PNG filter in place (RFC 2083 §6)."""
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(len(line)):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (left + prev[i]) // 2) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            left, up_left = (line[i - bpp], prev[i - bpp]) if i >= bpp else (0, 0)
            line[i] = (line[i] + _paeth(left, prev[i], up_left)) & 0xFF
    elif kind != 0:
        raise ScreenshotError(f"PNG filter type {kind} is invalid")


def png_pixels(path: Path) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and rows of an 8-bit RGB/RGBA, non-interlaced PNG (what
    Chromium writes); enough to tell a rendered page from an empty one without Pillow."""
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ScreenshotError(f"{path} is not a PNG")
    pos, idat, header = 8, bytearray(), b""
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ScreenshotError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * bpp
    rows, prev = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, prev, bpp)
        prev = bytes(line)
        rows.append(prev)
    return width, height, bpp, rows


def foreground_share(path: Path) -> float:
    """Share of pixels whose colour is not the most common one (the page background)."""
    _, _, bpp, rows = png_pixels(path)
    colours: Counter[bytes] = Counter()
    for row in rows:
        colours.update(row[i : i + 3] for i in range(0, len(row), bpp))
    total = sum(colours.values())
    return 1 - colours.most_common(1)[0][1] / total if total else 0.0


# ---------------------------------------------------------------------------------- driver


def screenshot_pages(
    api_url: str, run_id: str, out: Path, artifact_out: Path, deadline: Deadline
) -> Result:
    ui_url = api_url.removesuffix("/api")
    started = time.monotonic()
    run_page = f"{ui_url}/runs/flow-run/{run_id}"
    run_capture = capture(run_page, out, [STALLED, RUN_NAME], deadline)
    artifact_page = f"{ui_url}/artifacts/artifact/{find_artifact_id(api_url, run_id)}"
    artifact_capture = capture(artifact_page, artifact_out, [ARTIFACT_KEY, RUN_NAME], deadline)
    return Result(run_id, run_capture, artifact_capture, time.monotonic() - started)


def take_screenshots(
    out: Path,
    artifact_out: Path,
    api_url: str | None = None,
    demo_timeout: float = DEMO_TIMEOUT_S,
    budget: float = BUDGET_S,
) -> Result:
    """The whole job; starts (and stops) the demo stack unless api_url is given."""
    if not CHROMIUM.exists():
        raise ScreenshotError(f"{CHROMIUM} is missing; install it with `{INSTALL_HINT}`")
    out.parent.mkdir(parents=True, exist_ok=True)
    artifact_out.parent.mkdir(parents=True, exist_ok=True)
    started, deadline = time.monotonic(), Deadline.after(budget)
    if api_url is not None:
        api_url = api_url.rstrip("/")
        run = wait_stalled_run(api_url, deadline.left(demo_timeout))
        result = screenshot_pages(api_url, run["id"], out, artifact_out, deadline)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="examflow-screenshot-") as home,
            demo_stack(Path(home)) as stack,
        ):
            wait_demo_finished(stack, deadline.left(demo_timeout))
            run = wait_stalled_run(stack.api_url, deadline.left(10))
            result = screenshot_pages(stack.api_url, run["id"], out, artifact_out, deadline)
    return Result(result.run_id, result.run, result.artifact, time.monotonic() - started)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="flow run page PNG")
    parser.add_argument(
        "--artifact-out", type=Path, help="artifact page PNG (default: <out>-artifact.png)"
    )
    parser.add_argument("--api-url", help="use this running server, e.g. http://127.0.0.1:4200/api")
    parser.add_argument(
        "--timeout", type=float, default=DEMO_TIMEOUT_S, help="seconds to wait for the demo"
    )
    parser.add_argument(
        "--budget", type=float, default=BUDGET_S, help="seconds for demo wait plus captures"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    artifact_out: Path = args.artifact_out or out.with_name(f"{out.stem}-artifact{out.suffix}")
    try:
        result = take_screenshots(out, artifact_out, args.api_url, args.timeout, args.budget)
    except ScreenshotError as exc:
        print(f"screenshot_ui: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the stack has been stopped on the way out
        print("screenshot_ui: interrupted", file=sys.stderr)
        return 130
    for shot in (result.run, result.artifact):
        print(
            f"{shot.png}: {shot.png_bytes // 1024} KB, {shot.foreground_share:.0%} foreground"
            f"  <- {shot.url}"
        )
    print(f"run {result.run_id} ({RUN_NAME}, {STALLED}); took {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
