"""`examflow materials`' progress follows each site's PDFs into the store, not only the end of
the Dask batch the site was rendered in."""

import time
from pathlib import Path

from adapters.materials_store import MaterialsStore
from examflow.cli.store_watch import POLL_SECONDS, StoreWatch
from notifications.documents.materials import MATERIAL_KINDS, site_digest
from tests.test_materials_pdf import make_site

LAYOUT = [("机房101", "中级", 3), ("机房101", "初级", 2)]


def wait_for(counts: list[int], value: int) -> None:
    deadline = time.monotonic() + 20 * POLL_SECONDS
    while (not counts or counts[-1] != value) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 5)


def test_a_site_counts_once_all_four_pdfs_of_its_current_data_are_stored(tmp_path: Path) -> None:
    store = MaterialsStore(tmp_path / "store")
    first = make_site(LAYOUT).model_copy(update={"site_code": "S1"})
    second = make_site(LAYOUT).model_copy(update={"site_code": "S2", "site_name": "二号考点"})
    counts: list[int] = []
    with StoreWatch(store, [first, second], counts.append):
        for kind in MATERIAL_KINDS[:-1]:
            store.put(site_digest(first), kind, b"%PDF-1.4 stand-in")
        time.sleep(3 * POLL_SECONDS)
        assert counts == []  # three of four files: not done
        store.put(site_digest(first), MATERIAL_KINDS[-1], b"%PDF-1.4 stand-in")
        wait_for(counts, 1)
        assert counts == [1]


def test_a_site_reported_done_by_its_batch_is_counted_once_whether_or_not_seen_in_the_store(
    tmp_path: Path,
) -> None:
    store = MaterialsStore(tmp_path / "store")
    first = make_site(LAYOUT).model_copy(update={"site_code": "S1"})
    second = make_site(LAYOUT).model_copy(update={"site_code": "S2", "site_name": "二号考点"})
    counts: list[int] = []
    with StoreWatch(store, [first, second], counts.append) as watch:
        for kind in MATERIAL_KINDS:
            store.put(site_digest(first), kind, b"%PDF-1.4 stand-in")
        wait_for(counts, 1)
        watch.done("S1")  # its batch reports it after the store showed it: no second count
        watch.done("S2")
    assert counts == [1, 2]
