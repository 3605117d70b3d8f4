"""The verification page's request path: a worker verifies a credential once (reading the key
registry only then) and renders an anonymous view once per state, while the revocation is read
on every view."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from examflow.settings import Settings
from models.credentials.keys import RegisteredKey
from portal.app import create_app
from portal.auth import CSRF_COOKIE
from portal.context import Portal
from portal.routes import verify
from tests.cli import run
from tests.test_certificates import AFTER
from tests.test_portal_security import csrf_of
from tests.test_verify_page import sign_and_issue


@pytest.fixture
def number(register_loaded: Path, scored: dict[str, str]) -> str:
    """甲1's issued certificate."""
    sign_and_issue(register_loaded)
    return f"WD{scored['甲1']}"


def test_a_credential_is_verified_once_and_the_keys_are_read_only_then(
    number: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    read_keys = verify.verification_keys

    def counted(session: Session) -> dict[str, RegisteredKey]:
        reads.append(1)
        return read_keys(session)

    monkeypatch.setattr(verify, "verification_keys", counted)
    with TestClient(create_app(Settings(portal_as_of=AFTER))) as client:
        for path in (f"/verify/{number}", f"/verify/{number}.json", f"/verify/{number}"):
            assert client.get(path).status_code == 200
        assert client.get("/verify/WD0000000000").status_code == 404
    assert len(reads) == 1


def test_a_revocation_after_a_view_shows_on_the_next_view_under_a_new_etag(number: str) -> None:
    with TestClient(create_app(Settings(portal_as_of=AFTER))) as client:
        page = client.get(f"/verify/{number}")
        credential = client.get(f"/verify/{number}.json")
        assert "查验结果：有效" in page.text
        revoked = run(
            *("certificates", "revoke", number, "--reason", "证书信息有误"),
            *("--as-of", "2024-06-02T09:00"),
        )
        assert revoked.exit_code == 0, revoked.output
        again = client.get(f"/verify/{number}", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 200 and again.headers["etag"] != page.headers["etag"]
        assert "查验结果：已撤销" in again.text and "2024-06-02" in again.text
        assert "证书信息有误" in again.text
        same = client.get(
            f"/verify/{number}.json", headers={"If-None-Match": credential.headers["etag"]}
        )
        assert same.status_code == 304  # the credential itself has not changed


def test_the_page_is_rendered_once_per_state_and_each_visitor_gets_their_own_token(
    number: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    render = Portal.render

    def counted(self: Portal, template: str, **context: Any) -> str:
        renders.append(template)
        return render(self, template, **context)

    monkeypatch.setattr(Portal, "render", counted)
    app = create_app(Settings(portal_as_of=AFTER))
    with TestClient(app) as first, TestClient(app) as second:
        pages = [first.get(f"/verify/{number}"), second.get(f"/verify/{number}")]
        tokens = [csrf_of(page.text) for page in pages]
        assert tokens[0] != tokens[1]
        assert tokens == [first.cookies[CSRF_COOKIE], second.cookies[CSRF_COOKIE]]
        assert renders == ["verify.html"]
        checked = second.post(
            f"/verify/{number}/holder", data={"id_number": "110101199001011234", "csrf": tokens[1]}
        )
        assert checked.status_code == 200 and "不一致" in checked.text
