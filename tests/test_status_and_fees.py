"""`examflow status` (stage states, stable JSON) and `examflow fees` (advance fees, 多退少补)."""

import json
from pathlib import Path

from examflow.synthetic import SCHOOL_HEADER, write_csv
from tests.cli import run
from tests.helpers import OPEN, SCHOOLS, new_id, reg_file


def stages(data: dict[str, object]) -> dict[str, dict[str, object]]:
    items = data["stages"]
    assert isinstance(items, list)
    return {s["stage"]: s for s in items}


def status(as_of: str, sitting: str = "2024-1") -> dict[str, object]:
    result = run("status", sitting, "--as-of", as_of, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_status_json_shape_and_registration_window(register_loaded: Path) -> None:
    data = status(OPEN)
    assert set(data) >= {"sitting", "as_of", "stages", "registrations"}
    assert data["as_of"] == "2024-04-20T10:00:00+08:00"
    by_stage = stages(data)
    assert list(by_stage) == [
        "registration",
        "training",
        "platform_install",
        "materials",
        "exam",
        "publicity",
        "certificates",
    ]
    reg = by_stage["registration"]
    assert reg == {
        "stage": "registration",
        "opens": "2024-02-21T00:00:00+08:00",
        "closes": "2024-04-29T23:59:59+08:00",
        "state": "open",
        "missing": [],
        "items": [],
    }
    assert by_stage["training"]["state"] == "upcoming"
    assert (
        by_stage["platform_install"]["state"] == "open"
    )  # opens 04-18, before registration closes
    assert by_stage["exam"]["opens"] == "2024-05-18T00:00:00+08:00"


def test_registration_completes_once_frozen(register_loaded: Path) -> None:
    rows = [["P3", "王伟", new_id(), "初级", ""]]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    assert stages(status("2024-04-29T23:59:59"))["registration"]["state"] == "open"
    assert stages(status("2024-04-30T00:00:00"))["registration"]["state"] == "complete"


def test_registration_stalls_when_a_school_is_over_its_scale_after_the_close(
    register_loaded: Path,
) -> None:
    rows = [["P3", f"考生{i}", new_id(), "初级", ""] for i in range(3)]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    reduced = [row[:] for row in SCHOOLS]
    reduced[3][4] = "2"  # P3's pilot scale cut to 2 after it registered 3
    write_csv(register_loaded / "s2.csv", SCHOOL_HEADER, reduced)
    assert run("schools", "import", str(register_loaded / "s2.csv")).exit_code == 0
    reg = stages(status("2024-05-01T09:00:00"))["registration"]
    assert reg["state"] == "stalled"
    assert reg["missing"] == ["P3: 3 candidates in 2024, pilot scale 2"]


def test_status_table_for_people(register_loaded: Path) -> None:
    result = run("status", "2024-3", "--as-of", "2024-06-01")
    assert result.exit_code == 0
    assert "registration" in result.stdout and "complete" in result.stdout
    assert "registrations: 0" in result.stdout


def test_fees_use_advance_defaults_then_show_refund_or_top_up(register_loaded: Path) -> None:
    rows = [
        ["P1", "甲", new_id(), "初级", ""],
        ["P1", "乙", new_id(), "中级", ""],
        ["P3", "丙", new_id(), "初级", ""],
    ]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )

    def fees() -> dict[str, dict[str, object]]:
        result = run("fees", "2024-1", "--json")
        assert result.exit_code == 0, result.output
        return {s["payer"]: s for s in json.loads(result.stdout)["schools"]}

    before = fees()
    assert before["P1"] == {
        "payer": "P1",
        "province": "北京市",
        "candidates": 2,
        "billed": "740.00",
        "standard": "740.00",
        "difference": "0.00",
        "paid": "0.00",
        "issued_unpaid": False,
    }
    # 北京 publishes 初级 300 (refund 80) and 中级 400 (top-up 40) for 2024
    assert run("fees", "standard", "北京市", "初级", "300", "--year", "2024").exit_code == 0
    assert run("fees", "standard", "北京市", "中级", "400.00", "--year", "2024").exit_code == 0
    # a 2025 standard does not reconcile 2024 registrations
    assert run("fees", "standard", "河北省", "初级", "100", "--year", "2025").exit_code == 0
    after = fees()
    assert after["P1"]["billed"] == "740.00"
    assert after["P1"]["standard"] == "700.00" and after["P1"]["difference"] == "-40.00"
    assert after["P3"]["difference"] == "0.00"

    later = reg_file(register_loaded, [["P1", "丁", new_id(), "初级", ""]], "later.csv")
    assert run("register", "2024-1", str(later), "--as-of", OPEN).exit_code == 0
    assert fees()["P1"]["billed"] == "1040.00"  # the new one is billed at the standard, 300


def test_fee_standard_input_errors_are_clear(register_loaded: Path) -> None:
    assert "not 初级, 中级 or 高级" in run("fees", "standard", "北京市", "特级", "300").stderr
    assert "not an amount in yuan" in run("fees", "standard", "北京市", "初级", "3x").stderr
    assert "at most 2 decimals" in run("fees", "standard", "北京市", "初级", "3.001").stderr


def test_fee_standards_from_a_file(register_loaded: Path) -> None:
    path = write_csv(
        register_loaded / "std.csv",
        ["省份", "级别", "金额", "年度"],
        [["北京市", "初级", "300", "2024"], ["河北省", "中级", "350", "2024"]],
    )
    result = run("fees", "standard", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert "北京市 初级 2024: 300.00 yuan (created)" in result.stdout


def test_a_fact_counts_from_when_it_was_recorded(register_loaded: Path) -> None:
    rows = [["P3", "王伟", new_id(), "初级", ""]]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    for fact in ("platform_installed", "mock_passed"):
        assert run("mark", "2024-1", "P3", fact, "--as-of", "2024-05-10T12:00").exit_code == 0
    before = stages(status("2024-05-10T11:59"))["platform_install"]
    assert before["state"] == "open" and len(before["missing"]) == 2
    after = stages(status("2024-05-10T12:00"))["platform_install"]
    assert after["state"] == "complete" and after["missing"] == []
