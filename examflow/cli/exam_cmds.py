"""examflow rooms import | arrange | attendance | materials"""

from pathlib import Path
from typing import Any

import typer

from examflow.cli.console import (
    AS_OF_HELP,
    ShowByDefault,
    fail,
    import_upload,
    out,
    parse_as_of,
)
from examflow.db import session_scope
from models.arrangement import arrange as arrange_rooms
from models.attendance import ATTENDANCE_IMPORTER
from models.rooms import ROOMS_IMPORTER
from models.sittings import UnknownSittingError, get_sitting

rooms_app = typer.Typer(help="Exam rooms of each site.", no_args_is_help=True)


@rooms_app.command("import")
def rooms_import(file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)) -> None:
    """Replace the rooms of the sites in the file (考点代码, 考场, 座位数); all rows or none."""
    stored = import_upload(ROOMS_IMPORTER, file, as_of=parse_as_of(as_of)).summary
    out.print(f"{file.name}: {stored.rooms} rooms at {stored.sites} sites")


def arrange(sitting: str, as_of: str | None = typer.Option(None, help=AS_OF_HELP)) -> None:
    """Arrange every registered candidate into a room, seat and slot (idempotent).

    Exit 1 when some site cannot seat everyone (the report says which site, level, how many).
    """
    try:
        with session_scope() as session:
            report = arrange_rooms(session, get_sitting(session, sitting), parse_as_of(as_of))
    except UnknownSittingError as exc:
        fail(str(exc))
    out.print(f"{sitting}: {report.seated} seated ({report.new} new, {report.moved} moved)")
    for site, level, n in report.shortfalls:
        out.print(f"  {site} {level}: {n} candidate(s) without a seat")
    if report.shortfalls:
        raise typer.Exit(1)


class ImportByDefault(ShowByDefault):
    """`attendance SITTING FILE` runs `attendance import SITTING FILE`, as it always did."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["import", *args]
        return super().parse_args(ctx, args)


attendance_app = typer.Typer(
    cls=ImportByDefault,
    help="Attendance: `attendance SITTING FILE` (or `attendance import`) records; `list` shows.",
    no_args_is_help=True,
)


@attendance_app.command("import")
def attendance(
    sitting: str, file: Path, as_of: str | None = typer.Option(None, help=AS_OF_HELP)
) -> None:
    """Record attendance from CSV/XLSX (准考证号, 出勤 出席/缺考); all rows or none."""
    marked = import_upload(ATTENDANCE_IMPORTER, file, as_of=parse_as_of(as_of), sitting=sitting)
    out.print(f"{file.name}: {marked.summary.present} present, {marked.summary.absent} absent")


materials_app = typer.Typer(
    cls=ShowByDefault,
    help="Exam materials: `materials SITTING` writes PDFs; `materials serve` serves site links.",
    no_args_is_help=True,
)


@materials_app.command("show")
def materials(
    sitting: str,
    site: str | None = typer.Option(None, help="One site (default: every active site)."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Folder (default var/materials/SITTING)."
    ),
    workers: int | None = typer.Option(
        None,
        help="Dask worker processes rendering the sites (default: one per core; "
        "EXAMFLOW_DASK_ADDRESS: that cluster's). 1: render here, without Dask.",
    ),
) -> None:
    """Write each site's admission tickets, desk labels, door signs and sign-in sheets (PDF).

    Sites whose PDFs are in the materials store for their current data are copied from it;
    the others are rendered first (on a Dask cluster when there are several), with a
    progress bar. For the whole sitting (no --site), the store's files of data no longer
    current are then removed, as the materials checkpoint does. Writing them here does not
    mark them downloaded: a site's own download through the link in its mail does (or
    `examflow mark`).
    """
    import shutil
    import time
    from functools import partial

    from rich.progress import Progress

    from examflow.cli.store_watch import StoreWatch
    from examflow.settings import get_settings
    from models.stages import active_sites
    from notifications.documents.materials import (
        MATERIAL_KINDS,
        RENDERERS,
        material_path,
        site_digest,
    )
    from tasks.site_pdfs import (
        materials_store,
        prune_sitting,
        render_into,
        sites_materials,
        stale_sites,
    )

    try:
        with session_scope() as session:
            get_sitting(session, sitting)
            sites = [site] if site else active_sites(session, sitting)
    except UnknownSittingError as exc:
        fail(str(exc))
    folder = output or get_settings().home / "materials" / sitting
    store = materials_store()
    stale = stale_sites(sitting, sites, store)
    if stale:
        with Progress(console=out, transient=not out.is_terminal) as progress:
            bar = progress.add_task(f"rendering {len(stale)} site(s)", total=len(stale))
            if len(stale) > 1 and workers != 1:
                from examflow.prefect_env import prepare_prefect_env

                prepare_prefect_env()
                from flows.materials_render import ON_SITE_DONE, render_ahead

                # A batch reports its sites when it finishes, a quarter of a worker's share
                # at a time: the bar also follows each site's PDFs arriving in the store.
                with StoreWatch(store, stale, lambda n: progress.update(bar, completed=n)) as w:
                    token = ON_SITE_DONE.set(lambda done: w.done(done.site))
                    try:
                        render_ahead(sitting, [m.site_code for m in stale], workers)
                    finally:
                        ON_SITE_DONE.reset(token)
            else:
                for m in stale:
                    render_into(store, m)
                    progress.advance(bar)
    folder.mkdir(parents=True, exist_ok=True)
    read_at = time.time()  # files written after this reading are not its to judge (prune)
    current = sites_materials(sitting, sites)
    for m in current:
        digest = site_digest(m)
        names = []
        for kind in MATERIAL_KINDS:
            # (rendered above; if removed from the store since, rendered again here)
            stored = store.ensure(digest, kind, partial(RENDERERS[kind], m), group=sitting)
            target = material_path(m, folder, kind)
            shutil.copyfile(stored.path, target)
            names.append(target.name)
        out.print(f"{m.site_code}: " + ", ".join(names))
    out.print(f"{len(sites)} site(s) → {folder}")
    if site is None:
        removed = prune_sitting(store, sitting, current, read_at)
        if removed:
            out.print(f"removed {removed} stored PDF(s) of data no longer current")


@materials_app.command("serve")
def serve_materials(
    port: int = typer.Option(
        8090, help="Port on 127.0.0.1 (EXAMFLOW_PUBLIC_URL is what mails link to)."
    ),
) -> None:
    """Serve sites' materials through their signed links (each download records its fact):
    the school portal serves them now, so this is `examflow portal serve --port PORT`."""
    from portal.server import serve

    out.print(f"serving the portal and materials on http://127.0.0.1:{port}/ (Ctrl-C stops)")
    serve("127.0.0.1", port)
