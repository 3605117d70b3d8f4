"""examflow deploy | serve | up | demo"""

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import typer

from examflow.cli.calendar_cmds import read_calendar
from examflow.cli.console import fail, out
from examflow.db import session_scope
from examflow.prefect_env import prepare_prefect_env
from examflow.settings import get_settings
from examflow.shipped import shipped_calendars
from models.sitting_calendar import CalendarSpec
from models.sittings import store_calendar

DEFAULT_CALENDARS = "calendars/*.toml"
DEFAULT_HELP = f"Calendar files (default {DEFAULT_CALENDARS}, else the shipped calendars)."
REMIND_HELP = "Days before each close on which to remind (repeatable)."


def require_cjk_font() -> None:
    """The materials (PDFs) need a CJK font: say so once, before anything starts."""
    from notifications.documents.fonts import CJKFontMissing, find_cjk_font

    try:
        find_cjk_font()
    except CJKFontMissing as exc:
        fail(str(exc))


def load_calendars(files: list[Path]) -> list[CalendarSpec]:
    """Validate and store the calendars, so that flows and schedules agree."""
    from datetime import datetime

    from models.domain import SHANGHAI

    if not files:  # the working directory's calendars, else the ones shipped with examflow
        files = sorted(Path().glob(DEFAULT_CALENDARS)) or shipped_calendars()
    if not files:
        fail(f"no calendar given, none found at {DEFAULT_CALENDARS} and none shipped")
    calendars = [read_calendar(f) for f in files]
    with session_scope() as session:
        for path, calendar in zip(files, calendars, strict=True):
            store_calendar(session, calendar, str(path), datetime.now(SHANGHAI))
    return calendars


