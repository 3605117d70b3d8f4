"""Render a sitting's materials ahead, spread over processes by Dask (prefect-dask).

Each stale site (its current data has no stored PDFs: tasks.materials.stale_sites) becomes
one Prefect task submitted to a `DaskTaskRunner`: a local cluster of one single-threaded
worker process per core by default, or the existing cluster at EXAMFLOW_DASK_ADDRESS. Sites
whose PDFs are stored already are not rendered again, and when none is stale no cluster is
started at all.
"""

import os
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from prefect import flow
from prefect.futures import as_completed
from prefect_dask.task_runners import DaskTaskRunner
from pydantic import BaseModel

from examflow.settings import get_settings
from tasks.materials import RenderedSite, materials_store, render_site_materials, stale_sites

# The CLI's progress bar: called in the flow's process with each site as it finishes.
ON_SITE_DONE: ContextVar[Callable[[RenderedSite], None] | None] = ContextVar(
    "materials_on_site_done", default=None
)


def report_site_done(done: RenderedSite) -> None:
    # A function of its own: the flow's code is pickled for Dask with the globals it uses,
    # and a ContextVar cannot be pickled (a module-level function goes by reference).
    on_done = ON_SITE_DONE.get()
    if on_done:
        on_done(done)


class RenderSummary(BaseModel):
    sitting: str
    sites: int  # sites rendered (stale ones)
    files: int  # PDFs written


def dask_task_runner(workers: int | None = None) -> DaskTaskRunner:
    """The existing cluster at EXAMFLOW_DASK_ADDRESS, else a local one: `workers` processes
    (default: one per core), one thread each (reportlab holds the GIL)."""
    address = get_settings().dask_address
    if address:
        return DaskTaskRunner(address=address)
    count = workers or os.cpu_count() or 1
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": count,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            # the workers report their task runs to this process's Prefect API (an ephemeral
            # one included: without this, each worker process would start a server of its own)
            "env": {"PREFECT_API_URL": _api_url()},
        }
    )


def _api_url() -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


@flow(name="render-materials", flow_run_name="{sitting} · render materials", persist_result=False)
def render_materials(sitting: str, sites: list[str]) -> RenderSummary:
    """Render the named sites' missing PDFs into the materials store, one task per site."""
    store = materials_store()
    todo = stale_sites(sitting, sites, store)
    futures = [render_site_materials.submit(m, str(store.root)) for m in todo]
    files = 0
    for future in as_completed(futures):
        done = future.result()
        files += len(done.rendered)
        report_site_done(done)
    return RenderSummary(sitting=sitting, sites=len(todo), files=files)


def render_ahead(
    sitting: str, sites: list[str] | None = None, workers: int | None = None
) -> RenderSummary:
    """Render whatever is stale of a sitting's active sites (or the named ones); start the
    Dask runner only when something is."""
    stale = [m.site_code for m in stale_sites(sitting, sites)]
    if not stale:
        return RenderSummary(sitting=sitting, sites=0, files=0)
    runner: Any = dask_task_runner(workers)  # prefect-dask's futures type is its own
    return render_materials.with_options(task_runner=runner)(sitting, stale)
