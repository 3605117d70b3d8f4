"""The revocation list a credential names: published at EXAMFLOW_PUBLIC_URL (fixed for the
sitting by its first signature)."""

import json
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from examflow import migrate
from examflow.settings import Settings, get_settings
from portal.app import create_app
from tests.cli import run
from tests.test_certificates import AFTER, issue_now, new_key

FIRST = "https://zs.example.cn"
LATER = "https://certs.example.org/portal"


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
