"""The school portal over HTTP (FastAPI's TestClient, the real app, a real SMTP sink): who
may sign in, with what, and what a signed-in school may see and do."""

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from models.facts import SiteFact, facts_by_site
from models.portal_access import PortalAudit, PortalLink, PortalSession
from models.registration import Registration
from notifications.sink import MailSink
from portal.app import create_app
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.mailbox import received, text_of

LINK = re.compile(r"https?://\S+/login\?t=([A-Za-z0-9_\-]+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LATER_31_MIN = "2024-04-20T10:31:00"
LATER_61_MIN = "2024-04-20T11:01:00"


def portal_at(as_of: str, public_url: str = "http://127.0.0.1:8090") -> TestClient:
    """The portal with its clock at ``as_of``, reached the way ``public_url`` says."""
    base = "https://testserver" if public_url.startswith("https") else "http://testserver"
    settings = Settings(portal_as_of=as_of, public_url=public_url)
    return TestClient(create_app(settings), base_url=base)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def ask_for_link(client: TestClient, school: str, address: str) -> int:
    csrf = csrf_of(client.get("/").text)
    response = client.post(
        "/signin", data={"school_code": school, "address": address, "csrf": csrf}
    )
    return response.status_code


def mailed_tokens(sink: MailSink) -> list[str]:
    return [m.group(1) for msg in received(sink.mail_dir) if (m := LINK.search(text_of(msg)))]


def sign_in(client: TestClient, token: str) -> int:
    page = client.get("/login", params={"t": token})
    if page.status_code != 200:
        return page.status_code
    response = client.post(
        "/login", data={"t": token, "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    return response.status_code


def server_lines(caplog: pytest.LogCaptureFixture) -> str:
    """What the server side logged (not the test's own HTTP client, which logs its URLs)."""
    client_side = ("httpx", "httpcore")
    return "\n".join(
        f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith(client_side)
    )


@pytest.fixture
def portal(register_loaded: Path, mail_sink: MailSink) -> Iterator[TestClient]:
    with portal_at(OPEN) as client:
        yield client


def signed_in_p3(client: TestClient, sink: MailSink) -> str:
    """Signs P3's exam-affairs contact in through a mailed link; returns the page's CSRF."""
    assert ask_for_link(client, "P3", "a@p3.edu.cn") == 200
    assert sign_in(client, mailed_tokens(sink)[-1]) == 303
    return csrf_of(client.get("/schools/P3/sittings/2024-1").text)


def test_a_link_is_mailed_only_to_a_registered_contact_and_the_page_answers_the_same(
    portal: TestClient, mail_sink: MailSink
) -> None:
    csrf = csrf_of(portal.get("/").text)
    registered = portal.post(
        "/signin", data={"school_code": "P3", "address": "a@p3.edu.cn", "csrf": csrf}
    )
    stranger = portal.post(
        "/signin", data={"school_code": "P3", "address": "x@elsewhere.cn", "csrf": csrf}
    )
    unknown_school = portal.post(
        "/signin", data={"school_code": "ZZ9", "address": "a@p3.edu.cn", "csrf": csrf}
    )

    def answer(html: str) -> str:
        return re.sub(r'value="[^"]*"', "", html)

    assert registered.status_code == stranger.status_code == unknown_school.status_code == 200
    assert answer(registered.text) == answer(stranger.text.replace("x@elsewhere.cn", "a@p3.edu.cn"))
    assert answer(registered.text) == answer(unknown_school.text.replace("ZZ9", "P3"))
    messages = received(mail_sink.mail_dir)
    assert [m["To"] for m in messages] == ["a@p3.edu.cn"]
    assert "四号职业技术学院" in text_of(messages[0])


def test_a_get_on_the_link_neither_signs_in_nor_uses_the_link_up(
    portal: TestClient, mail_sink: MailSink
) -> None:
    ask_for_link(portal, "P3", "a@p3.edu.cn")
    [token] = mailed_tokens(mail_sink)
    for _ in range(3):  # a mail scanner, a link preview, the person
        page = portal.get("/login", params={"t": token})
        assert page.status_code == 200 and ">登录</button>" in page.text
        assert "examflow_session" not in page.headers.get("set-cookie", "")
    assert portal.get("/schools/P3", follow_redirects=False).status_code == 303  # to the start
    with session_scope() as session:
        assert session.exec(select(PortalSession)).all() == []
    assert sign_in(portal, token) == 303
    assert portal.get("/schools/P3").status_code == 200


def test_a_replayed_single_use_link_is_refused(portal: TestClient, mail_sink: MailSink) -> None:
    ask_for_link(portal, "P3", "a@p3.edu.cn")
    [token] = mailed_tokens(mail_sink)
    assert sign_in(portal, token) == 303
    with portal_at(OPEN) as other_browser:
        assert other_browser.get("/login", params={"t": token}).status_code == 410
        replay = other_browser.post(
            "/login", data={"t": token, "csrf": csrf_of(other_browser.get("/").text)}
        )
        assert replay.status_code == 410
        assert other_browser.get("/schools/P3", follow_redirects=False).status_code == 303
    with session_scope() as session:
        assert len(session.exec(select(PortalSession)).all()) == 1


def test_a_requested_link_expires_after_30_minutes(portal: TestClient, mail_sink: MailSink) -> None:
    ask_for_link(portal, "P3", "a@p3.edu.cn")
    [token] = mailed_tokens(mail_sink)
    with portal_at(LATER_31_MIN) as later:
        assert sign_in(later, token) == 410
    with portal_at("2024-04-20T10:29:00") as in_time:
        assert sign_in(in_time, token) == 303


def test_a_post_without_the_csrf_token_is_refused(portal: TestClient, mail_sink: MailSink) -> None:
    signed_in_p3(portal, mail_sink)
    facts = portal.post(
        "/schools/P3/sittings/2024-1/facts", data={"fact": SiteFact.platform_installed.value}
    )
    wrong = portal.post(
        "/schools/P3/sittings/2024-1/facts",
        data={"fact": SiteFact.platform_installed.value, "csrf": "not-the-token"},
    )
    upload = portal.post(
        "/schools/P3/sittings/2024-1/registration",
        files={"file": ("reg.csv", b"x", "text/csv")},
    )
    signin = portal.post("/signin", data={"school_code": "P3", "address": "a@p3.edu.cn"})
    assert [facts.status_code, wrong.status_code, upload.status_code, signin.status_code] == [
        403,
        403,
        403,
        403,
    ]
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {}
        assert session.exec(select(PortalAudit)).all() == []
    assert len(received(mail_sink.mail_dir)) == 1  # the sign-in mail only


def test_sign_in_requests_are_limited_to_five_an_hour_per_school_and_per_address(
    portal: TestClient, mail_sink: MailSink
) -> None:
    assert [ask_for_link(portal, "P3", "a@p3.edu.cn") for _ in range(5)] == [200] * 5
    assert ask_for_link(portal, "P3", "a@p3.edu.cn") == 429
    assert ask_for_link(portal, "P3", "t@p3.edu.cn") == 429  # same school, other contact
    assert [ask_for_link(portal, "P1", "x@elsewhere.cn") for _ in range(5)] == [200] * 5
    assert ask_for_link(portal, "P4", "x@elsewhere.cn") == 429  # same address, other school
    assert len(received(mail_sink.mail_dir)) == 5
    with portal_at(LATER_61_MIN) as an_hour_later:
        assert ask_for_link(an_hour_later, "P3", "a@p3.edu.cn") == 200
    assert len(received(mail_sink.mail_dir)) == 6


def test_another_schools_pages_forms_and_files_answer_404(
    portal: TestClient, mail_sink: MailSink
) -> None:
    csrf = signed_in_p3(portal, mail_sink)
    assert portal.get("/schools/P1").status_code == 404
    assert portal.get("/schools/P1/sittings/2024-1").status_code == 404
    assert portal.get("/schools/P1/sittings/2024-1/materials/tickets.pdf").status_code == 404
    fact = portal.post(
        "/schools/P1/sittings/2024-1/facts",
        data={"fact": SiteFact.platform_installed.value, "csrf": csrf},
    )
    assert fact.status_code == 404
    assert portal.get("/schools/P3/sittings/1999-9").status_code == 404
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {}


def test_the_session_cookie_is_httponly_samesite_lax_and_secure_under_https(
    register_loaded: Path, mail_sink: MailSink
) -> None:
    for public_url, secure in (("http://127.0.0.1:8090", False), ("https://exam.example.cn", True)):
        with portal_at(OPEN, public_url=public_url) as client:
            ask_for_link(client, "P3", "a@p3.edu.cn")
            token = mailed_tokens(mail_sink)[-1]
            page = client.get("/login", params={"t": token})
            response = client.post(
                "/login", data={"t": token, "csrf": csrf_of(page.text)}, follow_redirects=False
            )
            cookie = next(
                c for c in response.headers.get_list("set-cookie") if "examflow_session" in c
            )
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie
            assert ("Secure" in cookie) is secure
            assert "Max-Age=43200" in cookie  # 12 hours


def test_tokens_are_stored_hashed_and_blanked_in_the_outbox_once_sent(
    portal: TestClient, mail_sink: MailSink
) -> None:
    ask_for_link(portal, "P3", "a@p3.edu.cn")
    [token] = mailed_tokens(mail_sink)
    assert len(token) >= 22  # ≥ 128 bits in URL-safe base64
    sign_in(portal, token)
    session_cookie = portal.cookies["examflow_session"]
    with session_scope() as session:
        dumped = repr(session.exec(select(PortalLink)).all())
        dumped += repr(session.exec(select(PortalSession)).all())
        from models.outbox import OutboxMessage

        dumped += repr(session.exec(select(OutboxMessage)).all())
    assert token not in dumped and session_cookie not in dumped


def test_a_school_uploads_its_registrations_all_or_nothing_and_each_action_is_audited(
    portal: TestClient, mail_sink: MailSink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csrf = signed_in_p3(portal, mail_sink)
    ids = [new_id(), new_id()]
    bad = reg_file(
        tmp_path, [["P3", "王小明", ids[0], "初级", ""], ["P1", "李娜", ids[1], "专家", ""]]
    )
    refused = portal.post(
        "/schools/P3/sittings/2024-1/registration",
        data={"csrf": csrf},
        files={"file": ("reg.csv", bad.read_bytes(), "text/csv")},
    )
    assert refused.status_code == 422
    assert "未保存任何数据" in refused.text
    assert "&#39;P1&#39; is not your school (P3)" in refused.text
    assert "is not 初级, 中级 or 高级" in refused.text  # the CLI's message, row 3
    with session_scope() as session:
        assert session.exec(select(Registration)).all() == []

    fixed = reg_file(
        tmp_path, [["P3", "王小明", ids[0], "初级", ""], ["P3", "李娜", ids[1], "中级", ""]]
    )
    stored = portal.post(
        "/schools/P3/sittings/2024-1/registration",
        data={"csrf": csrf},
        files={"file": ("reg.csv", fixed.read_bytes(), "text/csv")},
    )
    assert stored.status_code == 200 and "已报名 2 名考生" in stored.text
    assert ids[0][:6] + "********" + ids[0][-4:] in stored.text and ids[0] not in stored.text
    with session_scope() as session:
        assert sorted(r.name for r in session.exec(select(Registration))) == ["李娜", "王小明"]
    recorded = portal.post(
        "/schools/P3/sittings/2024-1/facts",
        data={"fact": SiteFact.platform_installed.value, "csrf": csrf},
    )
    assert recorded.status_code == 200  # back on the sitting page
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.platform_installed}}
    result = run("audit", "2024-1", "--json")
    assert result.exit_code == 0, result.output
    actions = [
        (r["school"], r["contact"], r["action"]) for r in __import__("json").loads(result.stdout)
    ]
    assert actions == [
        ("P3", "a@p3.edu.cn", "registration_upload"),
        ("P3", "a@p3.edu.cn", "fact:platform_installed"),
    ]
    server_log = server_lines(caplog)
    assert "POST /schools/P3/sittings/2024-1/registration 422" in server_log
    for id_number in ids:
        assert id_number not in server_log
    for token in [*mailed_tokens(mail_sink), portal.cookies["examflow_session"]]:
        assert token not in server_log


def test_an_action_outside_its_window_is_shown_disabled_and_refused(
    register_loaded: Path, mail_sink: MailSink
) -> None:
    with portal_at(OPEN) as client:
        signed_in_p3(client, mail_sink)
        page = client.get("/schools/P3/sittings/2024-1").text
        csrf = csrf_of(page)
        # training opens 2024-05-01: its buttons are there, disabled, with the window's dates
        assert "2024-05-01 00:00 至 2024-05-06 23:59（当前不在办理时间内）" in page
        assert re.search(r"<button type=\"submit\" disabled>记录：考务管理人员已参加培训", page)
        refused = client.post(
            "/schools/P3/sittings/2024-1/facts",
            data={"fact": SiteFact.affairs_trained.value, "csrf": csrf},
        )
        assert refused.status_code == 409
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {}


def test_ops_print_a_reusable_link_for_a_school(register_loaded: Path) -> None:
    result = run("portal", "link", "P3", "--sitting", "2024-1", "--days", "2", "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    token = LINK.search(result.stdout)
    assert token
    with portal_at(OPEN) as first, portal_at("2024-04-21T10:00") as second:
        assert sign_in(first, token.group(1)) == 303
        assert sign_in(second, token.group(1)) == 303
        assert "2024-1 考次" in second.get("/schools/P3/sittings/2024-1").text
    with portal_at("2024-04-22T10:01") as too_late:
        assert sign_in(too_late, token.group(1)) == 410
    assert run("portal", "link", "ZZ9").exit_code == 1
