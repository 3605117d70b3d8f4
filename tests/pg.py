"""PostgreSQL for the tests (see scripts/postgres.sh), used only when asked for:

- ``EXAMFLOW_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:55432/examflow_test``):
  every test that uses the ``home`` fixture gets a fresh, empty database ``t_<hex>`` on that
  server (``CREATE DATABASE … TEMPLATE template0``), dropped after the test;
- ``EXAMFLOW_TEST_PREFECT_PG_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:55432/prefect_test``):
  the test session's Prefect server is a real ``prefect server start`` whose database is a
  fresh ``<name>_<hex>`` on that server (the given database is only connected to), dropped
  at the end. ``prefect_test_harness`` always uses its own SQLite file, whatever
  ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` says.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy.engine import URL, make_url

POSTGRES_ENV = "EXAMFLOW_TEST_POSTGRES_URL"
PREFECT_PG_ENV = "EXAMFLOW_TEST_PREFECT_PG_URL"
SERVER_STARTUP_S = 120


def _libpq(url: URL) -> str:
    """The libpq form of a SQLAlchemy URL (any driver): what psycopg connects with."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(base_url: str, prefix: str = "t") -> Iterator[str]:
    """A new empty database next to ``base_url``'s (same server, user and driver); its URL.

    Dropped at exit with ``WITH (FORCE)``, which ends any connection still open to it.
    """
    import psycopg  # only needed here: a SQLite-only run does without it
    from psycopg import sql

    base = make_url(base_url)
    name = f"{prefix}_{uuid.uuid4().hex}"
    with psycopg.connect(_libpq(base), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 STRATEGY FILE_COPY").format(
                sql.Identifier(name)
            )
        )
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def app_database(base_url: str) -> Iterator[str]:
    """A fresh database for examflow (``EXAMFLOW_DATABASE_URL``). At exit, every engine that
    connected to it is disposed (``examflow.db.engine_for`` caches one per URL, its pool
    open), then the database is dropped."""
    from sqlalchemy import Connection, Engine, event

    engines: set[Engine] = set()
    with fresh_database(base_url) as url:
        database = make_url(url).database

        def note(connection: Connection) -> None:
            if connection.engine.url.database == database:
                engines.add(connection.engine)

        event.listen(Engine, "engine_connect", note)
        try:
            yield url
        finally:
            event.remove(Engine, "engine_connect", note)
            for engine in engines:
                engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def prefect_server_on_postgres(base_url: str, home: Path) -> Iterator[str]:
    """A real ``prefect server start`` on 127.0.0.1 with a fresh PostgreSQL database, which
    this process's flows report to until exit (as ``prefect_test_harness`` does for its
    SQLite server); yields the API URL. ``home`` is the server's PREFECT_HOME and holds its
    log, ``server.log``."""
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with (
        fresh_database(base_url, prefix=make_url(base_url).database or "prefect") as db_url,
        (home / "server.log").open("wb") as log,
    ):
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": db_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
            # The tests make the runs they need. The scheduler service also makes runs from
            # deployments' schedules as they change: a re-deploy test raced it once and found
            # a run of a schedule the re-deploy had just replaced.
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, "-m", "prefect", "server", "start", "--no-ui"]
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        api_url = f"http://127.0.0.1:{port}/api"
        try:
            _wait_healthy(api_url, process, home / "server.log")
            with (
                temporary_settings({PREFECT_API_URL: api_url}),
                # threads that start with a fresh context see this server too
                _temporary_global_settings_context(get_settings_context()),
            ):
                yield api_url
                _drain_prefect_workers()  # logs and events still queued go out first
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _drain_prefect_workers() -> None:
    """What ``prefect_test_harness`` does before it stops its server."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        except RuntimeError:  # the log worker was never started
            pass
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


def _wait_healthy(api_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_STARTUP_S
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if client.get(f"{api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"prefect server not healthy after {SERVER_STARTUP_S} s: see {log}")
