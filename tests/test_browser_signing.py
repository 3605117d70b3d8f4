"""A school signs its certificate batch from the portal with a key made in its browser.

Over HTTP, the browser's part is played by PyNaCl (libsodium), an Ed25519 implementation that
shares no code with examflow's; the Playwright test drives Debian's chromium, whose WebCrypto
makes and keeps the key."""

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from examflow.db import session_scope
from examflow.settings import Settings
from examflow.synthetic import write_csv
from models.certificates import SigningRefused, signing_statement
from models.domain import SHANGHAI
from models.sittings import get_sitting
from notifications.sink import MailSink
from portal.app import create_app
from tests.cli import run
from tests.conftest import missing_system_tool
from tests.test_certificates import AFTER, issue_now, missing_now, new_key
from tests.test_portal_security import ask_for_link, csrf_of, mailed_tokens, sign_in
from tests.test_verify_revocation import review_score

if TYPE_CHECKING:
    from playwright.sync_api import Browser

BASE = "/schools/P3/sittings/2024-1/certificates"
PUBLIC_URL = Settings().public_url
KEY_ID = re.compile(r"ed25519:[0-9a-f]{16}")


@pytest.fixture
def school(
    register_loaded: Path, scored: dict[str, str], mail_sink: MailSink
) -> Iterator[tuple[TestClient, str]]:
    """P3 signed in to the portal (clock after publicity); the page's CSRF token."""
    with TestClient(create_app(Settings(portal_as_of=AFTER))) as client:
        assert ask_for_link(client, "P3", "a@p3.edu.cn") == 200
        assert sign_in(client, mailed_tokens(mail_sink)[-1]) == 303
        yield client, csrf_of(client.get(BASE).text)


def enrol(client: TestClient, csrf: str) -> tuple[SigningKey, dict[str, Any]]:
    key = SigningKey.generate()
    public = base64.b64encode(bytes(key.verify_key)).decode()
    answer = client.post(f"{BASE}/keys", data={"public_key": public, "csrf": csrf})
    assert answer.status_code == 200, answer.text
    return key, answer.json()


def browser_sign(
    client: TestClient, csrf: str, key: SigningKey, key_id: str
) -> tuple[int, dict[str, Any]]:
    statement = client.get(f"{BASE}/statement", params={"key_id": key_id})
    if statement.status_code != 200:
        return statement.status_code, statement.json()
    made = statement.json()
    signature = key.sign(base64.b64decode(made["message_b64"])).signature
    answer = client.post(
        f"{BASE}/signature",
        data={
            "key_id": key_id,
            "created": made["created"],
            "digest": made["digest"],
            "signature": base64.b64encode(signature).decode(),
            "csrf": csrf,
        },
    )
    return answer.status_code, answer.json()


def test_a_key_from_the_browser_signs_only_once_ops_approve_it_and_the_credential_verifies(
    school: tuple[TestClient, str], register_loaded: Path, scored: dict[str, str]
) -> None:
    client, csrf = school
    key, enrolled = enrol(client, csrf)
    kid = enrolled["key_id"]
    page = client.get(BASE).text
    assert kid in page and enrolled["fingerprint"] in page and "待审核" in page
    pending = run("keys", "pending")
    assert kid in pending.stdout and enrolled["fingerprint"] in pending.stdout

    code, refused = browser_sign(client, csrf, key, kid)
    assert code == 409 and refused["code"] == "pending_key"
    approved = run("keys", "approve", kid)
    assert approved.exit_code == 0 and enrolled["fingerprint"] in approved.stdout
    code, signed = browser_sign(client, csrf, key, kid)
    assert code == 200 and signed["ok"] is True
    assert "贵校已签署" in client.get(BASE).text

    organiser = new_key(register_loaded, "organiser")
    assert (
        run(
            "sign", "2024-1", "--party", "organiser", "--key", str(organiser), "--as-of", AFTER
        ).exit_code
        == 0
    )
    assert issue_now() == (1, 0)
    out = register_loaded / "certs"
    assert run("certificates", "export", "2024-1", "-o", str(out), "--no-pdf").exit_code == 0
    checked = run("certificates", "verify", str(out / f"WD{scored['甲1']}.json"))
    assert checked.exit_code == 0 and "signed by organiser and P3" in checked.stdout


def test_the_page_shows_in_words_what_is_signed_with_masked_ids_and_the_root(
    school: tuple[TestClient, str], scored: dict[str, str]
) -> None:
    client, _ = school
    page = client.get(BASE).text
    table = page.split('aria-label="签署内容"')[1].split("</table>")[0]
    assert "甲1" in table and scored["甲1"] in table and "88" in table and "初级" in table
    assert "甲0" not in table  # 59: did not pass
    assert re.search(r"\d{6}\*{8}[\dX]{4}", table)
    assert re.search(r'<code id="root">[0-9a-f]{64}</code>', page)


