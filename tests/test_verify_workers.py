"""The verification page's ID checks are limited across portal workers: two app instances on
one database (as two worker processes are) share the counts, per certificate and per client
address."""

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from examflow.db import session_scope
from examflow.settings import Settings
from models.certificates import HolderCheck
from portal.app import create_app
from portal.routes import verify
from tests.test_certificates import AFTER
from tests.test_portal_security import csrf_of
from tests.test_verify_page import holder_id, sign_and_issue

ADDRESS = "203.0.113.7"


@pytest.fixture
def number(register_loaded: Path, scored: dict[str, str]) -> str:
    """甲1's issued certificate."""
    sign_and_issue(register_loaded)
    return f"WD{scored['甲1']}"


@pytest.fixture
def workers() -> Iterator[list[TestClient]]:
    """Three app instances on the test's database: two seen from ADDRESS, one from another."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                TestClient(create_app(Settings(portal_as_of=AFTER)), client=(address, 40000))
            )
            for address in (ADDRESS, ADDRESS, "198.51.100.9")
        ]


def check(client: TestClient, number: str, id_number: str) -> int:
    csrf = csrf_of(client.get(f"/verify/{number}").text)
    answer = client.post(f"/verify/{number}/holder", data={"id_number": id_number, "csrf": csrf})
    return answer.status_code


def test_ten_checks_an_hour_per_certificate_are_counted_across_workers(
    number: str, workers: list[TestClient]
) -> None:
    first, second, elsewhere = workers
    own = holder_id("甲1")
    codes = [check(first, number, own) for _ in range(6)]
    codes += [check(second, number, own) for _ in range(4)]
    assert codes == [200] * 10
    refused = [check(w, number, own) for w in (first, second, elsewhere)]
    assert refused == [429, 429, 429]  # each worker sees the other's checks
    last = first.post(
        f"/verify/{number}/holder",
        data={"id_number": own, "csrf": csrf_of(first.get(f"/verify/{number}").text)},
    )
    assert "该证书本小时的核对次数已用完" in last.text
    with session_scope() as session:
        assert len(session.exec(select(HolderCheck)).all()) == 10  # refused checks not kept


def test_checks_from_one_address_are_limited_across_workers_and_certificates(
    number: str, workers: list[TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "HOLDER_CHECKS_PER_CLIENT_PER_HOUR", 4)
    first, second, elsewhere = workers
    other = holder_id("甲0")  # any ID: the limit counts checks, not matches
    assert [check(first, number, other) for _ in range(2)] == [200, 200]
    assert [check(second, number, other) for _ in range(2)] == [200, 200]
    csrf = csrf_of(first.get(f"/verify/{number}").text)
    refused = first.post(f"/verify/{number}/holder", data={"id_number": other, "csrf": csrf})
    assert refused.status_code == 429
    assert "您所在网络地址本小时的核对次数已用完" in refused.text
    assert check(second, number, other) == 429
    assert check(elsewhere, number, other) == 200  # another address; the certificate has 5
    with session_scope() as session:
        hashes = [c.client_hash for c in session.exec(select(HolderCheck))]
    assert len(hashes) == 5 and ADDRESS not in hashes and len(set(hashes)) == 2
