"""A progress count of sites whose PDFs have arrived in the materials store.

`examflow materials` renders on Dask in batches, and a batch reports its sites only when the
whole batch is done: at national scale the bar would sit still for a minute at a time. The
store is the truth of what is rendered, so a thread looks at it twice a second (a stat per
file, the sites' keys computed once) and the count follows each site as its four PDFs land.
"""

import threading
from collections.abc import Callable
from types import TracebackType

from adapters.materials_store import MaterialsStore
from models.materials_data import SiteMaterials
from notifications.documents.materials import MATERIAL_KINDS, site_digest

POLL_SECONDS = 0.5


class StoreWatch:
    """Calls `on_count(n)` with how many of `sites` are done, whenever that grows: done when
    all four PDFs are in the store for the site's current data, or when reported (`done`)."""

    def __init__(
        self, store: MaterialsStore, sites: list[SiteMaterials], on_count: Callable[[int], None]
    ) -> None:
        self._store, self._on_count = store, on_count
        self._waiting = {m.site_code: site_digest(m) for m in sites}
        self._done: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="materials-store-watch")

    def done(self, *site_codes: str) -> None:
        with self._lock:
            before = len(self._done)
            self._done.update(site_codes)
            count = len(self._done)
        if count != before:
            self._on_count(count)

    def _stored(self, digest: str) -> bool:
        return all(self._store.get(digest, kind) is not None for kind in MATERIAL_KINDS)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            with self._lock:
                waiting = [(c, d) for c, d in self._waiting.items() if c not in self._done]
            self.done(*(code for code, digest in waiting if self._stored(digest)))

    def __enter__(self) -> "StoreWatch":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