def test_a_signature_over_a_root_that_is_no_longer_current_is_refused(
    school: tuple[TestClient, str], register_loaded: Path, scored: dict[str, str]
) -> None:
    client, csrf = school
    key, enrolled = enrol(client, csrf)
    assert run("keys", "approve", enrolled["key_id"]).exit_code == 0
    made = client.get(f"{BASE}/statement", params={"key_id": enrolled["key_id"]}).json()
    review_score(register_loaded, scored["甲1"], 91)
    signature = key.sign(base64.b64decode(made["message_b64"])).signature
    answer = client.post(
        f"{BASE}/signature",
        data={
            "key_id": enrolled["key_id"],
            "created": made["created"],
            "digest": made["digest"],
            "signature": base64.b64encode(signature).decode(),
            "csrf": csrf,
        },
    )
    assert answer.status_code == 409 and answer.json()["code"] == "stale_root"
    assert "待签发：培训评价组织、学校" in " ".join(missing_now())


def test_the_statement_is_refused_when_the_root_the_page_showed_is_no_longer_current(
    school: tuple[TestClient, str], register_loaded: Path, scored: dict[str, str]
) -> None:
    client, csrf = school
    _, enrolled = enrol(client, csrf)
    assert run("keys", "approve", enrolled["key_id"]).exit_code == 0
    shown = re.search(r'<code id="root">([0-9a-f]{64})</code>', client.get(BASE).text)
    assert shown is not None
    query = {"key_id": enrolled["key_id"], "root": shown.group(1)}
    assert client.get(f"{BASE}/statement", params=query).status_code == 200
    review_score(register_loaded, scored["甲1"], 91)
    refused = client.get(f"{BASE}/statement", params=query)
    assert refused.status_code == 409 and refused.json()["code"] == "stale_root"
    assert "证书批次已变更" in refused.json()["message"]
    now = re.search(r'<code id="root">([0-9a-f]{64})</code>', client.get(BASE).text)
    assert now is not None and now.group(1) != shown.group(1)
    fresh = client.get(f"{BASE}/statement", params={**query, "root": now.group(1)})
    assert fresh.status_code == 200


def test_a_forged_signature_and_a_post_without_csrf_are_refused(
    school: tuple[TestClient, str],
) -> None:
    client, csrf = school
    _, enrolled = enrol(client, csrf)
    assert run("keys", "approve", enrolled["key_id"]).exit_code == 0
    code, answer = browser_sign(client, csrf, SigningKey.generate(), enrolled["key_id"])
    assert code == 409 and answer["code"] == "bad_signature"
    no_csrf = client.post(f"{BASE}/keys", data={"public_key": "AAAA"})
    assert no_csrf.status_code == 403


def test_another_schools_batch_keys_and_statement_answer_404(
    school: tuple[TestClient, str],
) -> None:
    client, csrf = school
    other = "/schools/P1/sittings/2024-1/certificates"
    assert client.get(other).status_code == 404
    assert client.get(f"{other}/statement", params={"key_id": "x"}).status_code == 404
    posted = client.post(
        f"{other}/signature",
        data={"key_id": "x", "created": "", "digest": "", "signature": "", "csrf": csrf},
    )
    assert posted.status_code == 404
    assert client.post(f"{other}/keys", data={"public_key": "x", "csrf": csrf}).status_code == 404


def test_signing_is_refused_before_the_publicity_window_has_passed(
    school: tuple[TestClient, str],
) -> None:
    client, csrf = school
    _, enrolled = enrol(client, csrf)
    assert run("keys", "approve", enrolled["key_id"]).exit_code == 0
    with session_scope() as session, pytest.raises(SigningRefused) as refused:
        sitting = get_sitting(session, "2024-1")
        before_close = datetime(2024, 5, 31, 23, tzinfo=SHANGHAI)
        signing_statement(session, sitting, "P3", enrolled["key_id"], before_close, PUBLIC_URL)
    assert refused.value.code == "before_publicity"


