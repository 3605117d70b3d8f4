"""A school walks the portal in a real browser (Debian's chromium through Playwright), against
the real server on a free 127.0.0.1 port, with sign-in links from the real SMTP sink: it
registers, its site records its facts and downloads its PDFs, and after publicity it files a
review. Each step is checked in the database and in the stage's next checkpoint, evaluated
by the domain function the checkpoint flows call (models.checkpoints.evaluate_checkpoint)."""

import io
import logging
import re
import socket
import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openpyxl
import pytest
from sqlmodel import col, select

from examflow.db import session_scope
from examflow.settings import Settings
from examflow.synthetic import write_csv
from models.arrangement import SeatAssignment
from models.checkpoints import CheckpointOutcome, evaluate_checkpoint
from models.domain import Checkpoint, StageCode, StageState, in_shanghai
from models.facts import SiteFact, facts_by_site
from models.portal_access import PortalAudit
from models.registration import Registration
from models.scores import ReviewItem, ReviewRequest, publish
from models.sittings import get_sitting
from notifications.sink import MailSink
from portal.server import portal_server
from tests.cli import run
from tests.helpers import FIRST_SECOND_AFTER, OPEN, new_id, reg_file
from tests.mailbox import received, text_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# 2024-1's windows (calendars/2024-h1.toml): on 05-06 training, platform install and
# materials are all open and registration has closed.
SITE_DAY = "2024-05-06T10:00:00"
ARRANGED = "2024-05-06T09:00:00"
EXAM_MORNING = "2024-05-18T08:00:00"  # before the first slot (08:30)
PUBLICITY = "2024-05-30T10:00:00"
MATERIAL_LINKS = {
    "下载准考证": "tickets",
    "下载桌签": "labels",
    "下载门贴": "door_signs",
    "下载签到表": "sign_in_sheets",
}
LINK = re.compile(r"https?://\S+/login\?t=[A-Za-z0-9_\-]+")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mail_arrived(mail_dir: Path, after: int = 0, timeout: float = 15) -> list[EmailMessage]:
    """The sink's messages once there are more than ``after`` (the portal sends after it has
    answered)."""
    deadline = time.monotonic() + timeout
    while len(messages := received(mail_dir)) <= after and time.monotonic() < deadline:
        time.sleep(0.1)
    return messages


def sign_in(page: Any, base: str, mail_dir: Path) -> str:
    """As a school does: ask for a link on the start page, follow the mailed link, 登录, open
    the sitting. Returns the link's token (it must never reach the server's log)."""
    before = {text_of(m) for m in received(mail_dir)}
    page.goto(base + "/")
    page.get_by_label("学校代码").fill("P3")
    page.get_by_label("邮箱").fill("a@p3.edu.cn")
    page.get_by_role("button", name="发送登录链接").click()
    page.get_by_role("status").wait_for()
    texts = [text_of(m) for m in mail_arrived(mail_dir, after=len(before))]
    [link] = [m.group(0) for t in texts if t not in before if (m := LINK.search(t))]
    page.goto(link)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("link", name="2024-1").click()
    page.get_by_role("heading", name=re.compile("2024-1 考次")).wait_for()
    return link.split("t=")[1]


def checkpoint(
    stage: StageCode, when: str, kind: Checkpoint = Checkpoint.remind
) -> CheckpointOutcome:
    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        moment = in_shanghai(datetime.fromisoformat(when))
        return evaluate_checkpoint(session, sitting, stage, kind, moment)


def owed(outcome: CheckpointOutcome) -> set[tuple[str, str]]:
    return {(m.party, m.item) for m in outcome.missing}


def audited() -> list[tuple[str, str]]:
    with session_scope() as session:
        return [
            (a.school_code, a.action)
            for a in session.exec(select(PortalAudit).order_by(col(PortalAudit.id)))
        ]


def tickets_by_name() -> dict[str, str]:
    with session_scope() as session:
        return dict(
            session.exec(
                select(Registration.name, SeatAssignment.ticket_number).join(
                    SeatAssignment, col(SeatAssignment.registration_id) == col(Registration.id)
                )
            ).all()
        )


