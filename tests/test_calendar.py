"""The calendar as data: the notice's three sittings, and every rule a calendar must obey."""

from datetime import date, datetime, time
from pathlib import Path

import pytest

from models.domain import SHANGHAI, Level, StageCode
from models.sitting_calendar import CalendarError, parse_calendar
from tests.cli import run
from tests.conftest import CALENDAR

VALID_SITTING = """
certificate = "网店运营推广职业技能等级证书"
[[sittings]]
code = "{code}"
name = "x"
exam_day = {exam_day}
slots = [{{ level = "初级", starts = 14:00:00, ends = {ends} }}]
[sittings.windows]
registration = {{ opens = 2024-02-21, closes = {reg_close} }}
training = {{ opens = 2024-05-01, closes = {train_close} }}
platform_install = {{ opens = 2024-04-18, closes = 2024-05-12 }}
materials = {{ opens = 2024-05-06, closes = 2024-05-17 }}
publicity = {{ opens = {pub_open}, closes = 2024-05-31 }}
certificates = {{ opens = 2024-06-01, closes = 2024-12-31 }}
"""


def calendar_text(**overrides: str) -> str:
    values = {
        "code": "2024-1",
        "exam_day": "2024-05-18",
        "ends": "17:45:00",
        "reg_close": "2024-04-29",
        "train_close": "2024-05-06",
        "pub_open": "2024-05-29",
    }
    return VALID_SITTING.format(**{**values, **overrides})


def test_notice_calendar_holds_the_three_sittings_with_their_dates() -> None:
    cal = parse_calendar(CALENDAR.read_text(encoding="utf-8"))
    assert [s.code for s in cal.sittings] == ["2024-1", "2024-2", "2024-3"]
    s1, s2, s3 = cal.sittings
    assert s1.exam_day == date(2024, 5, 18) and s2.exam_day == date(2024, 6, 7)
    assert s3.exam_day == date(2024, 6, 16)
    assert s1.window(StageCode.platform_install).opens == date(2024, 4, 18)
    assert s3.window(StageCode.materials).opens == date(2024, 6, 3)
    assert s2.window(StageCode.publicity).closes == date(2024, 6, 20)
    assert s3.levels == [Level.intermediate, Level.junior, Level.senior]
    assert Level.senior not in s1.levels and Level.senior not in s2.levels
    assert s3.slot(Level.senior).starts == time(13, 30)
    assert cal.certificate == "网店运营推广职业技能等级证书"
    assert cal.fee(s1, Level.junior) == 380 and cal.fee(s3, Level.senior) == 360


def test_deadline_is_the_end_of_the_day_in_shanghai() -> None:
    s1 = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sittings[0]
    window = s1.window(StageCode.registration)
    last_second = datetime(2024, 4, 29, 23, 59, 59, tzinfo=SHANGHAI)
    assert window.contains(last_second)
    assert window.has_closed(datetime(2024, 4, 30, 0, 0, 0, tzinfo=SHANGHAI))
    # 16:00 UTC on the 29th is already midnight in Shanghai
    assert window.has_closed(datetime.fromisoformat("2024-04-29T16:00:01+00:00"))


def test_2024_3_junior_and_senior_slots_overlap() -> None:
    s3 = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sittings[2]
    assert s3.slot(Level.junior).overlaps(s3.slot(Level.senior))
    assert not s3.slot(Level.junior).overlaps(s3.slot(Level.intermediate))


def test_a_minimal_valid_calendar_parses_and_exam_window_defaults_to_exam_day() -> None:
    cal = parse_calendar(calendar_text())
    assert cal.sittings[0].window(StageCode.exam).opens == date(2024, 5, 18)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"reg_close": "2024-05-18"},
            "sitting 2024-1: exam_day: 2024-05-18 is not after the registration close",
        ),
        ({"train_close": "2024-04-01"}, "sitting 2024-1: windows.training: Value error"),
        ({"pub_open": "2024-05-18"}, "sitting 2024-1: windows.publicity.opens"),
        ({"ends": "13:00:00"}, "sitting 2024-1: slots.0"),
        ({"code": "2024 1"}, "sitting 2024 1: code"),
    ],
)
def test_invalid_calendar_names_sitting_field_and_reason(
    overrides: dict[str, str], expected: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(calendar_text(**overrides))
    assert any(
        p.startswith(expected.replace(": Value error", "")) for p in caught.value.problems
    ), caught.value.problems


def test_duplicate_codes_unknown_levels_and_missing_stages_are_all_reported_together() -> None:
    text = calendar_text() + calendar_text().split("certificate", 1)[1].split("\n", 1)[1]
    text = text.replace('level = "初级"', 'level = "特级"', 1)
    text = text.replace("materials = { opens = 2024-05-06, closes = 2024-05-17 }\n", "", 1)
    with pytest.raises(CalendarError) as caught:
        parse_calendar(text)
    problems = "\n".join(caught.value.problems)
    assert "slots.0.level" in problems
    assert "windows.materials: Field required" in problems
    assert "code: duplicate sitting code" in problems


def test_duplicate_sitting_codes_are_refused() -> None:
    body = calendar_text().split("\n[[sittings]]", 1)[1]
    with pytest.raises(CalendarError, match="duplicate sitting code"):
        parse_calendar(calendar_text() + "\n[[sittings]]" + body)


def test_overlapping_windows_are_allowed() -> None:
    cal = parse_calendar(CALENDAR.read_text(encoding="utf-8"))
    s3 = cal.sittings[2]
    assert s3.window(StageCode.materials).opens < s3.window(StageCode.training).opens  # type: ignore[operator]


def test_calendar_check_prints_table_or_every_error(tmp_path: Path, home: Path) -> None:
    ok = run("calendar", "check", str(CALENDAR))
    assert ok.exit_code == 0 and "2024-3" in ok.stdout and "高级" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(calendar_text(reg_close="2024-05-20", ends="12:00:00"), encoding="utf-8")
    result = run("calendar", "check", str(bad))
    assert result.exit_code == 1
    assert "slots.0" in result.stderr


def test_calendar_check_reports_invalid_toml(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("certificate = \n", encoding="utf-8")
    result = run("calendar", "check", str(bad))
    assert result.exit_code == 1 and "not valid TOML" in result.stderr


def test_calendar_load_is_idempotent(home: Path) -> None:
    first = run("calendar", "load", str(CALENDAR))
    assert first.exit_code == 0 and first.stdout.count("created") == 3
    again = run("calendar", "load", str(CALENDAR))
    assert again.exit_code == 0 and again.stdout.count("unchanged") == 3


def test_calendar_ics_for_a_school_and_for_a_site(register_loaded: Path) -> None:
    school = register_loaded / "n1.ics"
    result = run("calendar", "ics", "2024-3", "--school", "N1", "-o", str(school))
    assert result.exit_code == 0, result.output
    text = school.read_text(encoding="utf-8").replace("\n ", "")  # unfold long lines
    assert "报名截止" in text and "DTSTART;VALUE=DATE:20240528" in text
    assert "正式考试（高级）" in text and "DTSTART;TZID=Asia/Shanghai:20240616T133000" in text
    assert "安装考试平台" not in text  # a non-site school does not install a platform
    site = register_loaded / "p1.ics"
    assert run("calendar", "ics", "2024-3", "--school", "P1", "-o", str(site)).exit_code == 0
    assert "安装考试平台" in site.read_text(encoding="utf-8")
    assert (
        "unknown school"
        in run("calendar", "ics", "2024-3", "--school", "ZZ", "-o", str(site)).stderr
    )