def test_revoking_a_key_voids_its_signature_on_a_batch_not_yet_issued(
    school: tuple[TestClient, str], register_loaded: Path
) -> None:
    client, csrf = school
    key, enrolled = enrol(client, csrf)
    assert run("keys", "approve", enrolled["key_id"]).exit_code == 0
    assert browser_sign(client, csrf, key, enrolled["key_id"])[0] == 200
    organiser = new_key(register_loaded, "organiser")
    assert (
        run(
            "sign", "2024-1", "--party", "organiser", "--key", str(organiser), "--as-of", AFTER
        ).exit_code
        == 0
    )
    revoked = run("keys", "revoke", enrolled["key_id"])
    assert revoked.exit_code == 0 and "1 signature(s)" in revoked.stdout
    assert issue_now() == (0, 0)
    assert "待签发：学校" in " ".join(missing_now())
    code, answer = browser_sign(client, csrf, key, enrolled["key_id"])
    assert code == 409 and answer["code"] == "revoked_key"
    again, renewed = enrol(client, csrf)  # re-enrolment: a new key, pending again
    assert renewed["key_id"] != enrolled["key_id"]
    assert browser_sign(client, csrf, again, renewed["key_id"])[1]["code"] == "pending_key"


def test_a_browser_signature_is_plain_ed25519_over_the_documented_bytes(
    school: tuple[TestClient, str],
) -> None:
    """SHA-256(JCS(proof config)) ‖ SHA-256(JCS(statement)), recomputed with rfc8785."""
    import hashlib

    import rfc8785

    client, csrf = school
    _, enrolled = enrol(client, csrf)
    assert run("keys", "approve", enrolled["key_id"]).exit_code == 0
    made = client.get(f"{BASE}/statement", params={"key_id": enrolled["key_id"]}).json()
    config, statement = made["proof_config"], made["statement"]
    assert config["verificationMethod"] == enrolled["key_id"] and config["party"] == "P3"
    assert statement["type"] == "examflow-certificate-batch" and statement["size"] == 1
    expected = (
        hashlib.sha256(rfc8785.dumps(config)).digest()
        + hashlib.sha256(rfc8785.dumps(statement)).digest()
    )
    assert base64.b64decode(made["message_b64"]) == expected
    assert hashlib.sha256(rfc8785.dumps(statement)).hexdigest() == made["digest"]
    assert json.loads(json.dumps(statement)) == statement


SIGN_IN_BROWSER = re.compile(r"https?://\S+/login\?t=[A-Za-z0-9_\-]+")
HOLD_STATEMENT = """async (school) => {
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open("examflow-signing-keys", 1); r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error); });
  const entry = await new Promise((ok) => {
    const r = db.transaction("keys").objectStore("keys").get(school);
    r.onsuccess = () => ok(r.result); });
  const base = document.getElementById("signing").dataset.base;
  const made = await (await fetch(base + "/statement?key_id=" + entry.keyId)).json();
  const bytes = Uint8Array.from(atob(made.message_b64), (c) => c.charCodeAt(0));
  const signature = await crypto.subtle.sign({name: "Ed25519"}, entry.privateKey, bytes);
  return {key_id: entry.keyId, created: made.created, digest: made.digest,
          signature: btoa(String.fromCharCode(...new Uint8Array(signature)))};
}"""
POST_HELD = """async (held) => {
  const section = document.getElementById("signing");
  const body = new URLSearchParams(held); body.append("csrf", section.dataset.csrf);
  const answer = await fetch(section.dataset.base + "/signature", {method: "POST", body});
  return [answer.status, await answer.json()];
}"""


