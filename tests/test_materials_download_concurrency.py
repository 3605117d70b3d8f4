"""Downloads while files are being rendered in requests: a site whose file is stored is served
at once, however many other sites' missing files are being rendered at that moment (a render
runs on the portal's shared threads, not on the few that read sites' data)."""

import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from examflow.settings import get_settings, link_secret
from models.links import materials_link
from models.materials_data import SiteMaterials
from portal.routes.materials import SITE_DATA_THREADS
from portal.server import portal_server
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file

SITES = ["P1", "P3", "P4"]  # the register's exam sites


@pytest.fixture
def three_sites(register_loaded: Path, needs_cjk_font: None) -> Path:
    rows = [[site, f"考生{site}", new_id(), "初级", ""] for site in SITES]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T09:00").exit_code == 0
    return register_loaded


def test_a_stored_file_is_served_while_other_sites_files_are_rendered_in_requests(
    three_sites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifications.documents import materials
    from tasks.site_pdfs import materials_store, render_into, sites_materials

    (p1,) = sites_materials("2024-1", ["P1"])
    render_into(materials_store(), p1)  # P1's files rendered ahead; P3's and P4's are missing
    rendering = threading.Semaphore(0)
    release = threading.Event()
    real: Callable[[SiteMaterials], bytes] = materials.RENDERERS["tickets"]

    def held(m: SiteMaterials) -> bytes:  # the real renderer, held until the test releases it
        rendering.release()
        assert release.wait(timeout=60)
        return real(m)

    monkeypatch.setitem(materials.RENDERERS, "tickets", held)
    slow = ["P3", "P4"]
    assert len(slow) >= SITE_DATA_THREADS  # enough renders to take every site-data thread
    with portal_server(get_settings()) as base:

        def url(site: str) -> str:
            return materials_link(base, link_secret(), "2024-1", site, "tickets")

        statuses: list[int] = []

        def download(site: str) -> None:
            with urllib.request.urlopen(url(site), timeout=60) as response:
                response.read()
                statuses.append(response.status)

        renders = [threading.Thread(target=download, args=(site,)) for site in slow]
        for thread in renders:
            thread.start()
        try:
            for _ in slow:
                assert rendering.acquire(timeout=60)  # both renders are under way
            with urllib.request.urlopen(url("P1"), timeout=10) as response:
                assert response.status == 200 and response.read()[:5] == b"%PDF-"
            assert statuses == []  # P1 answered while both renders were still held
        finally:
            release.set()
            for thread in renders:
                thread.join(timeout=60)
    assert statuses == [200, 200]
