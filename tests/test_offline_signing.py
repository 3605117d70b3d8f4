"""A school signs its certificate batch offline with a key file (`examflow keys new`): it
downloads the signing request from its certificates page (下载签署内容), signs it with
`examflow sign --statement` without the database, and uploads the signature file (上传签名).

The bytes signed are recomputed here with the `rfc8785` package and the signature checked with
PyNaCl (libsodium), not with examflow's code."""

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rfc8785
from fastapi.testclient import TestClient
from nacl.signing import VerifyKey
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from examflow.synthetic import write_csv
from models.certificates import PartyKey, SignatureRecord
from models.portal_access import PortalAudit
from notifications.sink import MailSink
from portal.app import create_app
from portal.auth import SESSION_COOKIE
from tests.cli import Result, run
from tests.test_certificates import AFTER, issue_now, missing_now, new_key
from tests.test_portal_security import ask_for_link, csrf_of, mailed_tokens, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser

BASE = "/schools/P3/sittings/2024-1/certificates"
NO_DATABASE = "sqlite:////dev/null/examflow/nowhere.db"  # /dev/null is a file: no folder, no db


def signed_in(school: str, address: str, sink: MailSink, as_of: str = AFTER) -> TestClient:
    client = TestClient(create_app(Settings(portal_as_of=as_of)))
    client.__enter__()
    assert ask_for_link(client, school, address) == 200
    assert sign_in(client, mailed_tokens(sink)[-1]) == 303
    return client


@pytest.fixture
def p3(register_loaded: Path, scored: dict[str, str], mail_sink: MailSink) -> Iterator[TestClient]:
    """P3 signed in to the portal after publicity (甲1 passed: a batch of one)."""
    client = signed_in("P3", "a@p3.edu.cn", mail_sink)
    yield client
    client.__exit__(None, None, None)


def key_id_of(party: str) -> str:
    with session_scope() as session:
        keys = session.exec(select(PartyKey).where(PartyKey.party == party)).all()
    assert len(keys) == 1
    return keys[0].key_id


def public_key_of(kid: str) -> bytes:
    with session_scope() as session:
        key = session.get(PartyKey, kid)
        assert key is not None
        return base64.b64decode(key.public_key_b64)


def download(client: TestClient, kid: str, folder: Path, base: str = BASE) -> Path:
    answer = client.get(f"{base}/statement.json", params={"key_id": kid})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment;")
    path = folder / f"request-{kid[-4:]}.json"
    path.write_bytes(answer.content)
    return path


