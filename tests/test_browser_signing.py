"""A school signs its certificate batch from the portal with a key made in its browser.

Over HTTP, the browser's part is played by PyNaCl (libsodium), an Ed25519 implementation that
shares no code with examflow's; the Playwright test drives Debian's chromium, whose WebCrypto
makes and keeps the key."""

import base64
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

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
from tests.test_certificates import AFTER, issue_now, missing_now, new_key
from tests.test_portal_security import ask_for_link, csrf_of, mailed_tokens, sign_in

BASE = "/schools/P3/sittings/2024-1/certificates"
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
    review = write_csv(register_loaded / "review.csv", ["准考证号"], [[scored["甲1"]]])
    assert (
        run("review", "file", "2024-1", "P3", str(review), "--as-of", "2024-05-30").exit_code == 0
    )
    assert run("review", "resolve", "1", "--score", "91", "--as-of", AFTER).exit_code == 0
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
        signing_statement(
            session, sitting, "P3", enrolled["key_id"], datetime(2024, 5, 31, 23, tzinfo=SHANGHAI)
        )
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
