"""Materials rendered ahead into a content-addressed store, on a Dask cluster through Prefect:
what goes into a site's PDFs decides its key; a changed site gets new files, an unchanged
site is not rendered again."""

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from examflow.settings import get_settings, link_secret
from examflow.synthetic import write_csv
from models.links import materials_link
from models.materials_data import SiteMaterials
from models.materials_key import materials_digest
from portal.server import portal_server
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.test_materials_pdf import make_site

if TYPE_CHECKING:
    from notifications.sink import MailSink

LAYOUT = [("机房101", "中级", 3), ("机房101", "初级", 2)]
KINDS = ["door_signs", "labels", "sign_in_sheets", "tickets"]


def test_same_materials_same_digest_and_the_renderer_version_is_part_of_it() -> None:
    site = make_site(LAYOUT)
    again = SiteMaterials.model_validate_json(site.model_dump_json())
    assert materials_digest(site, "r1") == materials_digest(again, "r1")
    assert materials_digest(site, "r1") != materials_digest(site, "r2")


def _changed(site: SiteMaterials, **room_changes: object) -> SiteMaterials:
    rooms = [site.rooms[0].model_copy(update=room_changes), *site.rooms[1:]]
    return site.model_copy(update={"rooms": rooms})


def test_a_moved_seat_a_changed_room_or_a_late_candidate_changes_the_digest() -> None:
    site = make_site(LAYOUT)
    first = site.rooms[0].candidates
    moved = [first[0].model_copy(update={"seat": 9}), *first[1:]]
    late = [*first, first[0].model_copy(update={"ticket_number": "T999", "seat": 4})]
    variants = {
        "seat moved": _changed(site, candidates=moved),
        "room renamed": _changed(site, room="机房109"),
        "room capacity": _changed(site, seats=31),
        "late registration": _changed(site, candidates=late),
        "site renamed": site.model_copy(update={"site_name": "新名字"}),
    }
    digests = {name: materials_digest(m, "r1") for name, m in variants.items()}
    assert materials_digest(site, "r1") not in digests.values()
    assert len(set(digests.values())) == len(variants)


def test_stale_sites_are_dealt_into_batches_of_about_equal_work_largest_site_first() -> None:
    from flows.materials_render import balanced_batches

    def site(code: str, candidates: int) -> SiteMaterials:
        one_room = make_site([("机房101", "初级", candidates)])
        return one_room.model_copy(update={"site_code": code})

    sizes = {"S10": 10, "S60": 60, "S5a": 5, "S30": 30, "S50": 50, "S20": 20, "S40": 40, "S5b": 5}
    sites = [site(code, n) for code, n in sizes.items()]
    batches = [[m.site_code for m in batch] for batch in balanced_batches(sites, 3)]
    # 60, 50, 40 open the three batches; 30, 20, 10 even them at 70 candidates each; the two
    # 5s go to the first two: 75, 75, 70. Heaviest first, sites in the order given.
    assert batches == [["S10", "S60", "S5a"], ["S50", "S20", "S5b"], ["S30", "S40"]]
    # never more batches than sites, and no site twice or left out
    assert [[m.site_code for m in b] for b in balanced_batches(sites[:2], 8)] == [["S60"], ["S10"]]


def test_prune_removes_a_sittings_files_no_current_data_refers_to_and_nothing_else(
    tmp_path: Path,
) -> None:
    import time

    from adapters.materials_store import MaterialsStore

    store = MaterialsStore(tmp_path / "store")
    old, current, other = "a1" * 16, "b2" * 16, "c3" * 16
    for digest, group in ((old, "2024-1"), (current, "2024-1"), (other, "2024-2")):
        for kind in ("tickets", "labels"):
            store.ensure(digest, kind, lambda: b"%PDF-1.4 test", group=group)
    time.sleep(0.25)  # (file times lag time.time() by up to a clock tick)
    read_at = time.time()  # the caller's reading of what is current: after every file above
    late = "d4" * 16  # rendered from data newer than the reading: not judged by it
    store.ensure(late, "tickets", lambda: b"%PDF-1.4 test", group="2024-1")

    assert store.prune("2024-1", {current}, written_before=read_at) == 2
    left = sorted(p.name for p in (tmp_path / "store").rglob("*.pdf"))
    assert left == sorted(
        f"{digest}-{kind}.pdf"
        for digest, kind in [
            (current, "tickets"),
            (current, "labels"),
            (other, "tickets"),  # another sitting's: never this sitting's prune's business
            (other, "labels"),
            (late, "tickets"),
        ]
    )
    assert store.get(old, "tickets") is None and store.get(current, "tickets") is not None
    assert store.prune("2024-1", {current}, written_before=read_at) == 0  # nothing left to do


