"""What a school does on its sitting's page, over HTTP against the real app: each action
through the CLI's domain function, only while its window is open, all or nothing, audited."""

import base64
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from examflow.db import session_scope
from models.arrangement import SeatAssignment
from models.attendance import Attendance
from models.certificates import PaperRequest
from models.domain import SHANGHAI
from models.facts import SiteFact, facts_by_site
from models.host_requests import HostRequest
from models.portal_access import PortalAudit
from models.registration import Registration
from models.rooms import Room
from models.schools import SiteAgreement, SiteApplication
from models.scores import ReviewItem, ReviewRequest, publish
from notifications.sink import MailSink
from tests.cli import run
from tests.helpers import FIRST_SECOND_AFTER, OPEN, new_id, reg_file
from tests.test_portal_security import ask_for_link, csrf_of, mailed_tokens, portal_at, sign_in

SignIn = Callable[..., tuple[TestClient, str]]
PUBLICITY = "2024-05-30T10:00:00"
TRAINING = "2024-05-02T10:00:00"
ADDRESSES = {"P1": "a@p1.edu.cn", "P2": "a@p2.edu.cn", "P3": "a@p3.edu.cn", "P4": "a@p4.edu.cn"}


@pytest.fixture
def as_school(mail_sink: MailSink) -> Iterator[SignIn]:
    """as_school(school, as_of) -> (client, csrf): signed in through a mailed link."""
    clients: list[TestClient] = []

    def open_as(school: str, as_of: str = OPEN) -> tuple[TestClient, str]:
        client = portal_at(as_of).__enter__()
        clients.append(client)
        assert ask_for_link(client, school, ADDRESSES[school]) == 200
        assert sign_in(client, mailed_tokens(mail_sink)[-1]) == 303
        return client, csrf_of(client.get(f"/schools/{school}/sittings/2024-1").text)

    yield open_as
    for client in clients:
        client.__exit__(None, None, None)


def page_url(school: str, action: str = "") -> str:
    return f"/schools/{school}/sittings/2024-1" + (f"/{action}" if action else "")


def registration_ids(school: str) -> dict[str, int]:
    with session_scope() as session:
        return {
            r.name: r.id or 0
            for r in session.exec(select(Registration).where(Registration.school_code == school))
        }


def test_a_school_withdraws_its_own_candidate_before_the_close_and_no_other(
    register_loaded: Path, as_school: SignIn
) -> None:
    rows = [["P3", "甲", new_id(), "初级", ""], ["P3", "乙", new_id(), "初级", ""]]
    rows.append(["P1", "丙", new_id(), "中级", ""])
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    ids = registration_ids("P3")
    client, csrf = as_school("P3")

    done = client.post(
        page_url("P3", "registration/withdraw"), data={"registration": ids["甲"], "csrf": csrf}
    )
    theirs = client.post(
        page_url("P3", "registration/withdraw"),
        data={"registration": registration_ids("P1")["丙"], "csrf": csrf},
    )

    assert done.status_code == 200 and "已撤销：甲（初级）" in done.text
    assert theirs.status_code == 404
    assert sorted(registration_ids("P3")) == ["乙"] and list(registration_ids("P1")) == ["丙"]
    with session_scope() as session:
        audit = [(a.school_code, a.action) for a in session.exec(select(PortalAudit))]
    assert audit == [("P3", "withdraw")]
    late, late_csrf = as_school("P3", FIRST_SECOND_AFTER)
    late_page = late.get(page_url("P3")).text
    [row] = [r for r in late_page.split("<tr>") if '<th scope="row">乙</th>' in r]
    assert '<button type="submit" disabled>撤销</button>' in row  # its name: exactly 撤销
    refused = late.post(
        page_url("P3", "registration/withdraw"), data={"registration": ids["乙"], "csrf": late_csrf}
    )
    assert refused.status_code == 409
    assert list(registration_ids("P3")) == ["乙"]


