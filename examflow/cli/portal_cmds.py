"""examflow portal serve | portal link SCHOOL | audit SITTING"""

import json
from datetime import timedelta

import typer
from rich.table import Table as RichTable

from examflow.cli.console import AS_OF_HELP, fail, out, parse_as_of
from examflow.db import session_scope
from examflow.settings import get_settings
from models.domain import in_shanghai
from models.portal_access import audit_rows, issue_link
from models.schools import School
from models.sittings import UnknownSittingError, get_sitting

portal_app = typer.Typer(help="The school portal (学校服务平台).", no_args_is_help=True)


@portal_app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8090, EXAMFLOW_PORTAL_PORT)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (uvicorn)."),
    as_of: str | None = typer.Option(
        None, help="Fix the portal's clock for a rehearsal (ISO; Asia/Shanghai if no offset)."
    ),
) -> None:
    """Serve the school portal; sites' materials links are served here too."""
    from portal.server import serve as serve_portal

    settings = get_settings()
    if as_of is not None:
        parse_as_of(as_of)  # refuse a bad value here, not in every worker
    host, port = host or settings.portal_host, port or settings.portal_port
    out.print(f"portal on http://{host}:{port}/ (Ctrl-C stops)")
    serve_portal(host, port, workers, as_of)


@portal_app.command("link")
def link(
    school: str,
    sitting: str | None = typer.Option(None, help="Open this sitting's page after signing in."),
    days: int = typer.Option(7, min=1, max=60, help="Days the link stays valid."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Print a sign-in link for SCHOOL's exam-affairs contact, for ops to send by hand.

    Valid for --days (not single-use): treat it like the school's password until then.
    """
    moment = parse_as_of(as_of)
    from portal.mail import signin_url

    try:
        with session_scope() as session:
            row = session.get(School, school)
            if row is None:
                fail(f"unknown school {school!r}")
            if sitting is not None:
                get_sitting(session, sitting)
            token = issue_link(
                session,
                school,
                row.affairs_email,
                moment,
                expires_at=moment + timedelta(days=days),
                single_use=False,
                sitting_code=sitting,
            )
    except UnknownSittingError as exc:
        fail(str(exc))
    out.print(signin_url(get_settings().public_url, token))


def audit(
    sitting: str,
    school: str | None = typer.Option(None, help="One school's actions only."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines' list instead of a table."),
) -> None:
    """What schools did in the portal for SITTING: who, what, when, from where."""
    try:
        with session_scope() as session:
            get_sitting(session, sitting)
            rows = audit_rows(session, sitting, school)
    except UnknownSittingError as exc:
        fail(str(exc))
    records = [
        {
            "at": in_shanghai(r.at).isoformat(timespec="seconds"),
            "school": r.school_code,
            "contact": r.contact,
            "action": r.action,
            "detail": r.detail,
            "client": r.client,
        }
        for r in rows
    ]
    if as_json:
        out.print_json(json.dumps(records, ensure_ascii=False))
        return
    table = RichTable(title=f"{sitting}: {len(records)} portal action(s)")
    for column in ("at", "school", "contact", "action", "detail", "client"):
        table.add_column(column)
    for record in records:
        table.add_row(
            *(str(record[c]) for c in ("at", "school", "contact", "action", "detail", "client"))
        )
    out.print(table)
