"""Bulk registration through `examflow register`: every rule of the notice, all or nothing."""

from pathlib import Path

import openpyxl
import pytest

from examflow.synthetic import write_csv
from tests.cli import run
from tests.helpers import FIRST_SECOND_AFTER, LAST_SECOND, OPEN, new_id, reg_file


def status_json(sitting: str, as_of: str = OPEN) -> dict[str, object]:
    import json

    result = run("status", sitting, "--as-of", as_of, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def total(sitting: str = "2024-1") -> int:
    regs = status_json(sitting)["registrations"]
    assert isinstance(regs, dict)
    return int(regs["total"])


def test_clean_file_is_stored_and_counted_per_level_and_site(register_loaded: Path) -> None:
    rows = [["P1", "王伟", new_id(), "初级", ""], ["P3", "李娜", new_id(), "中级", ""]]
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    data = status_json("2024-1")
    assert data["registrations"] == {
        "total": 2,
        "by_level": {"初级": 1, "中级": 1},
        "by_site": {"P1": 1, "P3": 1},
    }


def test_registration_accepted_at_the_last_second_and_refused_one_second_after(
    register_loaded: Path,
) -> None:
    path = reg_file(register_loaded, [["P1", "王伟", new_id(), "初级", ""]])
    late = run("register", "2024-1", str(path), "--as-of", FIRST_SECOND_AFTER)
    assert late.exit_code == 1
    assert "no late registration" in late.stderr
    assert total() == 0
    in_time = run("register", "2024-1", str(path), "--as-of", LAST_SECOND)
    assert in_time.exit_code == 0, in_time.output
    assert total() == 1


def test_senior_level_only_in_2024_3(register_loaded: Path) -> None:
    path = reg_file(register_loaded, [["P3", "王伟", new_id(), "高级", ""]])
    refused = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert refused.exit_code == 1
    assert "row 2, 级别 (level): 高级 is not offered in 2024-1" in refused.stderr
    accepted = run("register", "2024-3", str(path), "--as-of", OPEN)
    assert accepted.exit_code == 0, accepted.output


def test_invalid_check_digit_and_impossible_birth_date_are_row_errors(
    register_loaded: Path,
) -> None:
    good = new_id()
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    first17 = "11010120230230123"  # 30 February
    from models.resident_id import check_digit

    impossible = first17 + check_digit(first17)
    rows = [
        ["P1", "王伟", wrong_check, "初级", ""],
        ["P1", "李娜", impossible, "初级", ""],
    ]
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 1
    assert "row 2, 身份证号 (id_number):" in result.stderr and "check digit" in result.stderr
    assert "row 3, 身份证号 (id_number):" in result.stderr
    assert total() == 0


def test_full_width_digits_and_stray_spaces_are_normalised(register_loaded: Path) -> None:
    id_number = new_id()
    messy = " " + " ".join([id_number[:6], id_number[6:14], id_number[14:]]) + " "
    messy = messy.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    result = run(
        "register",
        "2024-1",
        str(reg_file(register_loaded, [["P1", "王伟", messy, "初级", ""]])),
        "--as-of",
        OPEN,
    )
    assert result.exit_code == 0, result.output
    again = reg_file(register_loaded, [["P3", "李娜", id_number, "中级", ""]], "again.csv")
    dup = run("register", "2024-1", str(again), "--as-of", OPEN)
    assert dup.exit_code == 1 and "already registered for 2024-1" in dup.stderr


def test_one_bad_row_stores_nothing_and_every_error_is_listed(register_loaded: Path) -> None:
    rows = [["P3", f"考生{i}", new_id(), "初级", ""] for i in range(20)]
    rows[7][3] = "特级"
    rows[12][0] = "ZZZ"
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 1
    assert "row 9, 级别 (level)" in result.stderr
    assert "row 14, 学校代码 (school_code): unknown school 'ZZZ'" in result.stderr
    assert "2 problem(s); nothing was stored" in result.stderr
    assert total() == 0


def test_duplicates_inside_a_file_are_errors(register_loaded: Path) -> None:
    same = new_id()
    rows = [["P3", "王伟", same, "初级", ""], ["P3", "王伟", same, "中级", ""]]
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert (
        result.exit_code == 1
        and "row 3, 身份证号 (id_number): same ID number as row 2" in result.stderr
    )


def test_reimporting_an_identical_file_changes_nothing_and_says_so(register_loaded: Path) -> None:
    path = reg_file(register_loaded, [["P3", "王伟", new_id(), "初级", ""]])
    assert run("register", "2024-1", str(path), "--as-of", OPEN).exit_code == 0
    again = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert again.exit_code == 0
    assert "nothing changed" in again.stdout
    assert total() == 1


def test_same_person_may_register_in_another_sitting(register_loaded: Path) -> None:
    path = reg_file(register_loaded, [["P3", "王伟", new_id(), "初级", ""]])
    assert run("register", "2024-1", str(path), "--as-of", OPEN).exit_code == 0
    assert run("register", "2024-2", str(path), "--as-of", OPEN).exit_code == 0


def test_pilot_school_cannot_exceed_its_scale_within_a_calendar_year(register_loaded: Path) -> None:
    # P1's pilot scale is 5, and it hosts them at P3 (agreement) to avoid P1's 3 seats
    assert run("sites", "agree", "P3", "P1", "2024-1").exit_code == 0
    assert run("sites", "agree", "P3", "P1", "2024-2").exit_code == 0
    first = reg_file(register_loaded, [["P1", f"甲{i}", new_id(), "初级", "P3"] for i in range(4)])
    assert run("register", "2024-1", str(first), "--as-of", OPEN).exit_code == 0
    second = reg_file(
        register_loaded, [["P1", f"乙{i}", new_id(), "初级", "P3"] for i in range(2)], "b.csv"
    )
    over = run("register", "2024-2", str(second), "--as-of", OPEN)
    assert over.exit_code == 1
    assert "over its pilot scale of 5 (already registered: 4)" in over.stderr
    one_more = reg_file(register_loaded, [["P1", "丙", new_id(), "初级", "P3"]], "c.csv")
    assert run("register", "2024-2", str(one_more), "--as-of", OPEN).exit_code == 0


def test_non_site_and_social_candidates_must_name_an_agreeing_site(register_loaded: Path) -> None:
    rows = [
        ["P2", "王伟", new_id(), "初级", ""],
        ["N1", "李娜", new_id(), "初级", ""],
        ["", "张敏", new_id(), "初级", ""],
        ["N1", "刘强", new_id(), "初级", "P3"],
        ["", "陈静", new_id(), "初级", "P2"],
    ]
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 1
    err = result.stderr
    assert "row 2, 考点代码 (site_code): school P2 is a pilot school that is not a site" in err
    assert "row 3, 考点代码 (site_code): school N1 is a non-pilot school" in err
    assert "row 4, 考点代码 (site_code): a social candidate is a social candidate" in err
    assert "row 5, 考点代码 (site_code): site P3 has not agreed to host school N1" in err
    assert "row 6, 考点代码 (site_code): 'P2' is not an exam site" in err

    assert run("sites", "agree", "P3", "N1", "2024-1").exit_code == 0
    assert run("sites", "agree", "P3", "social", "2024-1").exit_code == 0
    ok = [["N1", "刘强", new_id(), "初级", "P3"], ["", "陈静", new_id(), "中级", "P3"]]
    result = run(
        "register", "2024-1", str(reg_file(register_loaded, ok, "ok.csv")), "--as-of", OPEN
    )
    assert result.exit_code == 0, result.output
    assert status_json("2024-1")["registrations"] == {
        "total": 2,
        "by_level": {"初级": 1, "中级": 1},
        "by_site": {"P3": 2},
    }


def test_agreement_is_per_sitting(register_loaded: Path) -> None:
    assert run("sites", "agree", "P3", "N1", "2024-2").exit_code == 0
    path = reg_file(register_loaded, [["N1", "刘强", new_id(), "初级", "P3"]])
    assert run("register", "2024-1", str(path), "--as-of", OPEN).exit_code == 1


def test_site_capacity_counts_own_and_borrowed_candidates(register_loaded: Path) -> None:
    # P1 has 3 seats per slot: 2 own + 2 borrowed 初级 is one too many; 中级 is another slot
    assert run("sites", "agree", "P1", "N1", "2024-1").exit_code == 0
    own = reg_file(register_loaded, [["P1", f"甲{i}", new_id(), "初级", ""] for i in range(2)])
    assert run("register", "2024-1", str(own), "--as-of", OPEN).exit_code == 0
    borrowed = [["N1", f"乙{i}", new_id(), "初级", "P1"] for i in range(2)]
    over = run(
        "register", "2024-1", str(reg_file(register_loaded, borrowed, "b.csv")), "--as-of", OPEN
    )
    assert over.exit_code == 1
    assert (
        "site P1 has 3 seats per slot but would seat 4 candidates in the 初级 slot" in over.stderr
    )
    other_slot = [["N1", "丙", new_id(), "中级", "P1"], ["N1", "丁", new_id(), "初级", "P1"]]
    fits = run(
        "register", "2024-1", str(reg_file(register_loaded, other_slot, "c.csv")), "--as-of", OPEN
    )
    assert fits.exit_code == 0, fits.output


def test_2024_3_junior_and_senior_share_the_afternoon_seats(register_loaded: Path) -> None:
    # P4 has 2 seats: one 初级 + one 高级 fill the overlapping afternoon; a 中级 fits the morning
    rows = [["P4", "甲", new_id(), "初级", ""], ["P4", "乙", new_id(), "高级", ""]]
    assert (
        run("register", "2024-3", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    third = reg_file(register_loaded, [["P4", "丙", new_id(), "高级", ""]], "b.csv")
    over = run("register", "2024-3", str(third), "--as-of", OPEN)
    assert over.exit_code == 1
    assert "would seat 3 candidates in the 初级+高级 slot (these slots overlap" in over.stderr
    morning = reg_file(register_loaded, [["P4", "丁", new_id(), "中级", ""]], "c.csv")
    assert run("register", "2024-3", str(morning), "--as-of", OPEN).exit_code == 0
    # in 2024-1 the same site holds 2 初级 and 2 中级: no overlap there
    rows_1 = [["P4", f"戊{i}", new_id(), lv, ""] for i, lv in enumerate(["初级", "初级", "中级"])]
    assert (
        run(
            "register", "2024-1", str(reg_file(register_loaded, rows_1, "d.csv")), "--as-of", OPEN
        ).exit_code
        == 0
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_in_utf8_bom_and_gbk_is_read(register_loaded: Path, encoding: str) -> None:
    path = reg_file(register_loaded, [["P3", "王伟", new_id(), "初级", ""]], encoding=encoding)
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert total() == 1


def test_xlsx_with_english_headers_is_read(register_loaded: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["School Code", "Name", "ID Number", "Level", "Site Code"])
    ws.append(["P3", "王伟", new_id(), "初级", None])
    ws.append(["P3", "李娜", new_id(), "中级", None])
    path = register_loaded / "reg.xlsx"
    wb.save(path)
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert total() == 2


def test_errors_out_writes_the_rows_with_their_problems(register_loaded: Path) -> None:
    rows = [["P3", "王伟", new_id(), "初级", ""], ["P3", "李娜", "123", "初级", ""]]
    out = register_loaded / "errors.csv"
    result = run(
        "register",
        "2024-1",
        str(reg_file(register_loaded, rows)),
        "--as-of",
        OPEN,
        "--errors-out",
        str(out),
    )
    assert result.exit_code == 1
    text = out.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("行号 row,学校代码")
    assert lines[2].startswith("3,P3,李娜,123") and "身份证号" in lines[2]
    assert lines[1].endswith(",")  # the good row has no problem


def test_missing_column_is_a_clear_error(register_loaded: Path) -> None:
    path = write_csv(
        register_loaded / "r.csv", ["学校代码", "姓名", "级别"], [["P3", "王伟", "初级"]]
    )
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 1 and "身份证号" in result.stderr


def test_unknown_sitting_is_a_clear_error(register_loaded: Path) -> None:
    path = reg_file(register_loaded, [["P3", "王伟", new_id(), "初级", ""]])
    result = run("register", "2099-9", str(path), "--as-of", OPEN)
    assert result.exit_code == 1 and "unknown sitting '2099-9'" in result.stderr


@pytest.mark.parametrize("read_by_key", [True, False], ids=["a school's file", "a national one"])
def test_a_file_is_judged_against_what_is_stored_whether_read_by_key_or_whole(
    register_loaded: Path, monkeypatch: pytest.MonkeyPatch, read_by_key: bool
) -> None:
    from models import registration

    # a school's file looks its rows' schools, sites and ID numbers up; a national one (over
    # NAMED_LOOKUP_ROWS) reads the sitting whole: both must see the same stored rows
    monkeypatch.setattr(registration, "NAMED_LOOKUP_ROWS", 5_000 if read_by_key else 0)
    taken, p4 = new_id(), [["P4", f"丁{i}", new_id(), "初级", ""] for i in range(2)]
    first = reg_file(register_loaded, [["P3", "甲", taken, "初级", ""], *p4], "first.csv")
    assert run("register", "2024-1", str(first), "--as-of", OPEN).exit_code == 0

    same = run("register", "2024-1", str(first), "--as-of", OPEN)
    twice = reg_file(register_loaded, [["P1", "乙", taken, "中级", ""]], "twice.csv")
    refused_twice = run("register", "2024-1", str(twice), "--as-of", OPEN)
    full = reg_file(register_loaded, [["P4", "戊", new_id(), "初级", ""]], "full.csv")
    refused_full = run("register", "2024-1", str(full), "--as-of", OPEN)

    assert same.exit_code == 0 and "every row is already registered" in same.stdout
    assert refused_twice.exit_code == 1
    assert "row 2, 身份证号 (id_number): already registered for 2024-1" in refused_twice.stderr
    assert refused_full.exit_code == 1
    assert "site P4 has 2 seats per slot but would seat 3 candidates" in refused_full.stderr
