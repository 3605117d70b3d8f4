"""Prefect's environment for examflow: set before Prefect is first imported, never at import."""

import fcntl
import os
from pathlib import Path

from examflow.settings import get_settings

# On a loaded 2-core machine Prefect's default of 20 s is too short for an ephemeral server
# whose first start also migrates its database.
EPHEMERAL_STARTUP_TIMEOUT_S = "90"


def prepare_prefect_env() -> None:
    """A project-local PREFECT_HOME (var/prefect), no analytics, no tracking; the caller's
    own values win. In ephemeral mode (no PREFECT_API_URL) the local database is migrated
    once, under a lock, before any ephemeral server starts."""
    home = get_settings().home.resolve()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # flow and task logs still reach the Prefect UI; only the console is kept quiet
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # the materials' local Dask cluster logs its start and stop at INFO: keep its warnings only
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    os.environ.setdefault(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT_S
    )
    prefect_home = Path(os.environ["PREFECT_HOME"])
    prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the last level
    if not os.environ.get("PREFECT_API_URL"):
        migrate_ephemeral_database(prefect_home)


def migrate_ephemeral_database(prefect_home: Path) -> None:
    """Bring the ephemeral server's database to Prefect's head revision, one process at a time.

    Each ephemeral server migrates its database when it starts; two `examflow run` started at
    the same moment on a fresh PREFECT_HOME both ran the same migrations and one died
    (alembic's "Online migration expected to match one row"). Here the first process migrates
    under an exclusive file lock and leaves a marker naming the Prefect version; the others
    wait for the lock, see the marker and go on, and their servers find nothing to migrate.
    """
    import prefect

    marker = prefect_home / f".examflow-migrated-{prefect.__version__}"
    if marker.exists():
        return
    with (prefect_home / ".examflow-migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.exists():
            return
        import asyncio

        from prefect.server.database import provide_database_interface

        # Prefect's alembic env must run in a worker thread of an event loop: create_db does
        asyncio.run(provide_database_interface().create_db())
        marker.touch()
