"""Revocation: `certificates revoke|unrevoke`, the credential's W3C Bitstring Status List entry,
the organiser-signed list the portal publishes, and a review that supersedes an issued
certificate. The list is read back and its signature checked with PyNaCl and the `rfc8785`
package, not with examflow's code."""

import base64
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import rfc8785
from fastapi.testclient import TestClient
from nacl.signing import VerifyKey
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from examflow.synthetic import write_csv
from models.certificates import PartyKey
from portal.app import create_app
from tests.cli import run
from tests.test_certificates import AFTER, issue_now
from tests.test_verify_page import sign_and_issue

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
PUBLIC = "https://zs.example.cn"  # EXAMFLOW_PUBLIC_URL, not the default
LIST_URL = "https://zs.example.cn/status/2024-1/revocation"


@pytest.fixture
def keys(
    register_loaded: Path, scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """甲1's certificate signed and issued by the commands of an organiser whose portal is at
    PUBLIC."""
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", PUBLIC)
    return sign_and_issue(register_loaded)


@pytest.fixture
def client(keys: dict[str, Path]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(portal_as_of="2024-06-03T10:00", public_url=PUBLIC))) as c:
        yield c


def exported(folder: Path, number: str, name: str) -> Path:
    out = folder / name
    assert run("certificates", "export", "2024-1", "-o", str(out), "--no-pdf").exit_code == 0
    return out / f"{number}.json"


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + B58.index(char)
    return number.to_bytes((number.bit_length() + 7) // 8, "big").rjust(64, b"\0")


def organiser_public_key() -> bytes:
    with session_scope() as session:
        key = session.exec(select(PartyKey).where(PartyKey.party == "organiser")).one()
        return base64.b64decode(key.public_key_b64)


def read_list(client: TestClient) -> tuple[dict[str, Any], bytes]:
    """The published list, its eddsa-jcs-2022 proof checked independently; and its bits."""
    answer = client.get("/status/2024-1/revocation")
    assert answer.status_code == 200
    document = answer.json()
    proof = document.pop("proof")
    config = {k: v for k, v in proof.items() if k != "proofValue"} | {
        "@context": document["@context"]
    }
    message = (
        hashlib.sha256(rfc8785.dumps(config)).digest()
        + hashlib.sha256(rfc8785.dumps(document)).digest()
    )
    assert proof["cryptosuite"] == "eddsa-jcs-2022" and proof["proofValue"][0] == "z"
    VerifyKey(organiser_public_key()).verify(message, b58decode(proof["proofValue"][1:]))
    encoded = document["credentialSubject"]["encodedList"]
    assert encoded[0] == "u"  # multibase base64url, no padding
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    return document, bits


def bit(bits: bytes, index: int) -> int:
    return (bits[index // 8] >> (7 - index % 8)) & 1  # bit 0: the first byte's leftmost bit


def review_score(folder: Path, ticket: str, score: int) -> None:
    """P3 asks for a review of `ticket`, which ops resolve with `score`."""
    review = write_csv(folder / "review.csv", ["准考证号"], [[ticket]])
    filed = run("review", "file", "2024-1", "P3", str(review), "--as-of", "2024-05-30")
    assert filed.exit_code == 0, filed.output
    assert run("review", "resolve", "1", "--score", str(score), "--as-of", AFTER).exit_code == 0


def sign_again(keys: dict[str, Path]) -> None:
    """Both parties sign the sitting's current batches with their key files."""
    for party in ("organiser", "P3"):
        signed = run(
            "sign", "2024-1", "--party", party, "--key", str(keys[party]), "--as-of", AFTER
        )
        assert signed.exit_code == 0, signed.output


def test_a_credential_carries_a_bitstring_status_list_revocation_entry_at_the_public_url(
    keys: dict[str, Path], scored: dict[str, str], register_loaded: Path, client: TestClient
) -> None:
    number = f"WD{scored['甲1']}"
    credential = json.loads(exported(register_loaded, number, "c").read_text(encoding="utf-8"))
    entry = credential["credentialStatus"]
    index = entry["statusListIndex"]
    assert entry == {
        "id": f"{LIST_URL}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": index,
        "statusListCredential": LIST_URL,
    }
    assert index.isdigit()
    served = client.get(urlsplit(entry["statusListCredential"]).path)  # the portal at PUBLIC
    assert served.status_code == 200 and served.json()["id"] == LIST_URL


def test_a_revoked_certificate_is_reported_with_reason_and_date_and_can_be_unrevoked(
    keys: dict[str, Path], scored: dict[str, str], register_loaded: Path, client: TestClient
) -> None:
    number = f"WD{scored['甲1']}"
    path = exported(register_loaded, number, "before")
    index = int(json.loads(path.read_text(encoding="utf-8"))["credentialStatus"]["statusListIndex"])
    document, bits = read_list(client)  # published when the organiser signed the batches
    assert document["id"] == LIST_URL and len(bits) * 8 >= 131072 and not any(bits)

    organiser = str(keys["organiser"])
    revoked = run(
        *("certificates", "revoke", number, "--reason", "证书信息有误"),
        *("--key", organiser, "--as-of", "2024-06-02T09:00"),
    )
    assert revoked.exit_code == 0, revoked.output
    checked = run("certificates", "verify", str(path))
    assert checked.exit_code == 1
    assert "REVOKED 2024-06-02T09:00:00+08:00: 证书信息有误" in checked.stdout
    page = client.get(f"/verify/{number}")
    assert "查验结果：已撤销" in page.text and "2024-06-02" in page.text
    assert "证书信息有误" in page.text
    _, bits = read_list(client)
    assert bit(bits, index) == 1 and sum(bin(b).count("1") for b in bits) == 1

    again = run("certificates", "revoke", number, "--reason", "x", "--as-of", "2024-06-02T10:00")
    assert again.exit_code == 1 and "already revoked" in again.stderr
    lifted = run(
        "certificates", "unrevoke", number, "--key", organiser, "--as-of", "2024-06-02T11:00"
    )
    assert lifted.exit_code == 0, lifted.output
    assert run("certificates", "verify", str(path)).exit_code == 0
    assert "查验结果：有效" in client.get(f"/verify/{number}").text
    assert bit(read_list(client)[1], index) == 0


def test_a_revocation_without_the_key_shows_at_once_and_the_list_follows_when_signed(
    keys: dict[str, Path], scored: dict[str, str], client: TestClient
) -> None:
    number = f"WD{scored['甲1']}"
    result = run("certificates", "revoke", number, "--reason", "冒名顶替", "--as-of", AFTER)
    assert result.exit_code == 0 and "status-list 2024-1" in result.stdout
    assert "查验结果：已撤销" in client.get(f"/verify/{number}").text
    assert not any(read_list(client)[1])  # the organiser has not signed the new list yet
    signed = run("certificates", "status-list", "2024-1", "--key", str(keys["organiser"]))
    assert signed.exit_code == 0
    assert sum(bin(b).count("1") for b in read_list(client)[1]) == 1


def test_only_the_organisers_key_signs_the_list(keys: dict[str, Path]) -> None:
    result = run("certificates", "status-list", "2024-1", "--key", str(keys["P3"]))
    assert result.exit_code == 1 and "only the organiser signs a status list" in result.stderr


def test_a_review_after_issuance_revokes_the_old_certificate_once_the_corrected_one_is_issued(
    keys: dict[str, Path], scored: dict[str, str], register_loaded: Path, client: TestClient
) -> None:
    number = f"WD{scored['甲1']}"
    old = exported(register_loaded, number, "old")
    review_score(register_loaded, scored["甲1"], 93)

    assert issue_now() == (0, 0)  # the batch changed: nothing issued until both sign again
    assert run("certificates", "verify", str(old)).exit_code == 0  # still the valid one
    sign_again(keys)
    assert issue_now() == (1, 0)

    superseded = run("certificates", "verify", str(old))
    assert superseded.exit_code == 1 and "REVOKED" in superseded.stdout
    assert "superseded by a corrected certificate" in superseded.stdout
    new = exported(register_loaded, number, "new")
    corrected = json.loads(new.read_text(encoding="utf-8"))
    assert corrected["credentialSubject"]["score"] == 93
    assert run("certificates", "verify", str(new)).exit_code == 0
    old_index = json.loads(old.read_text(encoding="utf-8"))["credentialStatus"]["statusListIndex"]
    assert corrected["credentialStatus"]["statusListIndex"] != old_index
    page = client.get(f"/verify/{number}").text  # the number shows the new one, and says so
    assert "查验结果：有效" in page
    assert f"此前签发的版本已于 {AFTER[:10]} 因复核更正成绩而撤销" in page
    assert (
        run("certificates", "status-list", "2024-1", "--key", str(keys["organiser"])).exit_code == 0
    )
    assert bit(read_list(client)[1], int(old_index)) == 1


def test_a_review_leaving_the_holder_below_the_pass_mark_revokes_the_issued_certificate(
    keys: dict[str, Path], scored: dict[str, str], register_loaded: Path, client: TestClient
) -> None:
    number = f"WD{scored['甲1']}"
    old = exported(register_loaded, number, "old")
    review_score(register_loaded, scored["甲1"], 40)

    assert issue_now() == (0, 0)  # 甲1 holds no batch entry any more: nothing to issue
    revoked = run("certificates", "verify", str(old))
    assert revoked.exit_code == 1 and "no longer passed after a review" in revoked.stdout
    page = client.get(f"/verify/{number}").text
    assert "查验结果：已撤销" in page and "复核后成绩未达合格标准" in page
    assert issue_now() == (0, 0)  # a second run revokes nothing twice
    unrevoked = run("certificates", "unrevoke", number)
    assert unrevoked.exit_code == 1 and "revoked by a review" in unrevoked.stderr


@pytest.mark.prefect
def test_the_certificates_checkpoint_re_signs_the_list_after_superseding_with_the_key_file(
    keys: dict[str, Path],
    scored: dict[str, str],
    register_loaded: Path,
    client: TestClient,
    prefect_server: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import datetime

    from flows.certificates_stage import certificates_stage
    from models.domain import SHANGHAI, Checkpoint

    number = f"WD{scored['甲1']}"
    old = exported(register_loaded, number, "old")
    old_index = json.loads(old.read_text(encoding="utf-8"))["credentialStatus"]["statusListIndex"]
    review_score(register_loaded, scored["甲1"], 93)
    sign_again(keys)
    monkeypatch.setenv("EXAMFLOW_ORGANISER_KEY_FILE", str(keys["organiser"]))
    moment = datetime(2024, 6, 3, 9, tzinfo=SHANGHAI)  # P1 and N1 have not signed: mail waits
    certificates_stage("2024-1", Checkpoint.remind, moment, return_state=True)
    assert run("certificates", "verify", str(old)).exit_code == 1  # superseded by the run
    assert bit(read_list(client)[1], int(old_index)) == 1  # and listed: no status-list by hand


def test_a_third_party_verifies_with_the_published_keys_and_list_without_examflows_database(
    keys: dict[str, Path],
    scored: dict[str, str],
    register_loaded: Path,
    client: TestClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = f"WD{scored['甲1']}"
    credential = exported(register_loaded, number, "third")
    published = client.get("/keys.json")
    assert published.status_code == 200 and published.headers["etag"]
    keys_file = tmp_path / "keys.json"
    keys_file.write_bytes(published.content)
    # the listed organiser key is the one the list's proof verifies with (PyNaCl in read_list)
    listed = {k["party"]: k["publicKeyBase64"] for k in published.json()["keys"]}
    assert base64.b64decode(listed["organiser"]) == organiser_public_key()
    read_list(client)  # signed by that key (checked with PyNaCl)
    before = tmp_path / "list-before.json"
    before.write_bytes(client.get("/status/2024-1/revocation").content)
    revoked = run(
        *("certificates", "revoke", number, "--reason", "证书信息有误"),
        *("--key", str(keys["organiser"]), "--as-of", "2024-06-02T09:00"),
    )
    assert revoked.exit_code == 0, revoked.output
    after = tmp_path / "list-after.json"
    after.write_bytes(client.get("/status/2024-1/revocation").content)

    # another install: an empty database, no key registered
    monkeypatch.setenv("EXAMFLOW_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("EXAMFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert run("db", "upgrade").exit_code == 0
    unknown = run("certificates", "verify", str(credential))
    assert unknown.exit_code == 1 and "FAIL" in unknown.stdout
    offline = ("certificates", "verify", str(credential), "--keys", str(keys_file))
    valid = run(*offline, "--status-list", str(before))
    assert valid.exit_code == 0 and "signed by organiser and P3" in valid.stdout
    assert "not revoked" in valid.stdout
    now_revoked = run(*offline, "--status-list", str(after))
    assert now_revoked.exit_code == 1 and "REVOKED" in now_revoked.stdout

    lent = published.json()
    lent["keys"][0]["publicKeyBase64"] = lent["keys"][1]["publicKeyBase64"]
    forged = tmp_path / "forged-keys.json"
    forged.write_text(json.dumps(lent), encoding="utf-8")
    refused = run("certificates", "verify", str(credential), "--keys", str(forged))
    assert refused.exit_code == 1 and "its public key's id is" in refused.stderr
