"""The revocation list a credential names: published at EXAMFLOW_PUBLIC_URL (fixed for the
sitting by its first signature), and its bits handed out at random, never twice."""

import json
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import col, select

from examflow import migrate
from examflow.db import session_scope
from examflow.settings import Settings, get_settings
from models.certificates import CertificateNumber, StatusIndexAllocator, build_batches
from models.sittings import get_sitting
from portal.app import create_app
from tests.cli import run
from tests.test_certificates import AFTER, issue_now, new_key

FIRST = "https://zs.example.cn"
LATER = "https://certs.example.org/portal"
W3C_MINIMUM = 131_072


def sign(party: str, key: Path) -> str:
    result = run("sign", "2024-1", "--party", party, "--key", str(key), "--as-of", AFTER)
    assert result.exit_code == 0, result.output
    return result.stdout


def credential_of(folder: Path, number: str) -> dict[str, object]:
    out = folder / "out"
    assert run("certificates", "export", "2024-1", "-o", str(out), "--no-pdf").exit_code == 0
    document = json.loads((out / f"{number}.json").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    assert run("certificates", "verify", str(out / f"{number}.json")).exit_code == 0
    return document


def test_a_credential_names_the_list_at_the_public_url_that_the_first_signature_fixed(
    register_loaded: Path, scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    organiser, p3 = new_key(register_loaded, "organiser"), new_key(register_loaded, "P3")
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", FIRST + "/")  # a trailing slash is not doubled
    said = sign("organiser", organiser)
    assert f"published at {FIRST}/status/2024-1/revocation" in said
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", LATER)  # moved: signatures made stay valid
    sign("P3", p3)
    assert issue_now() == (1, 0)
    credential = credential_of(register_loaded, f"WD{scored['甲1']}")
    status = credential["credentialStatus"]
    assert isinstance(status, dict)
    assert status["statusListCredential"] == "https://zs.example.cn/status/2024-1/revocation"
    assert (
        status["id"]
        == f"https://zs.example.cn/status/2024-1/revocation#{status['statusListIndex']}"
    )
    with TestClient(create_app(Settings(portal_as_of=AFTER, public_url=FIRST))) as portal:
        served = portal.get("/status/2024-1/revocation")
    assert served.status_code == 200
    assert served.json()["id"] == "https://zs.example.cn/status/2024-1/revocation"


def test_a_sitting_signed_before_the_upgrade_keeps_the_address_its_signatures_cover(
    register_loaded: Path, scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0010 fixes the issuer's old address for sittings already signed: the upgrade
    voids no signature and their credentials issue and verify as before."""
    organiser, p3 = new_key(register_loaded, "organiser"), new_key(register_loaded, "P3")
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", "https://www.hotmatrix.cn")  # as 0009 signed
    sign("organiser", organiser)
    sign("P3", p3)
    url = get_settings().resolved_database_url()
    command.downgrade(migrate.alembic_config(url), "0009")  # as the database was then
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sitting_code, url FROM statuslistaddress")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("2024-1", "https://www.hotmatrix.cn/status/2024-1/revocation")
    ]
    monkeypatch.setenv("EXAMFLOW_PUBLIC_URL", FIRST)
    assert issue_now() == (1, 0)  # both signatures still valid
    credential = credential_of(register_loaded, f"WD{scored['甲1']}")
    status = credential["credentialStatus"]
    assert isinstance(status, dict)
    assert status["statusListCredential"] == "https://www.hotmatrix.cn/status/2024-1/revocation"


def stored_indexes() -> list[int]:
    with session_scope() as session:
        return [
            i
            for i in session.exec(
                select(CertificateNumber.status_index).where(
                    col(CertificateNumber.status_index).is_not(None)
                )
            )
            if i is not None
        ]


def test_status_indexes_are_drawn_at_random_never_twice_and_never_one_already_used(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    with session_scope() as session:
        batches = build_batches(session, get_sitting(session, "2024-1"), None)
    given = stored_indexes()
    assert len(given) == sum(len(b.entries) for b in batches.values()) == 3
    assert len(set(given)) == 3 and all(0 <= i < W3C_MINIMUM for i in given)
    with session_scope() as session:
        allocate = StatusIndexAllocator(session)
        drawn = [allocate() for _ in range(200)]
    assert len(set(drawn)) == 200 and not set(drawn) & set(given)
    assert all(0 <= i < W3C_MINIMUM for i in drawn)
    # handed out in sequence, 200 draws would be n, n+1, …; at random, in order 1 time in 200!
    assert drawn != sorted(drawn)
    assert drawn != list(range(drawn[0], drawn[0] + 200))
    with session_scope() as session:  # built again: each candidate keeps the index it has
        build_batches(session, get_sitting(session, "2024-1"), None)
    assert stored_indexes() == given


def test_a_crowded_range_grows_instead_of_handing_out_an_index_twice(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    """With a range of 64 the 1,000 draws must outgrow it: none repeats, and the range they
    come from stays at most four times the indexes taken."""
    with session_scope() as session:
        allocate = StatusIndexAllocator(session, minimum=64)
        drawn = [allocate() for _ in range(1000)]
    assert len(set(drawn)) == 1000
    assert max(drawn) >= 1000 and max(drawn) < 4 * 1000


def test_the_published_list_covers_the_highest_index_of_its_sitting(
    register_loaded: Path, scored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index beyond the W3C minimum (the range grew) is inside the published list."""
    import base64
    import gzip

    with session_scope() as session:
        build_batches(session, get_sitting(session, "2024-1"), None)
        row = session.exec(
            select(CertificateNumber).where(col(CertificateNumber.status_index).is_not(None))
        ).first()
        assert row is not None
        row.status_index = 300_000  # as if drawn from a range grown past 262,144
        session.add(row)
    organiser = new_key(register_loaded, "organiser")
    sign("organiser", organiser)
    with TestClient(create_app(Settings(portal_as_of=AFTER))) as portal:
        document = portal.get("/status/2024-1/revocation").json()
    encoded = document["credentialSubject"]["encodedList"][1:]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert len(bits) * 8 == 524_288  # 131,072 doubled until it covers 300,000