# The runner path: a real Prefect server, a 2-worker local Dask cluster, SQLite database


@pytest.fixture
def two_sites(register_loaded: Path, needs_cjk_font: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """2024-1 arranged: P3 with 3 candidates in rooms 301/302, P1 with 2."""
    monkeypatch.delenv("EXAMFLOW_DASK_ADDRESS", raising=False)
    monkeypatch.delenv("EXAMFLOW_MATERIALS_DIR", raising=False)
    rooms = write_csv(
        register_loaded / "rooms.csv",
        ["考点代码", "考场", "座位数"],
        [["P3", "301", "2"], ["P3", "302", "2"]],
    )
    assert run("rooms", "import", str(rooms)).exit_code == 0
    rows = [["P3", f"甲{i}", new_id(), "初级", ""] for i in range(3)]
    rows += [["P1", f"乙{i}", new_id(), "中级", ""] for i in range(2)]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    return register_loaded


def rearrange_p3(folder: Path) -> None:
    """P3's room 302 renamed 303, and the sitting arranged again: P3's materials change."""
    rooms = write_csv(
        folder / "rooms2.csv",
        ["考点代码", "考场", "座位数"],
        [["P3", "301", "2"], ["P3", "303", "2"]],
    )
    assert run("rooms", "import", str(rooms)).exit_code == 0
    assert run("arrange", "2024-1", "--as-of", "2024-05-07T23:00").exit_code == 0


@contextmanager
def sites_done() -> Iterator[dict[str, str]]:
    """Each site the render reports done, with the digest its PDFs are stored under."""
    from flows.materials_render import ON_SITE_DONE

    done: dict[str, str] = {}
    token = ON_SITE_DONE.set(lambda site: done.update({site.site: site.digest}))
    try:
        yield done
    finally:
        ON_SITE_DONE.reset(token)


def stored_files(home: Path) -> list[str]:
    return sorted(p.stem.split("-", 1)[1] for p in (home / "materials" / "store").rglob("*.pdf"))


def stored_digests(home: Path) -> dict[str, list[str]]:
    """digest -> the kinds stored under it."""
    found: dict[str, list[str]] = {}
    for path in sorted((home / "materials" / "store").rglob("*.pdf")):
        digest, kind = path.stem.split("-", 1)
        found.setdefault(digest, []).append(kind)
    return found


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_changed_arrangement_rerenders_exactly_the_sites_it_touched_on_a_dask_cluster(
    two_sites: Path, home: Path
) -> None:
    from flows.materials_render import render_ahead

    with sites_done() as done:
        first = render_ahead("2024-1", workers=2)
    assert (first.sites, first.files, first.pruned) == (2, 8, 0)
    assert sorted(done) == ["P1", "P3"]
    before = dict(done)
    assert stored_digests(home) == {before["P1"]: KINDS, before["P3"]: KINDS}

    with sites_done() as done:  # nothing changed: nothing rendered, no cluster started
        again = render_ahead("2024-1", workers=2)
    assert (again.sites, again.files, again.pruned, done) == (0, 0, 0, {})

    rearrange_p3(two_sites)  # P1 untouched
    with sites_done() as done:
        changed = render_ahead("2024-1", workers=2)
    assert list(done) == ["P3"] and done["P3"] != before["P3"]
    assert (changed.sites, changed.files) == (1, 4)
    # P3's old files are gone: only the current data's files remain
    assert changed.pruned == 4
    assert stored_digests(home) == {before["P1"]: KINDS, done["P3"]: KINDS}

    # and the current ones are what the links serve, straight from the store
    with portal_server(get_settings()) as base:
        for site, digest in (("P1", before["P1"]), ("P3", done["P3"])):
            url = materials_link(base, link_secret(), "2024-1", site, "door_signs")
            with urllib.request.urlopen(url, timeout=60) as response:
                body, etag = response.read(), response.headers["ETag"]
            stored = home / "materials" / "store" / digest[:2] / f"{digest}-door_signs.pdf"
            assert body == stored.read_bytes() and digest[:32] in etag
    assert stored_digests(home) == {before["P1"]: KINDS, done["P3"]: KINDS}


def test_a_site_stored_already_is_not_stale_and_a_new_candidate_makes_it_stale(
    two_sites: Path, home: Path
) -> None:
    from tasks.site_pdfs import materials_store, render_into, sites_materials, stale_sites

    store = materials_store()
    assert [m.site_code for m in stale_sites("2024-1")] == ["P1", "P3"]
    for materials in sites_materials("2024-1", ["P1"]):
        assert render_into(store, materials).rendered == [
            "tickets",
            "labels",
            "door_signs",
            "sign_in_sheets",
        ]
        assert render_into(store, materials).rendered == []  # stored: not rendered again
    assert [m.site_code for m in stale_sites("2024-1")] == ["P3"]


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_the_materials_command_renders_stale_sites_on_dask_and_copies_from_the_store(
    two_sites: Path, home: Path
) -> None:
    out = two_sites / "out"
    result = run("materials", "2024-1", "-o", str(out), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "P1: 2024-1-P1-tickets.pdf" in result.stdout and "2 site(s)" in result.stdout
    written = sorted(p.name for p in out.glob("*.pdf"))
    assert written == sorted(f"2024-1-{site}-{kind}.pdf" for site in ("P1", "P3") for kind in KINDS)
    stored = {p.read_bytes() for p in (home / "materials" / "store").rglob("*.pdf")}
    assert {p.read_bytes() for p in out.glob("*.pdf")} == stored


def test_the_materials_command_for_the_whole_sitting_removes_files_of_data_no_longer_current(
    two_sites: Path, home: Path
) -> None:
    out = two_sites / "out"
    first = run("materials", "2024-1", "-o", str(out), "--workers", "1")
    assert first.exit_code == 0, first.output
    before = stored_digests(home)
    assert len(before) == 2 and "removed" not in first.stdout

    rearrange_p3(two_sites)  # P3's old files are no longer current data
    one_site = run("materials", "2024-1", "-o", str(out), "--site", "P3", "--workers", "1")
    assert one_site.exit_code == 0, one_site.output
    assert len(stored_digests(home)) == 3  # one site's run cannot judge the sitting: no prune

    whole = run("materials", "2024-1", "-o", str(out), "--workers", "1")
    assert whole.exit_code == 0, whole.output
    assert "removed 4 stored PDF(s) of data no longer current" in whole.stdout
    after = stored_digests(home)
    assert len(after) == 2 and len(set(after) & set(before)) == 1  # P1's kept, P3's old gone
    stored = {p.read_bytes() for p in (home / "materials" / "store").rglob("*.pdf")}
    assert {p.read_bytes() for p in out.glob("*.pdf")} == stored


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_the_materials_open_checkpoint_renders_every_site_before_it_mails_the_links(
    two_sites: Path, home: Path, mail_sink: "MailSink"
) -> None:
    from datetime import datetime

    from flows.sitting_checkpoint import sitting_checkpoint
    from models.domain import SHANGHAI, Checkpoint, StageCode

    as_of = datetime(2024, 5, 6, 9, tzinfo=SHANGHAI)
    state = sitting_checkpoint(
        "2024-1", StageCode.materials, Checkpoint.open, as_of, return_state=True
    )
    assert state.name == "Open" and state.result().sent >= 2  # P1 and P3 got their links
    assert stored_files(home) == sorted(KINDS * 2)


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_an_existing_dask_cluster_at_examflow_dask_address_renders_the_sites(
    two_sites: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, LocalCluster

    from flows.materials_render import _api_url, render_ahead

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"PREFECT_API_URL": _api_url()},  # as ops configure their cluster's workers
    ) as cluster:
        monkeypatch.setenv("EXAMFLOW_DASK_ADDRESS", cluster.scheduler_address)
        with Client(cluster) as client:
            summary = render_ahead("2024-1", workers=5)  # workers: the local cluster's only
            ran = client.run_on_scheduler(
                lambda dask_scheduler: {
                    name: prefix.max_exec_time > 0
                    for name, prefix in dask_scheduler.task_prefixes.items()
                }
            )
            assert ran == {"render_sites": True}  # the sites' batch ran on this cluster
    assert (summary.sites, summary.files) == (2, 8)
    assert stored_files(home) == sorted(KINDS * 2)


def test_one_sites_materials_read_alone_are_those_read_with_every_site(
    two_sites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examflow.db import session_scope
    from models import site_materials as reading
    from models.sittings import get_sitting

    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        alone = {code: reading.site_materials(session, sitting, code) for code in ("P3", "P1")}
        monkeypatch.setattr(reading, "FEW_SITES", 0)  # the render's path: every site's rows
        together = reading.sitting_materials(session, sitting, ["P1", "P3"])
    assert [r.room for r in alone["P3"].rooms] == ["301", "302"]  # the rooms file's
    assert alone["P1"].rooms and alone["P1"].site_name != "P1"  # seats and name of P1
    assert alone == together
    assert {materials_digest(m, "r1") for m in alone.values()} == {
        materials_digest(m, "r1") for m in together.values()
    }
