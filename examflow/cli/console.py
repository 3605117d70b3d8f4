"""Shared pieces of the command line: consoles, --as-of parsing, reading files, failing well."""

import hashlib
from datetime import datetime, time
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from adapters.tabular import MAX_BYTES, TableError, read_table
from models.domain import SHANGHAI
from models.problems import RejectedFileError
from models.table import Column, Table

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


def read_upload(path: Path, columns: tuple[Column, ...]) -> tuple[Table, str]:
    """Read a CSV/XLSX upload; returns the table and the file's SHA-256."""
    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough for read_table to refuse the file: a 5 GB
            # upload (or /dev/zero) must not be read into memory first.
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        table = read_table(data, path.name, columns)
    except TableError as exc:
        fail(f"{path.name}: {exc}")
    for warning in table.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    return table, hashlib.sha256(data).hexdigest()


def report_rejection(source: str, exc: RejectedFileError) -> NoReturn:
    err.print(f"[red]{escape(source)}: {len(exc.problems)} problem(s); nothing was stored[/red]")
    for problem in exc.problems:
        err.print(f"  {escape(str(problem))}")
    raise typer.Exit(1)