def test_ops_withdraw_a_candidate_by_id_number_until_the_close(register_loaded: Path) -> None:
    id_number = new_id()
    file = reg_file(register_loaded, [["P3", "甲", id_number, "初级", ""]])
    assert run("register", "2024-1", str(file), "--as-of", OPEN).exit_code == 0
    late = run("withdraw", "2024-1", id_number, "--as-of", FIRST_SECOND_AFTER)
    assert late.exit_code == 1 and "closed" in late.output
    result = run("withdraw", "2024-1", id_number, "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert "甲 (初级, P3) withdrawn" in result.stdout and id_number not in result.stdout
    assert registration_ids("P3") == {}
    unknown = run("withdraw", "2024-1", id_number, "--as-of", OPEN)
    assert unknown.exit_code == 1 and "no such candidate registered for 2024-1" in unknown.output


def test_a_refused_file_s_problem_rows_download_as_the_errors_out_sheet_and_nothing_is_stored(
    register_loaded: Path, as_school: SignIn
) -> None:
    bad = reg_file(
        register_loaded, [["P3", "王小明", new_id(), "初级", ""], ["P3", "李娜", "123", "中级", ""]]
    )
    client, csrf = as_school("P3")

    answer = client.post(
        page_url("P3", "registration/problems.xlsx"),
        data={"csrf": csrf},
        files={"file": ("bad.csv", bad.read_bytes(), "text/csv")},
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0][0] == "行号 row" and rows[0][-1] == "问题 problems"
    assert rows[1][0] == 2 and not rows[1][-1]
    assert rows[2][0] == 3 and "身份证号 (id_number)" in rows[2][-1]
    assert registration_ids("P3") == {}


def sheet_rows(data: bytes) -> list[list[object]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    return [[c.value for c in r] for r in sheet.iter_rows()]


def test_a_refused_upload_s_page_links_its_problem_rows_as_the_errors_out_sheet_without_a_request(
    register_loaded: Path, as_school: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [new_id(), new_id()]
    bad = reg_file(
        register_loaded, [["P3", "王小明", ids[0], "初级", ""], ["P3", "李娜", "123", "中级", ""]]
    )
    client, csrf = as_school("P3")

    refused = client.post(
        page_url("P3", "registration"),
        data={"csrf": csrf},
        files={"file": ("bad.csv", bad.read_bytes(), "text/csv")},
    )

    assert refused.status_code == 422
    found = re.search(
        r'<a download="2024-1-P3-problems\.xlsx" href="data:application/'
        r'vnd\.openxmlformats-officedocument\.spreadsheetml\.sheet;base64,([A-Za-z0-9+/=]+)">'
        r"下载问题行（XLSX）</a>",
        refused.text,
    )
    assert found is not None
    assert 'name="file"' not in refused.text.split('id="problems-title"')[1].split("</section>")[0]
    rows = sheet_rows(base64.b64decode(found.group(1)))
    assert rows[0][0] == "行号 row" and rows[0][-1] == "问题 problems"
    assert rows[1][:2] == [2, "P3"] and not rows[1][-1]
    assert rows[2][0] == 3 and "身份证号 (id_number)" in rows[2][-1]
    # the rows the CLI's --errors-out writes for the same file
    errors_out = register_loaded / "errors.xlsx"
    cli = run("register", "2024-1", str(bad), "--as-of", OPEN, "--errors-out", str(errors_out))
    assert cli.exit_code == 1 and sheet_rows(errors_out.read_bytes()) == rows
    assert ids[0] not in refused.text  # only inside the sheet, never in the page's text
    assert registration_ids("P3") == {}

    # a sheet too big to come inside the page: the form that sends the file again instead
    monkeypatch.setattr("portal.routes.registration.INLINE_MAX", 100)
    big = client.post(
        page_url("P3", "registration"),
        data={"csrf": csrf},
        files={"file": ("bad.csv", bad.read_bytes(), "text/csv")},
    )
    assert big.status_code == 422 and "data:application" not in big.text
    assert '<button type="submit">下载问题行（XLSX）</button>' in big.text


def test_a_school_is_offered_its_provinces_sites_and_may_ask_a_site_elsewhere_by_code(
    register_loaded: Path, as_school: SignIn
) -> None:
    guest, guest_csrf = as_school("P2")  # 北京市: P1 and P4 are its province's sites
    page = guest.get(page_url("P2")).text
    offered = page.split('<datalist id="host-sites">')[1].split("</datalist>")[0]
    assert '<option value="P1">' in offered and '<option value="P4">' in offered
    assert "P3" not in offered  # 河北省
    assert '<label for="host-site">借考考点代码</label>' in page

    asked = guest.post(page_url("P2", "host-requests"), data={"host": " P3 ", "csrf": guest_csrf})

    assert asked.status_code == 200 and "已向考点 P3 提出借考申请" in asked.text
    with session_scope() as session:
        [request] = session.exec(select(HostRequest)).all()
    assert (request.guest_code, request.host_code) == ("P2", "P3")
    refused = guest.post(page_url("P2", "host-requests"), data={"host": "N1", "csrf": guest_csrf})
    assert refused.status_code == 422 and "N1&#39; is not a site" in refused.text


def test_a_school_without_a_site_asks_one_to_host_it_and_the_site_accepts(
    register_loaded: Path, as_school: SignIn
) -> None:
    guest, guest_csrf = as_school("P2")
    asked = guest.post(page_url("P2", "host-requests"), data={"host": "P4", "csrf": guest_csrf})
    assert asked.status_code == 200 and "待考点答复" in asked.text
    applied = guest.post(
        page_url("P2", "site-application"), data={"seats": "40", "csrf": guest_csrf}
    )
    assert applied.status_code == 200 and "待审核" in applied.text

    host, host_csrf = as_school("P4")
    page = host.get(page_url("P4")).text
    assert "同意 P2" in page
    with session_scope() as session:
        [request] = session.exec(select(HostRequest)).all()
    other, other_csrf = as_school("P1")
    assert (
        other.post(
            page_url("P1", f"host-requests/{request.id}"),
            data={"decision": "accept", "csrf": other_csrf},
        ).status_code
        == 404
    )
    accepted = host.post(
        page_url("P4", f"host-requests/{request.id}"),
        data={"decision": "accept", "csrf": host_csrf},
    )

    assert accepted.status_code == 200 and "已同意 P2 的借考申请" in accepted.text
    with session_scope() as session:
        agreements = [(a.host_code, a.guest) for a in session.exec(select(SiteAgreement))]
        [application] = session.exec(select(SiteApplication)).all()
        [request] = session.exec(select(HostRequest)).all()
    assert agreements == [("P4", "P2")]
    assert (application.school_code, application.seats) == ("P2", 40)
    assert (request.decision, request.decided_by) == ("accepted", "a@p4.edu.cn")
    assert "P4" in guest.get(page_url("P2")).text.split("已同意接收本校考生的考点：")[1][:10]


def test_a_site_records_who_attended_its_training_and_uploads_only_its_own_rooms(
    register_loaded: Path, as_school: SignIn
) -> None:
    client, csrf = as_school("P3", TRAINING)
    nameless = client.post(page_url("P3", "facts"), data={"fact": "affairs_trained", "csrf": csrf})
    assert nameless.status_code == 422 and "请填写参加培训的人员姓名" in nameless.text
    trained = client.post(
        page_url("P3", "facts"),
        data={"fact": "affairs_trained", "attendees": "张老师，李老师", "csrf": csrf},
    )
    assert trained.status_code == 200 and "参加人员：张老师、李老师" in trained.text
    rooms = reg_file(register_loaded, [], "rooms.csv")
    rooms.write_text("考点代码,考场,座位数\nP3,101,30\nP1,201,30\n", encoding="utf-8")
    mixed = client.post(
        page_url("P3", "rooms"),
        data={"csrf": csrf},
        files={"file": ("rooms.csv", rooms.read_bytes())},
    )
    assert mixed.status_code == 422 and "&#39;P1&#39; is not your school (P3)" in mixed.text
    rooms.write_text("考点代码,考场,座位数\nP3,101,30\nP3,102,20\n", encoding="utf-8")
    own = client.post(
        page_url("P3", "rooms"),
        data={"csrf": csrf},
        files={"file": ("rooms.csv", rooms.read_bytes())},
    )
    assert own.status_code == 200 and "考场已保存" in own.text

    with session_scope() as session:
        assert facts_by_site(session, "2024-1") == {"P3": {SiteFact.affairs_trained}}
        assert sorted((r.site_code, r.name, r.seats) for r in session.exec(select(Room))) == [
            ("P3", "101", 30),
            ("P3", "102", 20),
        ]
        audit = [(a.action, a.detail) for a in session.exec(select(PortalAudit))]
    assert audit == [("fact:affairs_trained", "张老师、李老师"), ("rooms_upload", "2 rows")]


def test_a_site_uploads_its_attendance_from_the_exam_day_until_publicity_opens(
    register_loaded: Path, as_school: SignIn
) -> None:
    rows = [["P3", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    with session_scope() as session:
        tickets = sorted(session.exec(select(SeatAssignment.ticket_number)))
    sheet = "准考证号,出勤\n" + f"{tickets[0]},出席\n{tickets[1]},缺考\n"
    dates = "办理时间：考试当天至成绩公示开始前，2024-05-18 00:00 至 2024-05-28 23:59"

    def upload(as_of: str) -> tuple[int, str]:
        client, csrf = as_school("P3", as_of)
        answer = client.post(
            page_url("P3", "attendance"),
            data={"csrf": csrf},
            files={"file": ("att.csv", sheet.encode())},
        )
        return answer.status_code, client.get(page_url("P3")).text

    before, before_page = upload("2024-05-17T16:00:00")  # the eve of the exam (05-18)
    day_after, day_after_page = upload("2024-05-19T10:00:00")
    published, published_page = upload("2024-05-29T09:00:00")  # publicity opens

    assert (before, day_after, published) == (409, 200, 409)
    assert f"{dates}（当前不在办理时间内）" in before_page
    assert f"{dates}</p>" in day_after_page
    assert '<button type="submit">上传出勤表</button>' in day_after_page
    assert f"{dates}（当前不在办理时间内）" in published_page
    assert '<button type="submit" disabled>上传出勤表</button>' in published_page
    with session_scope() as session:
        recorded = {a.ticket_number: a.present for a in session.exec(select(Attendance))}
        audit = [(a.action, a.detail) for a in session.exec(select(PortalAudit))]
    assert recorded == {tickets[0]: True, tickets[1]: False}
    assert audit == [("attendance_upload", "2 rows")]


def test_after_publicity_a_school_files_a_review_for_its_own_candidates_and_sees_the_answer(
    scored: dict[str, str], as_school: SignIn
) -> None:
    from datetime import datetime

    with session_scope() as session:
        publish(session, "2024-1", datetime(2024, 5, 29, 9, tzinfo=SHANGHAI))
    client, csrf = as_school("P3", PUBLICITY)
    page = client.get(page_url("P3")).text
    assert scored["甲1"] in page and "丙" in page  # its results; its guest 丙 (N1) by name
    with session_scope() as session:
        id_numbers = [r.id_number for r in session.exec(select(Registration))]
    assert not any(i in page for i in id_numbers)

    theirs = client.post(
        page_url("P3", "reviews"),
        data={"ticket": [scored["甲1"], scored["乙"]], "reason": "分数偏低", "csrf": csrf},
    )
    assert theirs.status_code == 404
    filed = client.post(
        page_url("P3", "reviews"),
        data={"ticket": [scored["甲1"]], "reason": "分数偏低", "csrf": csrf},
    )
    assert filed.status_code == 200 and "已提交：1 名考生" in filed.text
    with session_scope() as session:
        [request] = session.exec(select(ReviewRequest)).all()
        [item] = session.exec(select(ReviewItem)).all()
    assert (request.school_code, item.ticket_number, item.reason) == (
        "P3",
        scored["甲1"],
        "分数偏低",
    )

    assert (
        run("review", "resolve", str(request.id), "--score", "91", "--as-of", PUBLICITY).exit_code
        == 0
    )
    resolved = client.get(page_url("P3")).text
    assert "<td>88</td>\n      <td>91</td>" in resolved


def test_another_schools_ids_in_a_form_answer_404_like_ids_that_do_not_exist(
    scored: dict[str, str], as_school: SignIn
) -> None:
    """A registration id, a hosting request or a ticket number that is not the school's
    answers 404, as another school's URL does: nothing changes, nothing is audited, and
    another school's row cannot be told from a row that does not exist."""
    from datetime import datetime

    p1_id = registration_ids("P1")["乙"]
    school, csrf = as_school("P3")
    withdraw = [
        school.post(page_url("P3", "registration/withdraw"), data={"registration": i, "csrf": csrf})
        for i in (p1_id, p1_id + 1000)
    ]
    guest, guest_csrf = as_school("P2")
    assert guest.post(page_url("P2", "host-requests"), data={"host": "P4", "csrf": guest_csrf})
    with session_scope() as session:
        [asked] = session.exec(select(HostRequest)).all()
    other_site, other_csrf = as_school("P1")  # a site, but not the one asked
    answer = [
        other_site.post(
            page_url("P1", f"host-requests/{i}"), data={"decision": d, "csrf": other_csrf}
        )
        for i in (asked.id or 0, (asked.id or 0) + 1000)
        for d in ("accept", "decline")
    ]
    with session_scope() as session:
        publish(session, "2024-1", datetime(2024, 5, 29, 9, tzinfo=SHANGHAI))
    later, later_csrf = as_school("P3", PUBLICITY)
    reviews = [
        later.post(
            page_url("P3", "reviews"), data={"ticket": t, "reason": "偏低", "csrf": later_csrf}
        )
        for t in ([scored["乙"]], [scored["甲1"], "T-NO-SUCH"])
    ]
    unscored = later.post(  # its own absent candidate: a refusal on the page, as before
        page_url("P3", "reviews"),
        data={"ticket": [scored["甲2"]], "reason": "偏低", "csrf": later_csrf},
    )

    assert [r.status_code for r in withdraw + answer + reviews] == [404] * 8
    assert unscored.status_code == 422 and "has no published score" in unscored.text
    assert withdraw[0].text == withdraw[1].text  # another's and a missing row look the same
    assert list(registration_ids("P1")) == ["乙"]
    with session_scope() as session:
        assert [r.decision for r in session.exec(select(HostRequest))] == ["pending"]
        assert [(a.host_code, a.guest) for a in session.exec(select(SiteAgreement))] == [
            ("P3", "N1")  # the fixture's, by ops
        ]
        assert session.exec(select(ReviewRequest)).all() == []
        audit = [a.action for a in session.exec(select(PortalAudit))]
    assert audit == ["host_ask"]


CERTIFICATES_OPEN = "2024-06-01T10:00:00"  # 2024-1's certificates window opens 06-01


def test_a_school_with_passing_candidates_asks_once_for_paper_certificates_from_its_page(
    scored: dict[str, str], as_school: SignIn
) -> None:
    client, csrf = as_school("P3", CERTIFICATES_OPEN)
    sitting_page = client.get(page_url("P3")).text
    assert 'href="/schools/P3/sittings/2024-1/certificates">电子证书签署与纸质证书申请</a>' in (
        sitting_page
    )
    assert (
        '<button type="submit">申请纸质证书</button>'
        in client.get(page_url("P3", "certificates")).text
    )

    asked = client.post(page_url("P3", "certificates/paper"), data={"csrf": csrf})
    again = client.post(page_url("P3", "certificates/paper"), data={"csrf": csrf})

    assert asked.status_code == 200 and "已申请纸质证书。" in asked.text
    assert again.status_code == 200 and "本校此前已申请纸质证书。" in again.text
    assert "本校已于 2024-06-01 10:00 申请纸质证书。" in again.text
    with session_scope() as session:
        [paper] = session.exec(select(PaperRequest)).all()
        audit = session.exec(select(PortalAudit).where(PortalAudit.action == "paper_requested"))
        assert [(a.school_code, a.contact) for a in audit] == [("P3", ADDRESSES["P3"])]
    assert paper.school_code == "P3"


def test_paper_certificates_are_refused_without_passing_candidates_or_outside_the_window(
    scored: dict[str, str], as_school: SignIn
) -> None:
    none_passed, none_csrf = as_school("P2", CERTIFICATES_OPEN)
    early, early_csrf = as_school("P3", PUBLICITY)

    nothing = none_passed.post(page_url("P2", "certificates/paper"), data={"csrf": none_csrf})
    too_early = early.post(page_url("P3", "certificates/paper"), data={"csrf": early_csrf})
    forged = early.post(page_url("P3", "certificates/paper"), data={})

    assert nothing.status_code == 422 and "本校在该考次没有合格考生" in nothing.text
    assert too_early.status_code == 409 and forged.status_code == 403
    with session_scope() as session:
        assert session.exec(select(PaperRequest)).all() == []
