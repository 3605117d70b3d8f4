"""A school walks the portal in a real browser (Debian's chromium through Playwright), against
the real server on a free 127.0.0.1 port, with the sign-in link from the real SMTP sink."""

import logging
import re
import shutil
import socket
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from models.facts import SiteFact, facts_by_site
from models.portal_access import PortalAudit
from models.registration import Registration
from notifications.sink import MailSink
from portal.server import portal_server
from tests.conftest import missing_system_tool
from tests.helpers import OPEN, new_id, reg_file
from tests.mailbox import received, text_of


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mail_arrived(mail_dir: Path, timeout: float = 15) -> list[EmailMessage]:
    """The sink's messages once there is one (the portal sends after it has answered)."""
    deadline = time.monotonic() + timeout
    while not (messages := received(mail_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return messages


LINK = re.compile(r"https?://\S+/login\?t=[A-Za-z0-9_\-]+")


@pytest.mark.ui
def test_a_school_signs_in_from_its_mail_fixes_its_file_and_a_site_records_a_fact(
    register_loaded: Path,
    mail_sink: MailSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        missing_system_tool("Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_system_tool("playwright (pip) is not installed")
    caplog.set_level(logging.INFO)
    ids = [new_id(), new_id()]
    bad = reg_file(
        tmp_path, [["P3", "王小明", ids[0], "初级", ""], ["P3", "李娜", "123", "中级", ""]]
    )
    fixed = reg_file(
        tmp_path,
        [["P3", "王小明", ids[0], "初级", ""], ["P3", "李娜", ids[1], "中级", ""]],
        "ok.csv",
    )
    port = free_port()
    settings = Settings(portal_as_of=OPEN, public_url=f"http://127.0.0.1:{port}")
    with portal_server(settings, port) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.get_by_label("学校代码").fill("P3")
            page.get_by_label("邮箱").fill("a@p3.edu.cn")
            page.get_by_role("button", name="发送登录链接").click()
            page.get_by_role("status").wait_for()
            [message] = mail_arrived(mail_sink.mail_dir)
            link = LINK.search(text_of(message))
            assert link is not None
            page.goto(link.group(0))
            page.get_by_role("button", name="登录").click()
            page.get_by_role("link", name="2024-1").click()
            page.get_by_role("heading", name=re.compile("2024-1 考次")).wait_for()

            page.get_by_label("报名文件").set_input_files(str(bad))
            page.get_by_role("button", name="上传").click()
            problems = page.get_by_role("alert")
            problems.wait_for()
            assert "未保存任何数据" in problems.inner_text()
            row = problems.get_by_role("row").filter(has_text="身份证号 (id_number)")
            assert row.get_by_role("cell").first.inner_text() == "3"
            with session_scope() as session:
                assert session.exec(select(Registration)).all() == []

            page.get_by_label("报名文件").set_input_files(str(fixed))
            page.get_by_role("button", name="上传").click()
            page.get_by_role("status").filter(has_text="已报名 2 名考生").wait_for()
            listed = page.get_by_role("table", name="已报名考生").inner_text()
            assert "王小明" in listed and ids[0][:6] + "********" + ids[0][-4:] in listed
            assert ids[0] not in page.content()
            with session_scope() as session:
                names = sorted(r.name for r in session.exec(select(Registration)))
                assert names == ["李娜", "王小明"]

            page.get_by_role("button", name="记录：考试平台已安装").click()
            page.get_by_role("button", name="已记录：考试平台已安装").wait_for()
            with session_scope() as session:
                assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.platform_installed}}
                audit = [(a.school_code, a.action) for a in session.exec(select(PortalAudit))]
            assert audit == [("P3", "registration_upload"), ("P3", "fact:platform_installed")]
        finally:
            browser.close()
    server_log = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("portal", "uvicorn"))
    )
    assert "POST /schools/P3/sittings/2024-1/registration 422" in server_log
    assert link.group(0).split("t=")[1] not in server_log
    assert not any(i in server_log for i in ids)