def deploy(
    calendars: list[Path] = typer.Argument(None, help=DEFAULT_HELP),
    work_pool: str = typer.Option("examflow", help="Process work pool (created if missing)."),
    remind: list[int] = typer.Option([3, 1], help=REMIND_HELP),
) -> None:
    """Create or update one deployment per sitting (plus the ops ones) in a work pool.

    Workers started with `prefect worker start --pool examflow`, on any machine with examflow
    installed and the same EXAMFLOW_DATABASE_URL, run the scheduled checkpoints.
    """
    specs = load_calendars(calendars or [])
    prepare_prefect_env()
    from prefect import deploy as prefect_deploy

    from deployments.build import all_deployments
    from deployments.pool import ensure_crash_recovery, ensure_process_pool

    asyncio.run(ensure_process_pool(work_pool))
    zombie_after = timedelta(seconds=get_settings().zombie_after_seconds)
    asyncio.run(ensure_crash_recovery(zombie_after))  # a run whose worker died runs again
    deployments = all_deployments(specs, tuple(remind))
    ids: list[object] = prefect_deploy(  # type: ignore[assignment]
        *deployments,
        work_pool_name=work_pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    out.print(
        f"{len(ids)} deployments in work pool {work_pool!r}: "
        + ", ".join(d.name for d in deployments)
    )


def serve(
    calendars: list[Path] = typer.Argument(None, help=DEFAULT_HELP),
    remind: list[int] = typer.Option([3, 1], help=REMIND_HELP),
) -> None:
    """Serve one deployment per sitting and the ops deployments from this process (Ctrl-C
    stops; stopping pauses their schedules and a restart restores them)."""
    specs = load_calendars(calendars or [])
    prepare_prefect_env()
    from prefect import serve as prefect_serve

    from deployments.build import all_deployments

    prefect_serve(*all_deployments(specs, tuple(remind)), limit=4)


PORTAL_PORT = 8090


def up(
    ctx: typer.Context,
    demo: bool = typer.Option(False, "--demo", help="Rehearse sitting 2024-1 first."),
    port: int = typer.Option(4200, help="Prefect server port (127.0.0.1)."),
    smtp_port: int = typer.Option(8025, help="SMTP sink port (127.0.0.1)."),
    portal_port: int = typer.Option(
        PORTAL_PORT,
        help="School portal port (127.0.0.1); it also serves the materials links mailed to sites.",
    ),
    materials_port: int | None = typer.Option(
        None, "--materials-port", hidden=True, help="The old name of --portal-port."
    ),
) -> None:
    """Start a local Prefect server and UI, an SMTP sink under var/mail and the school
    portal, and serve the deployments of calendars/*.toml (else the shipped calendars); all
    on 127.0.0.1.
    Ctrl-C stops everything."""
    if materials_port is not None:  # the old name, still taken from scripts that use it
        source = ctx.get_parameter_source("portal_port")  # typer's own click: by name
        given = source is not None and source.name != "DEFAULT"
        if given and portal_port != materials_port:
            fail(
                "give the portal's port once: --materials-port is the old name of --portal-port", 2
            )
        portal_port = materials_port
    require_cjk_font()
    from examflow.cli.local_stack import local_stack

    if demo:  # the portal shows the demo sitting as a school saw it during publicity
        os.environ.setdefault("EXAMFLOW_PORTAL_AS_OF", DEMO_PORTAL_AS_OF)
    with local_stack(port, smtp_port, portal_port) as stack:
        out.print(
            f"Prefect UI: {stack.ui_url}   school portal: {stack.portal_url}/   "
            f"mail: {stack.mail_dir}/ (SMTP 127.0.0.1:{smtp_port})",
            soft_wrap=True,
        )
        if demo:
            from examflow.cli.demo import run_demo

            run_demo()
            out.print(f"a school's view (portal clocked at {DEMO_PORTAL_AS_OF}):", soft_wrap=True)
            out.print(demo_signin_link(), soft_wrap=True)
        out.print("serving deployments; Ctrl-C to stop")
        serve(calendars=[], remind=[3, 1])


def demo() -> None:
    """Rehearse sitting 2024-1 end to end on a simulated clock, against `examflow up` if it
    runs (PREFECT_API_URL, EXAMFLOW_SMTP_*), else ephemeral Prefect and a sink of its own."""
    require_cjk_font()
    prepare_prefect_env()
    from examflow.cli.demo import run_demo

    with _local_sink_unless_smtp_answers():
        run_demo()
    out.print(
        f"a school's view: `examflow portal serve --as-of {DEMO_PORTAL_AS_OF}`, then open",
        soft_wrap=True,
    )
    out.print(demo_signin_link(), soft_wrap=True)


@contextmanager
def _local_sink_unless_smtp_answers() -> Iterator[None]:
    """The demo alone (no `examflow up`) mails into a sink of its own under var/mail, on the
    configured port, when that is the local default and nothing answers there; a configured
    or running SMTP server is used as it is."""
    import socket

    from notifications.sink import MailSink

    settings = get_settings()
    if settings.smtp_host != "127.0.0.1" or settings.smtp_username:
        yield
        return
    with socket.socket() as probe:
        probe.settimeout(1)
        answers = probe.connect_ex((settings.smtp_host, settings.smtp_port)) == 0
    if answers:
        yield
        return
    with MailSink(settings.mail_dir, settings.smtp_port):
        out.print(f"SMTP sink on 127.0.0.1:{settings.smtp_port}, mail in {settings.mail_dir}/")
        yield


DEMO_PORTAL_AS_OF = "2024-05-30T10:00:00"  # inside the demo sitting's publicity window


def demo_signin_link() -> str:
    """A sign-in link for the demo's first site with candidates, opening its page of the demo
    sitting; valid a week from the portal's demo clock, and reusable (not for production)."""
    from datetime import timedelta

    from sqlmodel import col, select

    from examflow.cli.console import parse_as_of
    from examflow.cli.demo import SITTING
    from examflow.settings import get_settings
    from models.portal_access import issue_link, portal_signin_url
    from models.registration import Registration
    from models.schools import School

    as_of = parse_as_of(DEMO_PORTAL_AS_OF)
    with session_scope() as session:
        school = session.exec(
            select(School)
            .join(Registration, col(Registration.school_code) == col(School.code))
            .where(Registration.sitting_code == SITTING, col(School.is_site).is_(True))
            .order_by(col(School.code))
        ).first()
        if school is None:
            fail(f"no site has candidates in {SITTING}")
        token = issue_link(
            session,
            school.code,
            school.affairs_email,
            as_of,
            expires_at=as_of + timedelta(days=7),
            single_use=False,
            sitting_code=SITTING,
            stage="publicity",
        )
        name = school.name
    return f"{name}：{portal_signin_url(get_settings().public_url, token)}"
