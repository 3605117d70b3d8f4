"""examflow db upgrade|current"""

import typer
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from examflow import migrate
from examflow.cli.console import fail, out
from examflow.settings import get_settings

db_app = typer.Typer(
    help="The database's schema (Alembic migrations): upgrade it, show its revision.",
    no_args_is_help=True,
)


def _url() -> str:
    return get_settings().resolved_database_url()


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Option("head", help="The revision to upgrade to."),
) -> None:
    """Create or upgrade the database (EXAMFLOW_DATABASE_URL, else <home>/examflow.db).

    A database made before migrations existed is recognised and stamped first. Back up a
    database that holds data before upgrading it.
    """
    url = _url()
    before = migrate.current(url)
    try:
        migrate.upgrade(url, revision)
    except (migrate.SchemaError, CommandError) as exc:
        fail(str(exc))
    after = migrate.current(url)
    if before == after and revision not in ("head", after):
        out.print(f"{_shown(url)}: at {after}, past {revision}: nothing to do (no downgrades)")
    elif before == after:
        out.print(f"{_shown(url)}: already at {after}")
    else:
        out.print(f"{_shown(url)}: {before or 'new'} -> {after}")


@db_app.command("current")
def current() -> None:
    """Print the database's revision (and whether it is this examflow's newest)."""
    url = _url()
    revision = migrate.current(url)
    if revision is None:
        fail(f"{_shown(url)} has no revision (missing, empty, or made before migrations)")
    suffix = " (head)" if revision == migrate.head() else f" (head is {migrate.head()})"
    out.print(f"{revision}{suffix}")
