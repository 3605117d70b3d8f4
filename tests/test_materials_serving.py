"""Downloads served from the materials store: the stored file streamed with its content hash
as ETag, Content-Length and byte ranges, 304 on If-None-Match, the site's fact still recorded,
and a file not yet stored rendered once however many first requests arrive together."""

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from examflow.db import session_scope
from examflow.settings import get_settings, link_secret
from models.facts import SiteFact, facts_by_site
from models.links import materials_link
from models.materials_data import SiteMaterials
from portal.server import portal_server
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file


@pytest.fixture
def arranged(register_loaded: Path, needs_cjk_font: None) -> Path:
    rows = [["P3", "王小明", new_id(), "初级", ""], ["P3", "李娜", new_id(), "中级", ""]]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    return register_loaded


def get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {key.lower(): value for key, value in items}


@pytest.fixture
def counted_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every tickets rendering, by site (the real renderer, counted)."""
    from notifications.documents import materials

    calls: list[str] = []
    real: Callable[[SiteMaterials], bytes] = materials.RENDERERS["tickets"]

    def counting(m: SiteMaterials) -> bytes:
        calls.append(m.site_code)
        return real(m)

    monkeypatch.setitem(materials.RENDERERS, "tickets", counting)
    return calls


def test_a_stored_file_is_served_with_its_etag_length_ranges_and_a_304(
    arranged: Path, counted_renders: list[str]
) -> None:
    from tasks.site_pdfs import materials_store, render_into, sites_materials

    (site,) = sites_materials("2024-1", ["P3"])
    done = render_into(materials_store(), site)  # as the materials stage's open does
    assert counted_renders == ["P3"]
    stored = materials_store().get(done.digest, "tickets")
    assert stored is not None
    on_disk = stored.path.read_bytes()
    with portal_server(get_settings()) as base:
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        status, headers, body = get(url)
        assert status == 200 and body == on_disk
        assert headers["content-type"] == "application/pdf"
        assert headers["content-length"] == str(len(on_disk))
        assert headers["etag"] == stored.etag and done.digest[:32] in stored.etag
        assert headers["accept-ranges"] == "bytes"

        status, headers, body = get(url, **{"If-None-Match": stored.etag})
        assert (status, body, headers["etag"]) == (304, b"", stored.etag)

        status, headers, body = get(url, Range="bytes=100-199")
        assert (status, body) == (206, on_disk[100:200])
        assert headers["content-range"] == f"bytes 100-199/{len(on_disk)}"

        status, _, _ = get(url, **{"If-None-Match": '"an-older-version-tickets"'})
        assert status == 200
    assert counted_renders == ["P3"]  # served from the store: never rendered in a request
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.tickets_downloaded}}


def test_ten_concurrent_first_requests_for_a_missing_file_render_it_once(
    arranged: Path, counted_renders: list[str]
) -> None:
    with portal_server(get_settings()) as base:
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        start = threading.Barrier(10)
        results: list[tuple[int, dict[str, str], bytes]] = []

        def first_request() -> None:
            start.wait()
            results.append(get(url))

        threads = [threading.Thread(target=first_request) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert counted_renders == ["P3"]
    assert [status for status, _, _ in results] == [200] * 10
    assert len({body for _, _, body in results}) == 1
    assert len({headers["etag"] for _, headers, _ in results}) == 1


def test_the_store_renders_a_key_once_across_processes(tmp_path: Path) -> None:
    """The file lock: two processes asking for the same missing key, one renders."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from adapters.materials_store import MaterialsStore\n"
        "def render():\n"
        "    with open(sys.argv[2], 'a') as log: log.write('rendered\\n')\n"
        "    time.sleep(1.0)\n"
        "    return b'%PDF-1.4 test'\n"
        "store = MaterialsStore(Path(sys.argv[1]))\n"
        "print(store.ensure('ab' * 16, 'tickets', render, group='2024-1').rendered)\n"
    )
    log = tmp_path / "renders.log"
    root = Path(__file__).resolve().parents[1]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "store"), str(log)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in processes)
    assert outputs == ["False", "False", "True"]
    assert log.read_text() == "rendered\n"


def test_a_download_rendered_in_the_request_leaves_prefect_and_its_logging_out_of_the_portal(
    arranged: Path,
) -> None:
    """A portal worker that renders a missing PDF does not import Prefect: that would cost the
    request a second or two, and Prefect's logging set-up would replace the root logger's
    handlers, silencing the portal's access lines."""
    import subprocess
    import sys

    script = (
        "import logging, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from examflow.settings import link_secret\n"
        "from models.links import materials_link\n"
        "from portal.app import create_app\n"
        "handler = logging.StreamHandler(sys.stdout)\n"
        "logging.getLogger().addHandler(handler)\n"
        "logging.getLogger().setLevel(logging.INFO)\n"
        "url = materials_link('http://testserver', link_secret(), '2024-1', 'P3', 'tickets')\n"
        "with TestClient(create_app()) as client:\n"
        "    response = client.get(url)\n"
        "print('status', response.status_code, response.content[:5])\n"
        "print('prefect imported', 'prefect' in sys.modules)\n"
        "print('root handlers', logging.getLogger().handlers == [handler])\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "status 200 b'%PDF-'" in lines
    assert "GET /materials/2024-1/P3/tickets.pdf 200" in "\n".join(lines)
    assert "prefect imported False" in lines
    assert "root handlers True" in lines
