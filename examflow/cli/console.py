"""Shared pieces of the command line: consoles, --as-of parsing, importing files, and the one
error path every command fails through."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, time
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from examflow.importing import Imported, ImportRefusedError, import_path
from models.domain import SHANGHAI
from models.importer import Importer
from models.problems import RejectedFileError
from models.sittings import UnknownSittingError

S = TypeVar("S")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

AS_OF_HELP = (
    "Evaluate at this moment (ISO date or date-time; Asia/Shanghai if no offset). Default: now."
)


class ShowByDefault(TyperGroup):
    """A group whose first word may be an argument: `fees SITTING` runs `fees show SITTING`;
    a known subcommand (`fees standard …`) runs as usual."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


def fail(message: str, code: int = 1) -> NoReturn:
    # Messages quote what users typed or uploaded: '[/x]' must print, not be read as markup.
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def parse_as_of(value: str | None) -> datetime:
    """An aware datetime from ``--as-of``; naive values are Asia/Shanghai; default now."""
    if value is None:
        return datetime.now(SHANGHAI)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"--as-of {value!r} is not an ISO date or date-time (e.g. 2024-04-29T23:59:59)", 2)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    if len(value.strip()) == 10:
        parsed = datetime.combine(parsed.date(), time(0), SHANGHAI)
    return parsed


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def report_rejection(source: str, exc: RejectedFileError) -> NoReturn:
    err.print(f"[red]{escape(source)}: {len(exc.problems)} problem(s); nothing was stored[/red]")
    for problem in exc.problems:
        err.print(f"  {escape(str(problem))}")
    raise typer.Exit(1)


def report_refused(exc: ImportRefusedError) -> NoReturn:
    """A refused file: its reading warnings, then why (one line) or every problem (a list)."""
    print_warnings(exc.warnings)
    if exc.whole:
        fail(exc.headline)
    report_rejection(exc.file_name, exc)


@contextmanager
def failing_on(*errors: type[Exception]) -> Iterator[None]:
    """The one error path of the commands: an unknown sitting, a refused or unreadable file,
    and the command's own domain ``errors`` each end as a message on stderr and exit 1."""
    try:
        yield
    except UnknownSittingError as exc:
        fail(str(exc))
    except ImportRefusedError as exc:
        report_refused(exc)
    except errors as exc:
        fail(str(exc))


def import_upload(
    importer: Importer[S],
    path: Path,
    *,
    as_of: datetime,
    sitting: str | None = None,
    on_refused: Callable[[ImportRefusedError], None] | None = None,
) -> Imported[S]:
    """Import a CSV/XLSX file whole (examflow.importing), printing its reading warnings; a
    refused file ends the command through ``failing_on``, after ``on_refused`` (if given)
    has seen its row problems."""
    with failing_on():
        try:
            result = import_path(importer, path, as_of=as_of, sitting=sitting)
        except ImportRefusedError as exc:
            if on_refused is not None and not exc.whole:
                on_refused(exc)
            raise
    print_warnings(result.warnings)
    from examflow.events import emit_file_imported  # stalls that clear themselves

    emit_file_imported(importer.kind, sitting, as_of)
    return result