@pytest.mark.ui
def test_a_school_registers_its_site_gets_ready_and_it_files_a_review_all_in_the_browser(
    register_loaded: Path,
    chromium_browser: "Browser",
    mail_sink: MailSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
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
    mail_dir = mail_sink.mail_dir
    tokens: list[str] = []
    # -- registration (2024-04-20): a refused file, then the fixed one ---------------
    assert checkpoint(StageCode.registration, FIRST_SECOND_AFTER).parties_total == 0
    port = free_port()
    at_open = Settings(portal_as_of=OPEN, public_url=f"http://127.0.0.1:{port}")
    with portal_server(at_open, port) as base:
        page = chromium_browser.new_page()
        tokens.append(sign_in(page, base, mail_dir))

        page.get_by_label("报名文件", exact=True).set_input_files(str(bad))
        page.get_by_role("button", name="上传", exact=True).click()
        problems = page.get_by_role("alert")
        problems.wait_for()
        assert "未保存任何数据" in problems.inner_text()
        row = problems.get_by_role("row").filter(has_text="身份证号 (id_number)")
        assert row.get_by_role("cell").first.inner_text() == "3"
        # the problem rows download from the page itself: no file chosen again, no request
        with page.expect_download() as download:
            problems.get_by_role("link", name="下载问题行（XLSX）").click()
        assert download.value.suggested_filename == "2024-1-P3-problems.xlsx"
        sheet = openpyxl.load_workbook(io.BytesIO(download.value.path().read_bytes())).active
        assert sheet is not None
        rows = [[c.value for c in r] for r in sheet.iter_rows()]
        assert rows[2][0] == 3 and "身份证号 (id_number)" in rows[2][-1]
        with session_scope() as session:
            assert session.exec(select(Registration)).all() == []

        page.get_by_label("报名文件", exact=True).set_input_files(str(fixed))
        page.get_by_role("button", name="上传", exact=True).click()
        page.get_by_role("status").filter(has_text="已报名 2 名考生").wait_for()
        listed = page.get_by_role("table", name="已报名考生").inner_text()
        assert "王小明" in listed and ids[0][:6] + "********" + ids[0][-4:] in listed
        # each row's withdraw button is named 撤销; the row says whose (its row header)
        registered = page.get_by_role("table", name="已报名考生")
        assert registered.get_by_role("button", name="撤销", exact=True).count() == 2
        mine = registered.get_by_role("row").filter(
            has=page.get_by_role("rowheader", name="王小明", exact=True)
        )
        assert mine.get_by_role("button", name="撤销", exact=True).count() == 1
        assert ids[0] not in page.content()
        with session_scope() as session:
            names = sorted(r.name for r in session.exec(select(Registration)))
            assert names == ["李娜", "王小明"]
        closing = checkpoint(StageCode.registration, FIRST_SECOND_AFTER, Checkpoint.close)
        assert (closing.state, closing.parties_total, closing.missing) == (
            StageState.complete,
            1,
            [],
        )

        installing = checkpoint(StageCode.platform_install, OPEN)
        assert ("P3", SiteFact.platform_installed) in owed(installing)
        page.get_by_role("button", name="记录：考试平台已安装").click()
        page.get_by_role("button", name="已记录：考试平台已安装").wait_for()
        with session_scope() as session:
            assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.platform_installed}}
        assert owed(checkpoint(StageCode.platform_install, OPEN)) == {("P3", SiteFact.mock_passed)}
        page.close()
    assert audited() == [("P3", "registration_upload"), ("P3", "fact:platform_installed")]

    # -- the site's week (2024-05-06): its facts and its four PDFs --------------------
    assert run("arrange", "2024-1", "--as-of", ARRANGED).exit_code == 0
    assert owed(checkpoint(StageCode.materials, SITE_DAY)) == {
        ("P3", f) for f in SiteFact if f.value.endswith("_downloaded")
    } | {("P3", SiteFact.rooms_laid_out)}
    assert checkpoint(StageCode.training, SITE_DAY).state is StageState.open
    port = free_port()
    site_day = Settings(portal_as_of=SITE_DAY, public_url=f"http://127.0.0.1:{port}")
    with portal_server(site_day, port) as base:
        page = chromium_browser.new_page()
        tokens.append(sign_in(page, base, mail_dir))
        for fact, who in (
            ("考务管理人员已参加培训", "张老师"),
            ("技术人员已参加培训", "李工"),
        ):
            page.get_by_label(f"参加培训人员（{fact}）").fill(who)
            page.get_by_role("button", name=f"记录：{fact}").click()
            page.get_by_role("button", name=f"已记录：{fact}").wait_for()
        for fact in ("模考及平台测试已通过", "考场已按《考务工作执行手册》布置"):
            page.get_by_role("button", name=f"记录：{fact}").click()
            page.get_by_role("button", name=f"已记录：{fact}").wait_for()
        for name in MATERIAL_LINKS:
            with page.expect_download() as download:
                page.get_by_role("link", name=name, exact=True).click()
            path = download.value.path()
            assert path.read_bytes().startswith(b"%PDF-")
        page.close()
    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": set(SiteFact)}
    assert audited()[2:] == [
        ("P3", "fact:affairs_trained"),
        ("P3", "fact:tech_trained"),
        ("P3", "fact:mock_passed"),
        ("P3", "fact:rooms_laid_out"),
        *[("P3", f"download:{kind}") for kind in MATERIAL_LINKS.values()],
    ]
    for stage in (StageCode.training, StageCode.platform_install, StageCode.materials):
        done = checkpoint(stage, SITE_DAY)
        assert (stage, done.state, done.missing) == (stage, StageState.complete, [])
    # the exam day's checkpoint: the site is ready; only its attendance is to come
    assert owed(checkpoint(StageCode.exam, EXAM_MORNING, Checkpoint.open)) == {
        ("P3", "no_attendance")
    }

    # -- after publicity opens (2024-05-30): a review ----------------------------------
    tickets = tickets_by_name()
    sheet = [[tickets["王小明"], "出席"], [tickets["李娜"], "出席"]]
    write_csv(tmp_path / "att.csv", ["准考证号", "出勤"], sheet)
    assert run("attendance", "2024-1", str(tmp_path / "att.csv")).exit_code == 0
    write_csv(
        tmp_path / "scores.csv",
        ["准考证号", "成绩"],
        [[tickets["王小明"], "58"], [tickets["李娜"], "88"]],
    )
    assert run("scores", "import", "2024-1", str(tmp_path / "scores.csv")).exit_code == 0
    with session_scope() as session:
        publish(session, "2024-1", in_shanghai(datetime(2024, 5, 29, 9)))
    before_review = checkpoint(StageCode.publicity, PUBLICITY)
    assert ("P3", "unresolved_review") not in owed(before_review)
    port = free_port()
    publicity = Settings(portal_as_of=PUBLICITY, public_url=f"http://127.0.0.1:{port}")
    with portal_server(publicity, port) as base:
        page = chromium_browser.new_page()
        tokens.append(sign_in(page, base, mail_dir))
        results = page.get_by_role("table", name="本校考生成绩").inner_text()
        assert "王小明" in results and ids[0] not in page.content()
        page.get_by_role("checkbox", name=tickets["王小明"]).check()
        page.get_by_label("复核理由").fill("客观题得分偏低")
        page.get_by_role("button", name="提交复核申请").click()
        page.get_by_role("status").filter(has_text="已提交：1 名考生").wait_for()
        filed = page.get_by_role("table", name="复核申请").inner_text()
        assert tickets["王小明"] in filed and "待处理" in filed
        page.close()
    with session_scope() as session:
        [request] = session.exec(select(ReviewRequest)).all()
        items = [
            (i.ticket_number, i.reason, i.resolved_at) for i in session.exec(select(ReviewItem))
        ]
    assert request.school_code == "P3"
    assert items == [(tickets["王小明"], "客观题得分偏低", None)]
    assert audited()[-1] == ("P3", "review_file")
    reviewing = checkpoint(StageCode.publicity, PUBLICITY)
    assert owed(reviewing) - owed(before_review) == {("P3", "unresolved_review")}
    assert [m.count for m in reviewing.missing if m.item == "unresolved_review"] == [1]
    server_log = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("portal", "uvicorn"))
    )
    assert "POST /schools/P3/sittings/2024-1/registration 422" in server_log
    assert "problems.xlsx" not in server_log  # the sheet came inside the refusal's page
    assert "GET /schools/P3/sittings/2024-1/materials/tickets.pdf 200" in server_log
    assert len(tokens) == 3 and not any(t in server_log for t in tokens)
    assert not any(i in server_log for i in ids)