@pytest.mark.ui
def test_in_chromium_a_school_enrols_signs_and_anyone_verifies_its_certificate(
    register_loaded: Path,
    chromium_browser: "Browser",
    scored: dict[str, str],
    mail_sink: MailSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.sync_api import Page, expect

    try:
        from pyzbar.pyzbar import decode
    except ImportError as exc:
        missing_system_tool(f"needs pyzbar (libzbar0): {exc}")
    from PIL import Image

    from portal.server import portal_server
    from tests.test_portal_browser import free_port, mail_arrived

    port = free_port()
    public = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", public)
    settings = Settings(portal_as_of=AFTER, public_url=public)

    def sign_in_as_p3(page: Page) -> None:
        before = len(mail_arrived(mail_sink.mail_dir, timeout=0))
        page.goto(public + "/")
        page.get_by_label("学校代码").fill("P3")
        page.get_by_label("邮箱").fill("a@p3.edu.cn")
        page.get_by_role("button", name="发送登录链接").click()
        page.get_by_role("status").wait_for()
        for _ in range(150):
            messages = mail_arrived(mail_sink.mail_dir)
            if len(messages) > before:
                break
            page.wait_for_timeout(100)
        from tests.mailbox import text_of

        link = SIGN_IN_BROWSER.search(text_of(messages[-1]))
        assert link is not None
        page.goto(link.group(0))
        page.get_by_role("button", name="登录").click()
        page.goto(public + BASE)

    status_of = "#sign-status"

    def enrol_in_a_new_profile() -> tuple[Page, str]:
        """A fresh browser profile of P3 signs in and makes its key: pending, with its id."""
        page = chromium_browser.new_context().new_page()
        sign_in_as_p3(page)
        expect(page.locator("#browser-key")).to_contain_text("还没有本校的签名密钥")
        page.get_by_role("button", name="生成签名密钥").click()
        expect(page.locator(status_of)).to_contain_text("待考务人员审核")
        key = KEY_ID.search(page.locator(status_of).inner_text())
        assert key is not None
        return page, key.group(0)

    with portal_server(settings, port):
        first, kid = enrol_in_a_new_profile()
        first.get_by_role("button", name="签署", exact=True).click()
        expect(first.locator(status_of)).to_contain_text("尚待审核")
        assert run("keys", "approve", kid).exit_code == 0
        first.get_by_role("button", name="签署", exact=True).click()
        expect(first.locator(status_of)).to_contain_text("已签署")

        organiser = new_key(register_loaded, "organiser")
        signed = run(
            *("sign", "2024-1", "--party", "organiser"),
            *("--key", str(organiser), "--as-of", AFTER),
        )
        assert signed.exit_code == 0
        assert issue_now() == (1, 0)
        out = register_loaded / "certs"
        assert run("certificates", "export", "2024-1", "-o", str(out)).exit_code == 0
        number = f"WD{scored['甲1']}"
        checked = run("certificates", "verify", str(out / f"{number}.json"))
        assert checked.exit_code == 0 and "signed by organiser and P3" in checked.stdout
        # as anyone else checks it: the portal's published keys and the list it names, by URL
        keys_url = f"{public}/keys.json"
        third = run("certificates", "verify", str(out / f"{number}.json"), "--keys", keys_url)
        assert third.exit_code == 0 and "not revoked" in third.stdout, third.output

        # a second browser profile of the same school: its own key, pending, cannot sign
        second, other = enrol_in_a_new_profile()
        assert other != kid
        second.get_by_role("button", name="签署", exact=True).click()
        expect(second.locator(status_of)).to_contain_text("尚待审核")

        # school A (P3) cannot reach school B's (P1) batch
        other_school = first.request.get(public + "/schools/P1/sittings/2024-1/certificates")
        assert other_school.status == 404

        # a signature made over a root that a review has since replaced
        held = first.evaluate(HOLD_STATEMENT, "P3")
        review = write_csv(register_loaded / "review.csv", ["准考证号"], [[scored["甲1"]]])
        filed = run("review", "file", "2024-1", "P3", str(review), "--as-of", "2024-05-30")
        assert filed.exit_code == 0
        with ThreadPoolExecutor(1) as other_thread:  # it mails: asyncio off Playwright's loop
            resolve = ("review", "resolve", "1", "--score", "95", "--as-of", AFTER)
            assert other_thread.submit(run, *resolve).result().exit_code == 0
        status, answer = first.evaluate(POST_HELD, held)
        assert status == 409 and answer["code"] == "stale_root"
        # 签署 on the page that still shows the old root: refused before anything is signed
        first.get_by_role("button", name="签署", exact=True).click()
        expect(first.locator(status_of)).to_contain_text("证书批次已变更")
        first.reload()  # the new root, read: now it signs
        first.get_by_role("button", name="签署", exact=True).click()
        expect(first.locator(status_of)).to_contain_text("已签署")

        # anyone's phone: the QR code of the PDF, read by zbar, opens the page
        pdf = out / f"{number}.pdf"

        subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(out / "page")], check=True)
        [code] = decode(Image.open(next(out.glob("page-*.png"))))
        assert code.data.decode() == f"{public}/verify/{number}"
        visitor = chromium_browser.new_context().new_page()
        visitor.goto(code.data.decode())
        expect(visitor.get_by_role("status")).to_contain_text("查验结果：有效")
        expect(visitor.get_by_role("table", name="证书信息")).to_contain_text("甲1")
        revoked = run(
            *("certificates", "revoke", number, "--reason", "测试撤销"),
            *("--as-of", "2024-06-02T09:00"),
        )
        assert revoked.exit_code == 0
        visitor.reload()
        expect(visitor.get_by_role("alert")).to_contain_text("查验结果：已撤销")
        expect(visitor.get_by_role("alert")).to_contain_text("测试撤销")
        visitor.goto(public + "/verify/WD404")
        expect(visitor.get_by_role("alert")).to_contain_text("无此证书")
