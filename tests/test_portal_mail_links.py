"""Every mail to a school carries a sign-in link to its sitting's page at the mail's stage:
usable again and again until the stage's window closes plus one day, stored hashed."""

import re
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.portal_access import PortalLink
from notifications.sink import MailSink
from portal.app import create_app
from tasks.checkpoint_tasks import deliver, evaluate, queue
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file
from tests.mailbox import received, text_of

LINK = re.compile(r"https?://\S+/login\?t=([A-Za-z0-9_\-]+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
REMIND = datetime(2024, 4, 27, 9, tzinfo=SHANGHAI)  # registration closes 2024-04-29 24:00


def run_checkpoint(stage: StageCode, checkpoint: Checkpoint, as_of: datetime) -> None:
    outcome = evaluate.fn("2024-1", stage, checkpoint, as_of)
    deliver.fn(queue.fn(outcome))


def sign_in_at(as_of: str, token: str) -> tuple[int, str]:
    """Open the link and press 登录 with the portal's clock at ``as_of``: (status, Location)."""
    settings = Settings(portal_as_of=as_of, public_url="http://127.0.0.1:8090")
    with TestClient(create_app(settings)) as client:
        page = client.get("/login", params={"t": token})
        if page.status_code != 200:
            return page.status_code, ""
        csrf = CSRF.search(page.text)
        assert csrf is not None
        answer = client.post(
            "/login", data={"t": token, "csrf": csrf.group(1)}, follow_redirects=False
        )
        return answer.status_code, answer.headers.get("location", "")


def test_the_registration_reminder_signs_the_school_in_at_its_registration_until_a_day_after_the_close(  # noqa: E501
    register_loaded: Path, mail_sink: MailSink
) -> None:
    run_checkpoint(StageCode.registration, Checkpoint.remind, REMIND)

    [message] = [m for m in received(mail_sink.mail_dir) if m["To"] == "a@p2.edu.cn"]
    text = text_of(message)
    assert "在学校服务平台办理" in text and "2024-04-30 23:59 前有效" in text
    found = LINK.search(text)
    assert found is not None
    token = found.group(1)
    html = message.get_body(("html",))
    assert html is not None and token in str(html.get_content())  # type: ignore[attr-defined]
    with session_scope() as session:
        links = session.exec(select(PortalLink).where(PortalLink.school_code == "P2")).all()
    assert [(k.sitting_code, k.stage, k.single_use, k.contact) for k in links] == [
        ("2024-1", "registration", False, "a@p2.edu.cn")
    ]
    assert token not in links[0].token_hash

    at_page = (303, "/schools/P2/sittings/2024-1#stage-registration")
    assert sign_in_at("2024-04-27T09:30:00", token) == at_page
    assert sign_in_at("2024-04-30T23:59:00", token) == at_page  # again: not used up
    assert sign_in_at("2024-05-01T00:00:01", token) == (410, "")


def test_a_site_s_window_open_mail_links_to_that_stage_and_no_ops_mail_carries_a_link(
    register_loaded: Path, mail_sink: MailSink
) -> None:
    rows = [["P3", "甲", new_id(), "初级", ""], ["P1", "乙", new_id(), "中级", ""]]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    run_checkpoint(StageCode.training, Checkpoint.open, datetime(2024, 5, 1, 9, tzinfo=SHANGHAI))

    messages = received(mail_sink.mail_dir)
    assert sorted(m["To"] for m in messages) == ["a@p1.edu.cn", "a@p3.edu.cn"]
    for message in messages:
        found = LINK.search(text_of(message))
        assert found is not None, message["To"]
    with session_scope() as session:
        stages = {k.stage for k in session.exec(select(PortalLink))}
        schools = sorted(k.school_code for k in session.exec(select(PortalLink)))
    assert stages == {"training"}
    to = sorted(str(m["To"]).split("@")[1].split(".")[0].upper() for m in messages)
    assert schools == to
