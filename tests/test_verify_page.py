"""The public verification page a certificate's QR code opens: valid / revoked / unknown, the
credential as JSON, an ID check against the salted digest; cached and rate limited."""

import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from models.certificates import HolderCheck
from models.registration import Registration
from portal.app import create_app
from portal.routes import verify
from tests.cli import run
from tests.conftest import missing_system_tool
from tests.test_certificates import AFTER, issue_now, new_key
from tests.test_portal_security import csrf_of, server_lines

PUBLIC = "https://zs.example.cn"


def sign_and_issue(folder: Path) -> dict[str, Path]:
    keys = {party: new_key(folder, party) for party in ("organiser", "P3")}
    for party, key in keys.items():
        signed = run("sign", "2024-1", "--party", party, "--key", str(key), "--as-of", AFTER)
        assert signed.exit_code == 0, signed.output
    assert issue_now()[0] == 1
    return keys


@pytest.fixture
def issued(register_loaded: Path, scored: dict[str, str]) -> dict[str, Path]:
    """甲1 (P3, 88 points) holds an issued e-certificate WD<ticket>; returns the key files."""
    return sign_and_issue(register_loaded)


@pytest.fixture
def client(issued: dict[str, Path]) -> Iterator[TestClient]:
    settings = Settings(portal_as_of=AFTER, public_url=PUBLIC)
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        yield c


def holder_id(name: str) -> str:
    with session_scope() as session:
        registration = session.exec(select(Registration).where(Registration.name == name)).one()
        return registration.id_number


def test_a_valid_certificate_shows_holder_level_sitting_parties_and_date_never_the_id(
    client: TestClient, scored: dict[str, str]
) -> None:
    page = client.get(f"/verify/WD{scored['甲1']}")
    assert page.status_code == 200
    assert "查验结果：有效" in page.text
    for shown in ("甲1", "初级", "2024-1", "2024-06-01"):
        assert shown in page.text
    assert "北京鸿科经纬科技有限公司、四号职业技术学院" in page.text  # both issuing parties
    full_id = holder_id("甲1")
    assert full_id not in page.text and full_id[:6] + "********" not in page.text
    assert "idDigest" not in page.text and "idSalt" not in page.text


def test_an_unknown_number_answers_404_saying_there_is_no_such_certificate(
    client: TestClient,
) -> None:
    page = client.get("/verify/WD0000000000")
    assert page.status_code == 404 and "无此证书" in page.text
    assert client.get("/verify/WD0000000000.json").status_code == 404


def test_the_json_is_the_issued_credential_and_verifies_with_the_cli(
    client: TestClient, scored: dict[str, str], register_loaded: Path
) -> None:
    answer = client.get(f"/verify/WD{scored['甲1']}.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    credential = answer.json()
    assert credential["credentialSubject"]["certificateNumber"] == f"WD{scored['甲1']}"
    assert [p["party"] for p in credential["proof"]] == ["organiser", "P3"]
    path = register_loaded / "downloaded.json"
    path.write_text(answer.text, encoding="utf-8")
    checked = run("certificates", "verify", str(path))
    assert checked.exit_code == 0 and "signed by organiser and P3" in checked.stdout


def test_answers_are_cached_but_revalidated_and_a_repeat_with_the_etag_is_304(
    client: TestClient, scored: dict[str, str]
) -> None:
    number = f"WD{scored['甲1']}"
    for path, scope in ((f"/verify/{number}.json", "public"), (f"/verify/{number}", "private")):
        first = client.get(path)
        assert first.headers["cache-control"] == f"{scope}, no-cache"
        etag = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""


def test_the_id_check_says_whether_the_id_is_the_holders_and_keeps_nothing(
    client: TestClient, scored: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    number = f"WD{scored['甲1']}"
    csrf = csrf_of(client.get(f"/verify/{number}").text)
    own, other = holder_id("甲1"), holder_id("甲0")
    matched = client.post(f"/verify/{number}/holder", data={"id_number": own, "csrf": csrf})
    assert matched.status_code == 200 and "核对结果：一致" in matched.text
    assert own not in matched.text
    lower_x = own[:-1] + own[-1].lower()  # the same ID as typed with a lower-case x, if any
    assert (
        "核对结果：一致"
        in client.post(f"/verify/{number}/holder", data={"id_number": lower_x, "csrf": csrf}).text
    )
    wrong = client.post(f"/verify/{number}/holder", data={"id_number": other, "csrf": csrf})
    assert "核对结果：不一致" in wrong.text
    lines = server_lines(caplog)
    assert f"POST /verify/{number}/holder 200" in lines
    assert own not in lines and other not in lines
    with session_scope() as session:
        checks = session.exec(select(HolderCheck)).all()
    assert [c.certificate_number for c in checks] == [number] * 3  # counted, ID not kept


def test_an_id_check_without_the_csrf_token_is_refused(
    client: TestClient, scored: dict[str, str]
) -> None:
    answer = client.post(f"/verify/WD{scored['甲1']}/holder", data={"id_number": "x"})
    assert answer.status_code == 403


def test_id_checks_are_limited_to_ten_an_hour_per_certificate(
    client: TestClient, scored: dict[str, str]
) -> None:
    number = f"WD{scored['甲1']}"
    csrf = csrf_of(client.get(f"/verify/{number}").text)
    codes = [
        client.post(
            f"/verify/{number}/holder", data={"id_number": holder_id("甲1"), "csrf": csrf}
        ).status_code
        for _ in range(11)
    ]
    assert codes == [200] * 10 + [429]


def test_page_requests_are_limited_per_client_address(
    issued: dict[str, Path], scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "PAGE_LIMIT", 3)
    with TestClient(create_app(Settings(portal_as_of=AFTER))) as c:
        codes = [c.get(f"/verify/WD{scored['甲1']}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_the_qr_code_in_the_certificate_pdf_opens_its_verification_page(
    client: TestClient,
    scored: dict[str, str],
    register_loaded: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The PDF rasterised by poppler and its QR code read by zbar (neither shares code with
    the encoder), then the decoded address followed."""
    try:
        from pyzbar.pyzbar import decode
    except ImportError as exc:
        missing_system_tool(f"no QR decoder: {exc} (apt-get install -y libzbar0)")
    if not shutil.which("pdftoppm"):
        missing_system_tool("no pdftoppm (apt-get install -y poppler-utils)")
    from PIL import Image

    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", PUBLIC)
    out = register_loaded / "certs"
    assert run("certificates", "export", "2024-1", "--school", "P3", "-o", str(out)).exit_code == 0
    number = f"WD{scored['甲1']}"
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(out / f"{number}.pdf"), str(out / "page")],
        check=True,
    )
    [code] = decode(Image.open(next(out.glob("page-*.png"))))
    url = code.data.decode()
    assert url == f"{PUBLIC}/verify/{number}"
    page = client.get(url.removeprefix(PUBLIC))
    assert page.status_code == 200 and "查验结果：有效" in page.text and "甲1" in page.text
    exported = json.loads((out / f"{number}.json").read_text(encoding="utf-8"))
    assert exported == client.get(url.removeprefix(PUBLIC) + ".json").json()