def sign_offline(
    request: Path, party: str, key: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> Result:
    """`examflow sign --statement` with no reachable database: it must not need one."""
    with monkeypatch.context() as m:
        m.setenv("EXAMFLOW_DATABASE_URL", NO_DATABASE)
        return run(
            *("sign", "2024-1", "--party", party, "--key", str(key)),
            *("--statement", str(request), "-o", str(out), "--as-of", AFTER),
        )


def upload(client: TestClient, content: bytes, name: str = "sig.json") -> Any:
    csrf = csrf_of(client.get(BASE).text)
    return client.post(
        f"{BASE}/signature-file",
        files={"signature_file": (name, content, "application/json")},
        data={"csrf": csrf},
    )


def p3_signatures() -> list[SignatureRecord]:
    with session_scope() as session:
        return list(
            session.exec(
                select(SignatureRecord).where(
                    SignatureRecord.school_code == "P3", SignatureRecord.party == "P3"
                )
            )
        )


def test_a_statement_downloaded_signed_offline_and_uploaded_signs_the_batch_which_then_issues(
    p3: TestClient, register_loaded: Path, scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key(register_loaded, "P3")  # examflow keys new --party P3: approved at once
    kid = key_id_of("P3")
    page = p3.get(BASE).text
    assert "下载签署内容" in page and f'name="key_id" value="{kid}"' in page
    assert "签署内容下载后 2 小时内有效" in page
    assert '<label for="signature-file">签名文件</label>' in page and "上传签名" in page

    request_path = download(p3, kid, register_loaded)
    request = json.loads(request_path.read_text(encoding="utf-8"))
    assert request["key_id"] == kid and request["sitting"] == "2024-1"
    assert request["party"] == "P3" and request["created"] == "2024-06-01T10:00:00+08:00"
    assert request["expires"] == "2024-06-01T12:00:00+08:00"
    statement = request["statement"]
    assert statement["sitting"] == "2024-1" and statement["school"] == "P3"
    assert statement["size"] == 1 and re.fullmatch(r"[0-9a-f]{64}", statement["root"])
    config = {  # the documented proof config, written out here
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": "DataIntegrityProof",
        "cryptosuite": "examflow-eddsa-jcs-merkle-2024",
        "created": "2024-06-01T10:00:00+08:00",
        "verificationMethod": kid,
        "proofPurpose": "assertionMethod",
        "party": "P3",
    }
    assert hashlib.sha256(rfc8785.dumps(statement)).hexdigest() == request["digest"]
    message = (
        hashlib.sha256(rfc8785.dumps(config)).digest()
        + hashlib.sha256(rfc8785.dumps(statement)).digest()
    )
    assert base64.b64decode(request["message_b64"]) == message

    signature_path = register_loaded / "P3-signature.json"
    signed = sign_offline(request_path, "P3", key, signature_path, monkeypatch)
    assert signed.exit_code == 0, signed.output
    assert str(signature_path) in signed.stdout and "1 certificate(s)" in signed.stdout
    made = json.loads(signature_path.read_text(encoding="utf-8"))
    assert {k: made[k] for k in ("sitting", "party", "key_id", "created", "digest")} == {
        "sitting": "2024-1",
        "party": "P3",
        "key_id": kid,
        "created": request["created"],
        "digest": request["digest"],
    }
    VerifyKey(public_key_of(kid)).verify(message, base64.b64decode(made["signature_b64"]))
    assert p3_signatures() == []  # signing offline stored nothing

    answer = upload(p3, signature_path.read_bytes())
    assert answer.status_code == 200 and "签名文件核验通过，已签署" in answer.text
    assert "贵校已签署" in answer.text
    (stored,) = p3_signatures()
    assert (stored.key_id, stored.batch_digest) == (kid, request["digest"])
    with session_scope() as session:
        audit = session.exec(select(PortalAudit).where(PortalAudit.action == "batch_signed")).one()
    assert audit.school_code == "P3" and audit.detail.endswith("(signature file)")
    again = upload(p3, signature_path.read_bytes())
    assert again.status_code == 200 and "无需重复上传" in again.text
    assert len(p3_signatures()) == 1
    assert "待签发：培训评价组织" in " ".join(missing_now())  # the school's part is done

    organiser = new_key(register_loaded, "organiser")
    by_organiser = run(
        "sign", "2024-1", "--party", "organiser", "--key", str(organiser), "--as-of", AFTER
    )
    assert by_organiser.exit_code == 0, by_organiser.output
    assert issue_now() == (1, 0)
    out = register_loaded / "certs"
    assert run("certificates", "export", "2024-1", "-o", str(out), "--no-pdf").exit_code == 0
    checked = run("certificates", "verify", str(out / f"WD{scored['甲1']}.json"))
    assert checked.exit_code == 0 and "signed by organiser and P3" in checked.stdout


def test_files_that_are_not_signature_files_are_refused_saying_so_and_nothing_is_stored(
    p3: TestClient, register_loaded: Path
) -> None:
    key = new_key(register_loaded, "P3")
    cases = [
        (key.read_bytes(), "不是 JSON 格式的签名文件"),  # the key file itself, by mistake
        (b"{" + b" " * 5000 + b"}", "文件超过 4 KB"),
        (json.dumps({"sitting": "2024-1", "party": "P3"}).encode(), "有问题的字段"),
        (b"", "请选择"),
    ]
    for content, said in cases:
        answer = upload(p3, content)
        assert answer.status_code == 422, content[:40]
        assert said in answer.text and "未签署" in answer.text
    no_csrf = p3.post(f"{BASE}/signature-file", files={"signature_file": ("s.json", b"{}")})
    assert no_csrf.status_code == 403
    assert p3_signatures() == []


def test_a_signature_file_for_another_schools_statement_is_refused(
    p3: TestClient, register_loaded: Path, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_key(register_loaded, "P3")
    p1_key = new_key(register_loaded, "P1")
    p1 = signed_in("P1", "a@p1.edu.cn", mail_sink)  # 乙 passed at P1
    try:
        p1_request = download(
            p1, key_id_of("P1"), register_loaded, "/schools/P1/sittings/2024-1/certificates"
        )
    finally:
        p1.__exit__(None, None, None)
    as_p3 = sign_offline(p1_request, "P3", p1_key, register_loaded / "x.json", monkeypatch)
    assert as_p3.exit_code == 1 and "the statement is for P1, not P3" in as_p3.stderr

    p1_signature = register_loaded / "P1-signature.json"
    assert sign_offline(p1_request, "P1", p1_key, p1_signature, monkeypatch).exit_code == 0
    answer = upload(p3, p1_signature.read_bytes())
    assert answer.status_code == 409
    assert "该签名文件不是本校的签名（签署方为 P1），未保存" in answer.text
    relabelled = json.loads(p1_signature.read_text(encoding="utf-8")) | {"party": "P3"}
    answer = upload(p3, json.dumps(relabelled).encode())
    assert answer.status_code == 409 and "不是本校已登记的签名密钥" in answer.text
    assert p3_signatures() == []


def test_a_signature_file_over_a_root_that_is_no_longer_current_is_refused(
    p3: TestClient, register_loaded: Path, scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key(register_loaded, "P3")
    request = download(p3, key_id_of("P3"), register_loaded)
    signature = register_loaded / "P3-signature.json"
    assert sign_offline(request, "P3", key, signature, monkeypatch).exit_code == 0
    review = write_csv(register_loaded / "review.csv", ["准考证号"], [[scored["甲1"]]])
    assert (
        run("review", "file", "2024-1", "P3", str(review), "--as-of", "2024-05-30").exit_code == 0
    )
    assert run("review", "resolve", "1", "--score", "91", "--as-of", AFTER).exit_code == 0
    answer = upload(p3, signature.read_bytes())
    assert answer.status_code == 409
    assert "证书批次已变更" in answer.text and "该签名文件签署的是旧内容，未保存" in answer.text
    assert p3_signatures() == []
    assert "待签发：培训评价组织、学校" in " ".join(missing_now())


def test_a_statement_past_its_lifetime_is_refused_by_the_command_and_by_the_portal(
    p3: TestClient, register_loaded: Path, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key(register_loaded, "P3")
    request = download(p3, key_id_of("P3"), register_loaded)
    signature = register_loaded / "P3-signature.json"
    late = "2024-06-01T12:00:01"
    refused = run(
        *("sign", "2024-1", "--party", "P3", "--key", str(key), "--statement", str(request)),
        *("-o", str(signature), "--as-of", late),
    )
    assert refused.exit_code == 1 and "expired at 2024-06-01T12:00:00+08:00" in refused.stderr
    assert sign_offline(request, "P3", key, signature, monkeypatch).exit_code == 0
    with TestClient(create_app(Settings(portal_as_of=late))) as later:
        later.cookies.set(SESSION_COOKIE, p3.cookies[SESSION_COOKIE])  # the same school, later
        answer = upload(later, signature.read_bytes())
    assert answer.status_code == 409 and "签署内容已过期（下载后 2 小时内有效）" in answer.text
    assert p3_signatures() == []


def test_the_command_refuses_a_tampered_request_and_a_key_file_of_another_key(
    p3: TestClient, register_loaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key(register_loaded, "P3")
    request = download(p3, key_id_of("P3"), register_loaded)
    document = json.loads(request.read_text(encoding="utf-8"))
    other_bytes = base64.b64encode(hashlib.sha256(b"something else").digest() * 2).decode()
    tampered = register_loaded / "tampered.json"
    tampered.write_text(json.dumps(document | {"message_b64": other_bytes}), encoding="utf-8")
    out = register_loaded / "sig.json"
    result = sign_offline(tampered, "P3", key, out, monkeypatch)
    assert result.exit_code == 1 and "message bytes are not" in result.stderr
    larger = document | {"statement": document["statement"] | {"size": 2}}
    tampered.write_text(json.dumps(larger), encoding="utf-8")
    result = sign_offline(tampered, "P3", key, out, monkeypatch)
    assert result.exit_code == 1 and "digest is not the digest of its statement" in result.stderr
    other_key = register_loaded / "other.pem"
    assert run("keys", "new", "--party", "P3", "-o", str(other_key)).exit_code == 0
    result = sign_offline(request, "P3", other_key, out, monkeypatch)
    assert result.exit_code == 1 and f"to be signed with key {document['key_id']}" in result.stderr
    assert not out.exists()
    garbage = register_loaded / "garbage.json"
    garbage.write_text("not json", encoding="utf-8")
    result = sign_offline(garbage, "P3", key, out, monkeypatch)
    assert result.exit_code == 1 and "not a signing request" in result.stderr


def test_with_several_approved_keys_the_page_offers_a_labelled_choice_of_key(
    p3: TestClient, register_loaded: Path
) -> None:
    new_key(register_loaded, "P3")
    assert run("keys", "new", "--party", "P3", "-o", str(register_loaded / "b.pem")).exit_code == 0
    page = p3.get(BASE).text
    assert '<label for="offline-key">签名密钥</label>' in page
    assert '<select id="offline-key" name="key_id">' in page
    with session_scope() as session:
        kids = session.exec(select(PartyKey.key_id).where(PartyKey.party == "P3")).all()
    assert all(f'<option value="{kid}">' in page for kid in kids) and len(kids) == 2
    refused = p3.get(f"{BASE}/statement.json", params={"key_id": "ed25519:0000000000000000"})
    assert (
        refused.status_code == 409
        and "签名密钥 ed25519:0000000000000000 不是本校已登记的签名密钥" in refused.text
    )


def test_the_page_points_browsers_without_ed25519_and_without_javascript_to_the_key_file(
    p3: TestClient,
) -> None:
    page = p3.get(BASE).text
    unsupported = page.split('id="unsupported"')[1].split("</div>")[0]
    noscript = page.split("<noscript>")[1].split("</noscript>")[0]
    for text in (unsupported, noscript):
        assert "--statement" in text and "上传签名文件" in text and "下载签署内容" in text


@pytest.mark.ui
def test_in_chromium_without_javascript_a_school_downloads_signs_offline_and_uploads(
    register_loaded: Path,
    chromium_browser: "Browser",
    scored: dict[str, str],
    mail_sink: MailSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole offline path in a browser with JavaScript off: the forms alone do it."""
    from playwright.sync_api import expect

    from portal.server import portal_server
    from tests.test_portal_browser import free_port
    from tests.test_portal_browser import sign_in as sign_in_in_browser

    key = new_key(register_loaded, "P3")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", public)
    settings = Settings(portal_as_of=AFTER, public_url=public)
    with portal_server(settings, port):
        without_js = chromium_browser.new_context(java_script_enabled=False, accept_downloads=True)
        page = without_js.new_page()
        sign_in_in_browser(page, public, mail_sink.mail_dir)
        page.goto(public + BASE)
        with page.expect_download() as downloading:
            page.get_by_role("button", name="下载签署内容").click()
        request = register_loaded / downloading.value.suggested_filename
        downloading.value.save_as(request)
        assert request.name == "2024-1-P3-signing-request.json"
        signature = register_loaded / "P3-signature.json"
        assert sign_offline(request, "P3", key, signature, monkeypatch).exit_code == 0
        page.get_by_label("签名文件").set_input_files(signature)
        page.get_by_role("button", name="上传签名").click()
        expect(page.get_by_role("status").first).to_contain_text("签名文件核验通过，已签署")
        expect(page.get_by_text("签署状态：贵校已签署")).to_be_visible()
    assert len(p3_signatures()) == 1
