"""Downloads while a file is being rendered in a request: a site whose file is stored is served
at once while another site's missing file is being rendered (a render runs on the portal's
shared threads; the event loop and the threads that read sites' data stay free)."""

import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from examflow.settings import get_settings, link_secret
from models.links import materials_link
from models.materials_data import SiteMaterials
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


def test_a_stored_file_is_served_while_another_sites_file_is_rendered_in_a_request(
    three_sites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifications.documents import materials
    from tasks.site_pdfs import materials_store, render_into, sites_materials

    (p1,) = sites_materials("2024-1", ["P1"])
    render_into(materials_store(), p1)  # P1's files rendered ahead; P3's are missing
    rendering = threading.Semaphore(0)
    release = threading.Event()
    real: Callable[[SiteMaterials], bytes] = materials.RENDERERS["tickets"]

    def held(m: SiteMaterials) -> bytes:  # the real renderer, held until the test releases it
        rendering.release()
        assert release.wait(timeout=60)
        return real(m)

    monkeypatch.setitem(materials.RENDERERS, "tickets", held)
    # One held render, not one per site-data thread: with two, CI once saw the second never
    # start within a minute (not reproduced since; see the closing note of that stop).
    slow = ["P3"]
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
                assert rendering.acquire(timeout=60)  # the render is under way
            with urllib.request.urlopen(url("P1"), timeout=10) as response:
                assert response.status == 200 and response.read()[:5] == b"%PDF-"
            assert statuses == []  # P1 answered while the render was still held
        finally:
            release.set()
            for thread in renders:
                thread.join(timeout=60)
    assert statuses == [200]
