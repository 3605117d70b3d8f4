"""What ops see without SQL: seats, attendance, scores, review requests, keys, certificates."""

import base64
import hashlib
import json
from pathlib import Path

import pytest

from examflow.synthetic import write_csv
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file

IDS = [new_id() for _ in range(3)]


@pytest.fixture
def arranged(register_loaded: Path) -> Path:
    """2024-3 at P3: 甲 and 乙 初级, 丙 高级, in rooms 301 (2 seats) and 302 (1 seat)."""
    rooms = write_csv(
        register_loaded / "rooms.csv",
        ["考点代码", "考场", "座位数"],
        [["P3", "301", "2"], ["P3", "302", "1"]],
    )
    assert run("rooms", "import", str(rooms)).exit_code == 0
    rows = [
        ["P3", "甲", IDS[0], "初级", ""],
        ["P3", "乙", IDS[1], "初级", ""],
        ["P3", "丙", IDS[2], "高级", ""],
    ]
    path = reg_file(register_loaded, rows)
    assert run("register", "2024-3", str(path), "--as-of", OPEN).exit_code == 0
    result = run("arrange", "2024-3", "--as-of", "2024-06-08T23:00")
    assert result.exit_code == 0, result.output
    return register_loaded


SEATS = [
    {
        "site": "P3",
        "room": "301",
        "seat": 1,
        "ticket_number": "202431P30001",
        "name": "甲",
        "level": "初级",
    },
    {
        "site": "P3",
        "room": "301",
        "seat": 2,
        "ticket_number": "202431P30002",
        "name": "乙",
        "level": "初级",
    },
    {
        "site": "P3",
        "room": "302",
        "seat": 1,
        "ticket_number": "202433P30001",
        "name": "丙",
        "level": "高级",
    },
]


def test_seats_lists_the_arrangement_without_id_numbers(arranged: Path) -> None:
    result = run("seats", "2024-3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == SEATS
    assert run("seats", "2024-3", "--site", "P1", "--json").stdout.strip() == "[]"
    text = run("seats", "2024-3").stdout
    assert "202433P30001" in text and "丙" in text
    assert not any(i in text for i in IDS)


def test_seats_of_an_unknown_sitting_is_an_error(register_loaded: Path) -> None:
    result = run("seats", "2099-9")
    assert result.exit_code == 1
    assert "2099-9" in result.stderr


def test_attendance_imports_the_old_way_and_with_import_then_lists(arranged: Path) -> None:
    first = write_csv(arranged / "att1.csv", ["准考证号", "出勤"], [["202431P30001", "出席"]])
    old_way = run("attendance", "2024-3", str(first), "--as-of", "2024-06-08T18:00")
    assert old_way.exit_code == 0, old_way.output
    assert "1 present, 0 absent" in old_way.stdout
    second = write_csv(
        arranged / "att2.csv",
        ["准考证号", "出勤"],
        [["202431P30002", "缺考"], ["202433P30001", "出席"]],
    )
    new_way = run("attendance", "import", "2024-3", str(second), "--as-of", "2024-06-08T18:00")
    assert new_way.exit_code == 0, new_way.output
    listed = run("attendance", "list", "2024-3", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {
            "ticket_number": "202431P30001",
            "name": "甲",
            "level": "初级",
            "site": "P3",
            "present": True,
        },
        {
            "ticket_number": "202431P30002",
            "name": "乙",
            "level": "初级",
            "site": "P3",
            "present": False,
        },
        {
            "ticket_number": "202433P30001",
            "name": "丙",
            "level": "高级",
            "site": "P3",
            "present": True,
        },
    ]
    assert run("attendance", "list", "2024-3", "--site", "P1", "--json").stdout.strip() == "[]"


def test_scores_list_shows_each_recorded_score(arranged: Path) -> None:
    sheet = write_csv(
        arranged / "att.csv",
        ["准考证号", "出勤"],
        [["202431P30001", "出席"], ["202431P30002", "出席"], ["202433P30001", "出席"]],
    )
    assert run("attendance", "2024-3", str(sheet), "--as-of", "2024-06-08T18:00").exit_code == 0
    scores = write_csv(
        arranged / "scores.csv",
        ["准考证号", "成绩"],
        [["202431P30001", "88"], ["202431P30002", "59"], ["202433P30001", "60"]],
    )
    imported = run("scores", "import", "2024-3", str(scores), "--as-of", "2024-06-20")
    assert imported.exit_code == 0, imported.output
    listed = run("scores", "list", "2024-3", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {
            "ticket_number": "202431P30001",
            "name": "甲",
            "level": "初级",
            "school": "P3",
            "site": "P3",
            "score": 88,
            "passed": True,
        },
        {
            "ticket_number": "202431P30002",
            "name": "乙",
            "level": "初级",
            "school": "P3",
            "site": "P3",
            "score": 59,
            "passed": False,
        },
        {
            "ticket_number": "202433P30001",
            "name": "丙",
            "level": "高级",
            "school": "P3",
            "site": "P3",
            "score": 60,
            "passed": True,
        },
    ]


def test_review_list_of_a_sitting_without_requests_is_empty(arranged: Path) -> None:
    listed = run("review", "list", "2024-3", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []
    assert "0 request(s)" in run("review", "list", "2024-3").stdout


def test_keys_new_prints_the_fingerprint_and_keys_list_shows_the_public_key(
    register_loaded: Path,
) -> None:
    made = run(
        "keys",
        "new",
        "--party",
        "P3",
        "-o",
        str(register_loaded / "p3.pem"),
        "--as-of",
        "2024-06-01T09:00",
    )
    assert made.exit_code == 0, made.output
    (listed,) = json.loads(run("keys", "list", "--json").stdout)
    assert listed["party"] == "P3"
    assert listed["created_at"] == "2024-06-01T09:00:00+08:00"
    raw = base64.b64decode(listed["public_key"])
    assert len(raw) == 32
    assert listed["key_id"] == "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]
    fingerprint = hashlib.sha256(raw).hexdigest()
    assert f"fingerprint (SHA-256 of the raw public key): {fingerprint}" in made.stdout


def test_certificates_list_json_of_a_sitting_without_certificates_is_empty(
    arranged: Path,
) -> None:
    listed = run("certificates", "list", "2024-3", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []
