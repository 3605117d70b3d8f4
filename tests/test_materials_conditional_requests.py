"""What a link checker or a cache asks of a site's PDF, without downloading it: a HEAD gets
the download's headers and no body and records nothing (mail scanners and link checkers
send HEAD to mailed links; only a real download is the site's fact); a cache revalidating
its copy gets a 304 however it quotes the ETag back (RFC 9110 compares If-None-Match weakly)."""

from pathlib import Path

import pytest
from sqlmodel import select

from adapters.materials_store import StoredPdf
from examflow.db import session_scope
from examflow.settings import get_settings, link_secret
from models.facts import SiteFact, facts_by_site
from models.links import materials_link
from models.portal_access import PortalAudit
from notifications.sink import MailSink
from portal.server import portal_server
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.test_materials_serving import get
from tests.test_portal_security import ask_for_link, mailed_tokens, portal_at, sign_in

ARRANGED = "2024-05-06T09:00:00"
SITE_DAY = "2024-05-06T10:00:00"  # 2024-1's materials window is open
DOWNLOAD_HEADERS = ("etag", "content-length", "accept-ranges", "content-type")


@pytest.fixture
def stored_tickets(register_loaded: Path, needs_cjk_font: None) -> StoredPdf:
    """P3 arranged with two candidates, its PDFs rendered ahead as the materials stage does;
    its tickets file."""
    from tasks.site_pdfs import materials_store, render_into, sites_materials

    rows = [["P3", "王小明", new_id(), "初级", ""], ["P3", "李娜", new_id(), "中级", ""]]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", ARRANGED).exit_code == 0
    (site,) = sites_materials("2024-1", ["P3"])
    done = render_into(materials_store(), site)
    stored = materials_store().get(done.digest, "tickets")
    assert stored is not None
    return stored


fetch = get  # the serving tests' request, any method


def download_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in DOWNLOAD_HEADERS}


def test_a_head_on_a_mailed_link_answers_the_downloads_headers_and_records_no_download(
    stored_tickets: StoredPdf,
) -> None:
    on_disk = stored_tickets.path.read_bytes()
    expected = {
        "etag": stored_tickets.etag,
        "content-length": str(len(on_disk)),
        "accept-ranges": "bytes",
        "content-type": "application/pdf",
    }
    with portal_server(get_settings()) as base:  # the real server: uvicorn's HEAD handling
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        status, headers, body = fetch(url, "HEAD")
        assert (status, body) == (200, b"")
        assert download_headers(headers) == expected
        with session_scope() as session:
            assert facts_by_site(session, "2024-1") == {}

        status, headers, body = fetch(url)
        assert (status, body) == (200, on_disk)
        assert download_headers(headers) == expected
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.tickets_downloaded}}


def test_a_head_from_the_sites_page_records_no_fact_no_audit_row_and_no_event(
    stored_tickets: StoredPdf, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    emitted: list[tuple[str, str, str, str]] = []
    monkeypatch.setattr(  # the Prefect event, at the route's boundary to Prefect
        "portal.routes.materials.emit_school_acted",
        lambda *event: emitted.append(event),
    )
    url = "/schools/P3/sittings/2024-1/materials/tickets.pdf"
    with portal_at(SITE_DAY) as client:
        assert ask_for_link(client, "P3", "a@p3.edu.cn") == 200
        assert sign_in(client, mailed_tokens(mail_sink)[-1]) == 303

        head = client.head(url)
        assert (head.status_code, head.content) == (200, b"")
        assert download_headers(dict(head.headers))["etag"] == stored_tickets.etag
        assert head.headers["content-length"] == str(stored_tickets.size)
        with session_scope() as session:
            assert facts_by_site(session, "2024-1") == {}
            assert session.exec(select(PortalAudit.action)).all() == []
        assert emitted == []

        got = client.get(url)
        assert (got.status_code, got.content) == (200, stored_tickets.path.read_bytes())
        assert download_headers(dict(got.headers)) == download_headers(dict(head.headers))
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.tickets_downloaded}}
        assert session.exec(select(PortalAudit.action)).all() == ["download:tickets"]
    assert emitted == [("2024-1", "materials", "download:tickets", "P3")]


def test_an_if_none_match_naming_the_stored_etag_weakly_answers_304(
    stored_tickets: StoredPdf,
) -> None:
    weak = f"W/{stored_tickets.etag}"
    with portal_server(get_settings()) as base:
        url = materials_link(base, link_secret(), "2024-1", "P3", "tickets")
        status, headers, body = fetch(url, **{"If-None-Match": weak})
        assert (status, body, headers["etag"]) == (304, b"", stored_tickets.etag)

        among_others = f'"an-older-version-tickets", {weak}'
        status, _, body = fetch(url, **{"If-None-Match": among_others})
        assert (status, body) == (304, b"")

        status, _, body = fetch(url, **{"If-None-Match": 'W/"an-older-version-tickets"'})
        assert (status, body) == (200, stored_tickets.path.read_bytes())
