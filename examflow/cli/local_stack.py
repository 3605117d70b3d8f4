"""`examflow up`: a local Prefect server and UI, an SMTP sink and the school portal (which
also serves the materials links mailed to sites), on 127.0.0.1 only."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from examflow.prefect_env import prepare_prefect_env
from examflow.settings import get_settings
from notifications.sink import MailSink
from portal.server import portal_server

SERVER_START_TIMEOUT_S = 90


@dataclass(frozen=True)
class LocalStack:
    api_url: str
    ui_url: str
    mail_dir: Path
    portal_url: str


def wait_healthy(api_url: str, timeout: float, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Prefect server did not answer at {api_url} in {timeout:.0f} s")


@contextmanager
def prefect_server(port: int, env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """A `prefect server start` on 127.0.0.1:``port`` until exit; yields its API URL.

    It runs in its own session: a terminal's Ctrl-C reaches examflow only, which stops its
    own work first and the server last (a server that died first left `serve` hanging).
    While it runs, its process group's id is in ``<log>.pid`` (var/prefect-server.pid for
    `examflow up`): should examflow be killed outright, ``kill -- -$(cat that file)`` stops
    the server it left behind.
    """
    api_url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, "PREFECT_API_URL": api_url},
            start_new_session=True,
        )
        pid_file = server_pid_file(log_path)
        pid_file.write_text(f"{server.pid}\n")
        try:
            wait_healthy(api_url, SERVER_START_TIMEOUT_S, server)
            yield api_url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            pid_file.unlink(missing_ok=True)


def server_pid_file(log_path: Path) -> Path:
    """Where prefect_server notes its server's process group while it runs."""
    return log_path.with_suffix(".pid")


@contextmanager
def local_stack(port: int, smtp_port: int, portal_port: int = 8090) -> Iterator[LocalStack]:
    """Start them, point this process (and its flows) at them, stop them on exit."""
    prepare_prefect_env()
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    log = settings.home / "prefect-server.log"
    with (
        prefect_server(port, os.environ, log) as api_url,
        MailSink(settings.mail_dir, smtp_port) as sink,
    ):
        os.environ["PREFECT_API_URL"] = api_url
        os.environ.setdefault("EXAMFLOW_PUBLIC_URL", f"http://127.0.0.1:{portal_port}")
        os.environ["EXAMFLOW_SMTP_HOST"] = sink.host
        os.environ["EXAMFLOW_SMTP_PORT"] = str(sink.port)
        os.environ["EXAMFLOW_SMTP_SECURITY"] = "none"
        with portal_server(get_settings(), portal_port) as portal_url:
            yield LocalStack(
                api_url, f"http://127.0.0.1:{port}", settings.mail_dir.resolve(), portal_url
            )
