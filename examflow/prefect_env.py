"""Prefect's environment for examflow: set before Prefect is first imported, never at import."""

import os

from examflow.settings import get_settings


def prepare_prefect_env() -> None:
    """A project-local PREFECT_HOME (var/prefect), no analytics, no tracking; the caller's
    own values win."""
    home = get_settings().home.resolve()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # flow and task logs still reach the Prefect UI; only the console is kept quiet
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
