"""The register of schools and sites, site applications and approvals, hosting agreements."""

import json
from pathlib import Path

import openpyxl

from examflow.synthetic import SCHOOL_HEADER, write_csv
from tests.cli import run
from tests.conftest import CALENDAR
from tests.helpers import SCHOOLS


def load(tmp_path: Path, rows: list[list[str]], name: str = "schools.csv", **kw: str) -> str:
    return str(write_csv(tmp_path / name, SCHOOL_HEADER, rows, **kw))


def test_import_then_reimport_updates_and_reports_counts(home: Path, tmp_path: Path) -> None:
    first = run("schools", "import", load(tmp_path, SCHOOLS))
    assert first.exit_code == 0 and "5 created, 0 updated, 0 unchanged" in first.stdout
    changed = [row[:] for row in SCHOOLS]
    changed[2][1] = "三号学院（更名）"
    again = run("schools", "import", load(tmp_path, changed, "b.csv", encoding="gbk"))
    assert again.exit_code == 0 and "0 created, 1 updated, 4 unchanged" in again.stdout


def test_bad_rows_are_reported_and_nothing_is_stored(home: Path, tmp_path: Path) -> None:
    rows = [row[:] for row in SCHOOLS]
    rows[0][4] = ""  # pilot without scale
    rows[1][7] = "not-an-email"
    rows[2][5] = "是"  # non-pilot cannot be a site
    rows[3][6] = "0"  # site without seats
    rows.append(rows[4][:])  # duplicate code
    result = run("schools", "import", load(tmp_path, rows))
    assert result.exit_code == 1
    err = result.stderr
    assert "row 2, 试点人数规模 (pilot_scale)" in err
    assert "row 3, 考务联系人邮箱 (affairs_email)" in err
    assert "row 4, 是否考点 (is_site): only a pilot school can be a site" in err
    assert "row 5, 考位数 (seats)" in err
    assert "row 7, 学校代码 (code): duplicate of row 6" in err


def test_xlsx_register_with_chinese_headers_and_notes(home: Path, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append([*SCHOOL_HEADER[:6], "考位数（个）", *SCHOOL_HEADER[7:]])
    ws.append(["P9", "九号学院", "广东省", "是", 300, "是", 60, "a@p9.edu.cn", "t@p9.edu.cn"])
    path = tmp_path / "schools.xlsx"
    wb.save(path)
    result = run("schools", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "1 created" in result.stdout


def test_pilot_school_applies_before_the_close_and_ops_approve(home: Path, tmp_path: Path) -> None:
    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    assert run("schools", "import", load(tmp_path, SCHOOLS)).exit_code == 0
    late = run("sites", "apply", "2024-1", "P2", "--as-of", "2024-04-30T00:00:00")
    assert late.exit_code == 1 and "closed with registration" in late.stderr
    site = run("sites", "apply", "2024-1", "P1", "--as-of", "2024-04-01")
    assert site.exit_code == 1 and "already a site and never needs to apply again" in site.stderr
    non_pilot = run("sites", "apply", "2024-1", "N1", "--as-of", "2024-04-01")
    assert non_pilot.exit_code == 1 and "not a pilot school" in non_pilot.stderr
    no_app = run("sites", "approve", "P2")
    assert no_app.exit_code == 1 and "no pending application" in no_app.stderr

    applied = run(
        "sites", "apply", "2024-1", "P2", "--seats", "40", "--as-of", "2024-04-29T23:59:59"
    )
    assert applied.exit_code == 0, applied.output
    twice = run("sites", "apply", "2024-1", "P2", "--as-of", "2024-04-02")
    assert twice.exit_code == 1 and "already applied" in twice.stderr
    approved = run("sites", "approve", "P2")
    assert approved.exit_code == 0 and "now a site with 40 seats" in approved.stdout
    again = run("sites", "apply", "2024-2", "P2", "--as-of", "2024-05-01")
    assert again.exit_code == 1 and "never needs to apply again" in again.stderr

    # a site stays one even if a later register import says 否
    rows = [row[:] for row in SCHOOLS]
    rows[1][5] = "否"
    reimport = run("schools", "import", load(tmp_path, rows, "b.csv"))
    assert reimport.exit_code == 0 and "stays one" in reimport.output
    status = json.loads(run("status", "2024-1", "--json", "--as-of", "2024-04-01").stdout)
    assert status["sitting"] == "2024-1"


def test_agreement_needs_a_site_host_and_a_known_guest(home: Path, tmp_path: Path) -> None:
    assert run("calendar", "load", str(CALENDAR)).exit_code == 0
    assert run("schools", "import", load(tmp_path, SCHOOLS)).exit_code == 0
    assert "not a site" in run("sites", "agree", "P2", "N1", "2024-1").stderr
    assert "unknown school 'XX'" in run("sites", "agree", "P1", "XX", "2024-1").stderr
    assert "unknown sitting" in run("sites", "agree", "P1", "N1", "2030-1").stderr
    assert run("sites", "agree", "P1", "social", "2024-1").exit_code == 0
    assert "already recorded" in run("sites", "agree", "P1", "social", "2024-1").stdout


def test_rejected_register_leaves_earlier_data_untouched(home: Path, tmp_path: Path) -> None:
    assert run("schools", "import", load(tmp_path, SCHOOLS)).exit_code == 0
    rows = [row[:] for row in SCHOOLS]
    rows[0][1] = "新名字"
    rows[1][3] = "也许"
    assert run("schools", "import", load(tmp_path, rows, "b.csv")).exit_code == 1
    again = run("schools", "import", load(tmp_path, SCHOOLS, "c.csv"))
    assert "0 created, 0 updated, 5 unchanged" in again.stdout
