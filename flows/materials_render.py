"""Render a sitting's materials ahead, spread over processes by Dask (prefect-dask).

The stale sites (their current data has no stored PDFs: tasks.site_pdfs.stale_sites) are
dealt into a few batches of about equal work, BATCHES_PER_WORKER per worker of the cluster,
and each batch becomes one Prefect task submitted to a `DaskTaskRunner`: a local cluster of
one single-threaded worker process per core by default, or the existing cluster at
EXAMFLOW_DASK_ADDRESS. A task renders its batch's sites one after another and returns what
it did per site (not the PDFs). Sites whose PDFs are stored already are not rendered again,
and when none is stale no cluster is started at all. After the render, the files of the
sitting's data that is no longer current (a re-arranged site's old version) are removed.

Batches, not one task per site: every task submitted costs the flow's process a copy of
Prefect's settings and context and the worker a few calls to the Prefect API, about half a
second of a core together on a busy 2-core machine; a sitting's 1,500 tasks spent more on
that than on half its rendering.
"""

import heapq
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from prefect import flow
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect_dask.task_runners import DaskTaskRunner
from pydantic import BaseModel

from examflow.settings import get_settings
from models.materials_data import SiteMaterials
from tasks.materials import render_sites_materials
from tasks.site_pdfs import (
    RenderedSite,
    is_stored,
    materials_store,
    pack_sites,
    prune_sitting,
    sites_materials,
    stale_sites,
)

# Batches per worker thread of the cluster: enough that a worker finishing early takes
# another (the last batch's wait stays short), few enough that tasks cost little.
BATCHES_PER_WORKER = 4

# The CLI's progress bar: called in the flow's process with each site as its batch finishes.
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
    pruned: int = 0  # PDFs removed: their data is no longer any active site's


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


def site_work(m: SiteMaterials) -> int:
    """A site's rendering work, in about pages: its candidates (a ticket, a label and a
    sign-in line each) and its rooms and slots (a door sign each, a sheet and label page
    begun)."""
    return len(m.candidates) + 2 * len(m.rooms) + 1


def balanced_batches(sites: list[SiteMaterials], count: int) -> list[list[SiteMaterials]]:
    """At most `count` non-empty batches of about equal work (site_work): the largest site
    first, each into the lightest batch so far. Heaviest batch first; sites in input order
    within a batch."""
    count = max(1, min(count, len(sites)))
    heap = [(0, index) for index in range(count)]
    chosen: list[list[int]] = [[] for _ in range(count)]
    work = [0] * count
    for position in sorted(range(len(sites)), key=lambda i: -site_work(sites[i])):
        load, index = heapq.heappop(heap)
        chosen[index].append(position)
        work[index] = load + site_work(sites[position])
        heapq.heappush(heap, (work[index], index))
    order = sorted((i for i in range(count) if chosen[i]), key=lambda i: -work[i])
    return [[sites[p] for p in sorted(chosen[i])] for i in order]


def runner_workers() -> int:
    """Worker threads of the running flow's Dask cluster (1 outside a Dask runner)."""
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if isinstance(runner, DaskTaskRunner):
        threads: dict[str, int] = runner.client.nthreads()  # type: ignore[no-untyped-call]
        return max(1, sum(threads.values()))
    return 1


def render_in_batches(todo: list[SiteMaterials], store_root: str) -> int:
    """Inside a flow on a DaskTaskRunner: render `todo` into the store at `store_root` as
    balanced batches, one task each; returns the PDFs written. Each site is reported
    (report_site_done) as its batch finishes."""
    if not todo:
        return 0
    batches = balanced_batches(todo, BATCHES_PER_WORKER * runner_workers())
    futures = [
        render_sites_materials.submit(
            pack_sites(batch), store_root, label=f"{len(batch)} sites from {batch[0].site_code}"
        )
        for batch in batches
    ]
    files = 0
    for future in as_completed(futures):
        for done in future.result():
            files += len(done.rendered)
            report_site_done(done)
    return files


@flow(name="render-materials", flow_run_name="{sitting} · render materials", persist_result=False)
def render_materials(sitting: str, sites: list[str]) -> RenderSummary:
    """Render the named sites' missing PDFs into the materials store, in batches of sites
    spread over the Dask cluster's workers."""
    store = materials_store()
    todo = stale_sites(sitting, sites, store)
    # absolute: a worker of a remote cluster would resolve a relative path (the default
    # var/materials/store) against its own working directory, and write where no portal looks.
    # Not resolve(): it would follow a symlink on this machine to a path workers may not mount
    files = render_in_batches(todo, str(store.root.absolute()))
    return RenderSummary(sitting=sitting, sites=len(todo), files=files)


def render_ahead(
    sitting: str, sites: list[str] | None = None, workers: int | None = None
) -> RenderSummary:
    """Render whatever is stale of a sitting's active sites (or the named ones); start the
    Dask runner only when something is. For the whole sitting (no `sites`), then remove the
    stored files that no active site's current data refers to."""
    store = materials_store()
    read_at = time.time()
    current = sites_materials(sitting, sites)
    stale = [m.site_code for m in current if not is_stored(store, m)]
    summary = RenderSummary(sitting=sitting, sites=0, files=0)
    if stale:
        runner: Any = dask_task_runner(workers)  # prefect-dask's futures type is its own
        summary = render_materials.with_options(task_runner=runner)(sitting, stale)
    if sites is None:  # only after a render that succeeded: a failed one raised above
        summary.pruned = prune_sitting(store, sitting, current, read_at)
    return summary
