"""Two-party-signed e-certificates: keys, signing rights, issuance once, verification, voiding."""

import json
import os
import stat
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import get_settings
from examflow.synthetic import write_csv
from models.certificates import IssuedCertificate, certificates_condition, issue
from models.domain import SHANGHAI
from models.sittings import get_sitting
from tests.cli import run

AFTER = "2024-06-01T10:00"  # publicity 05-29..05-31 has passed; certificates from 06-01
AT = datetime(2024, 6, 1, 12, tzinfo=SHANGHAI)


def new_key(folder: Path, party: str) -> Path:
    path = folder / f"{party}.pem"
    result = run("keys", "new", "--party", party, "-o", str(path))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return path


def issue_now() -> tuple[int, int]:
    with session_scope() as session:
        report = issue(session, get_sitting(session, "2024-1"), AT, get_settings().public_url)
    return report.issued, report.unchanged


def missing_now() -> list[str]:
    with session_scope() as session:
        condition = certificates_condition(session, get_sitting(session, "2024-1"), AT)
    return [str(m) for m in condition.missing]


def test_both_signatures_issue_once_and_the_credential_verifies(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    organiser, p3, p1 = (new_key(register_loaded, p) for p in ("organiser", "P3", "P1"))
    early = run(
        "sign", "2024-1", "--party", "P3", "--key", str(p3), "--as-of", "2024-05-31T23:59:59"
    )
    assert early.exit_code == 1 and "after publicity" in early.stderr
    stolen = run("sign", "2024-1", "--party", "P3", "--key", str(p1), "--as-of", AFTER)
    assert stolen.exit_code == 1 and "registered to school P1" in stolen.stderr

    assert (
        run(
            "sign", "2024-1", "--party", "organiser", "--key", str(organiser), "--as-of", AFTER
        ).exit_code
        == 0
    )
    assert issue_now() == (0, 0)  # one signature is not enough
    assert "P3: 1 名合格考生尚未生成电子证书（待签发：学校）" in missing_now()

    assert run("sign", "2024-1", "--party", "P3", "--key", str(p3), "--as-of", AFTER).exit_code == 0
    assert issue_now() == (1, 0)  # 甲1 passed at P3; 甲0 (59) did not
    assert issue_now() == (0, 1)  # re-runs issue nothing twice
    assert not any(m.startswith("P3:") for m in missing_now())

    out = register_loaded / "certs"
    assert run("certificates", "export", "2024-1", "--school", "P3", "-o", str(out)).exit_code == 0
    number = "WD" + scored["甲1"]
    ok = run("certificates", "verify", str(out / f"{number}.json"))
    assert ok.exit_code == 0 and "signed by" in ok.stdout
    assert (out / f"{number}.pdf").read_bytes().startswith(b"%PDF")

    doc = json.loads((out / f"{number}.json").read_text(encoding="utf-8"))
    doc["credentialSubject"]["score"] = 99
    tampered = register_loaded / "tampered.json"
    tampered.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    bad = run("certificates", "verify", str(tampered))
    assert bad.exit_code == 1 and "a field was changed" in bad.stdout

    doc = json.loads((out / f"{number}.json").read_text(encoding="utf-8"))
    doc["proof"] = doc["proof"][:1]
    half = register_loaded / "half.json"
    half.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    missing = run("certificates", "verify", str(half))
    assert missing.exit_code == 1 and "missing the school's (P3) signature" in missing.stdout


def test_a_changed_score_after_signing_voids_both_signatures(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    organiser, p3 = new_key(register_loaded, "organiser"), new_key(register_loaded, "P3")
    review = write_csv(register_loaded / "review.csv", ["准考证号"], [[scored["甲0"]]])
    assert (
        run("review", "file", "2024-1", "P3", str(review), "--as-of", "2024-05-30").exit_code == 0
    )
    for party, key in (("organiser", organiser), ("P3", p3)):
        assert (
            run("sign", "2024-1", "--party", party, "--key", str(key), "--as-of", AFTER).exit_code
            == 0
        )
    assert issue_now() == (1, 0)
    # the review (filed in the window) is resolved after signing: 甲0 now passes
    assert run("review", "resolve", "1", "--score", "70", "--as-of", AFTER).exit_code == 0
    assert issue_now() == (0, 0)  # the old signatures are void: nothing issued
    assert "P3: 2 名合格考生尚未生成电子证书（待签发：培训评价组织、学校）" in missing_now()
    for party, key in (("organiser", organiser), ("P3", p3)):
        assert (
            run("sign", "2024-1", "--party", party, "--key", str(key), "--as-of", AFTER).exit_code
            == 0
        )
    assert issue_now() == (2, 0)  # 甲0 new, 甲1 re-issued under the new batch
    with session_scope() as session:
        assert len(list(session.exec(select(IssuedCertificate)))) == 2


def test_paper_requests_are_recorded_once(register_loaded: Path, scored: dict[str, str]) -> None:
    assert run("certificates", "paper", "2024-1", "P3").exit_code == 0
    assert "(already)" in run("certificates", "paper", "2024-1", "P3").stdout
    assert "paper requested" in run("certificates", "list", "2024-1").stdout


def test_a_signature_replayed_on_another_sitting_or_by_an_unregistered_key_is_refused(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    from models.certificates import build_batches, trusted_keys
    from models.credentials.keys import generate_keypair
    from models.credentials.signing import check_batch_signatures

    organiser = new_key(register_loaded, "organiser")
    assert (
        run(
            "sign", "2024-1", "--party", "organiser", "--key", str(organiser), "--as-of", AFTER
        ).exit_code
        == 0
    )
    with session_scope() as session:
        batch = build_batches(session, get_sitting(session, "2024-1"), None)["P3"]
        from models.certificates import _signatures

        (signature,) = _signatures(session, "2024-1", "P3")
        keys = trusted_keys(session)
    replayed = batch.model_copy(update={"sitting_code": "2024-2"})
    check = check_batch_signatures(replayed, [signature], keys)
    assert "organiser" not in check.valid and check.problems
    assert "organiser" in check_batch_signatures(batch, [signature], keys).valid

    pem, _ = generate_keypair()
    stray = register_loaded / "stray.pem"
    stray.write_bytes(pem)
    stray.chmod(0o600)
    refused = run("sign", "2024-1", "--party", "organiser", "--key", str(stray), "--as-of", AFTER)
    assert refused.exit_code == 1 and "not registered" in refused.stderr
