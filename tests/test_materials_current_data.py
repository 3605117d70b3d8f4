"""A download is always of the site's current data: the stored file is looked up under the
digest of the data as the request reads it, so a late registration (re-arranged) is served
its new file at once, by the same running portal, and never the old one."""

import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from examflow.settings import get_settings, link_secret
from models.links import materials_link
from portal.server import portal_server
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file


def register_and_arrange(folder: Path, name: str, arranged_at: str) -> None:
    rows = [["P3", name, new_id(), "初级", ""]]
    registered = run(
        "register", "2024-1", str(reg_file(folder, rows, f"{name}.csv")), "--as-of", OPEN
    )
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", arranged_at).exit_code == 0


def fetch(url: str, **headers: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["ETag"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["ETag"], error.read()


def names_in(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(pdf)).pages)


def test_a_late_registration_is_downloaded_at_once_and_the_old_file_is_never_served(
    register_loaded: Path, needs_cjk_font: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXAMFLOW_MATERIALS_DIR", raising=False)
    register_and_arrange(register_loaded, "王小明", "2024-05-06T09:00")
    with portal_server(get_settings()) as base:
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        status, before, first = fetch(url)
        assert status == 200 and "王小明" in names_in(first) and "李娜" not in names_in(first)

        register_and_arrange(register_loaded, "李娜", "2024-05-06T10:00")  # the portal runs on

        status, after, second = fetch(url, **{"If-None-Match": before})
        assert status == 200 and after != before  # the old ETag no longer names the file
        assert "王小明" in names_in(second) and "李娜" in names_in(second)
        assert fetch(url) == (200, after, second)


def test_a_repeat_download_of_unchanged_data_does_not_build_the_sites_materials_again(
    register_loaded: Path, needs_cjk_font: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examflow import materials_server

    monkeypatch.delenv("EXAMFLOW_MATERIALS_DIR", raising=False)
    builds: list[str] = []
    build = materials_server.build_site

    def counted(sitting: Any, reading: Any) -> Any:
        builds.append(reading.site_code)
        return build(sitting, reading)

    monkeypatch.setattr(materials_server, "build_site", counted)
    register_and_arrange(register_loaded, "王小明", "2024-05-06T09:00")
    with portal_server(get_settings()) as base:
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        first = fetch(url)
        assert first[0] == 200 and builds == ["P3"]  # once: its digest, then its render
        assert fetch(url) == first and builds == ["P3"]  # read again, not built again
        register_and_arrange(register_loaded, "李娜", "2024-05-06T10:00")
        status, etag, pdf = fetch(url)
        assert status == 200 and etag != first[1] and "李娜" in names_in(pdf)
        assert builds == ["P3", "P3"]
