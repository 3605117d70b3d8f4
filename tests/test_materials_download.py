"""Sites' materials: PDFs from the arrangement, served by the school portal through the signed
links already mailed to sites; a download records the fact."""

import re
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from examflow.db import session_scope
from examflow.settings import get_settings, link_secret
from models.facts import SiteFact, facts_by_site
from models.links import materials_link
from portal.server import portal_server
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file

FULL_ID = re.compile(r"\d{17}[\dX]")


@pytest.fixture
def arranged(register_loaded: Path, needs_cjk_font: None) -> tuple[Path, str]:
    id_number = new_id()
    rows = [["P3", "王小明", id_number, "初级", ""], ["P3", "李娜", new_id(), "中级", ""]]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    return register_loaded, id_number


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(data)).pages)


def test_materials_command_writes_four_pdfs_without_full_id_numbers(
    arranged: tuple[Path, str],
) -> None:
    folder, id_number = arranged
    result = run("materials", "2024-1", "--site", "P3", "-o", str(folder / "out"))
    assert result.exit_code == 0, result.output
    pdfs = sorted((folder / "out").glob("*.pdf"))
    assert [p.name for p in pdfs] == [
        "2024-1-P3-door_signs.pdf",
        "2024-1-P3-labels.pdf",
        "2024-1-P3-sign_in_sheets.pdf",
        "2024-1-P3-tickets.pdf",
    ]
    tickets = pdf_text((folder / "out" / "2024-1-P3-tickets.pdf").read_bytes())
    assert "王小明" in tickets and "202411P30001" in tickets
    assert id_number[:6] + "********" + id_number[-4:] in tickets
    for pdf in pdfs:
        assert not FULL_ID.search(pdf_text(pdf.read_bytes())), pdf.name
    with session_scope() as session:  # written by ops, not downloaded by the site
        assert facts_by_site(session, "2024-1") == {}


def test_a_download_through_the_signed_link_records_the_fact(arranged: tuple[Path, str]) -> None:
    with portal_server(get_settings()) as base:
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
            assert response.headers["Content-Type"] == "application/pdf"
        assert "王小明" in pdf_text(body)
        forged = url.replace("/P3/", "/P1/")  # P3's token does not open P1's materials
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=30)
        assert refused.value.code == 403
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.tickets_downloaded}}
