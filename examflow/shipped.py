"""The sitting calendars that ship inside examflow (package data, found with importlib.resources).

In the repository `examflow/calendars` is a link to `calendars/`, the one source of the files;
an installed wheel carries the files themselves. So `examflow calendar check`, `examflow demo`
and `examflow up` work from any directory, without a checkout.
"""

from importlib.resources import files
from pathlib import Path

NOTICE_CALENDAR = "2024-h1.toml"  # the 2024 notice's calendar: sittings 2024-1 and 2024-2


def shipped_calendar_dir() -> Path:
    """The folder of the shipped calendars. A wheel installs unzipped, so it is a real path."""
    return Path(str(files("examflow") / "calendars"))


def shipped_calendars() -> list[Path]:
    """Every shipped calendar file, in name order."""
    return sorted(shipped_calendar_dir().glob("*.toml"))


def notice_calendar() -> Path:
    """The notice's calendar (the demo rehearses its sitting 2024-1)."""
    return shipped_calendar_dir() / NOTICE_CALENDAR
