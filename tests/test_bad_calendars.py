"""Damaged calendars: `examflow calendar check` names the field of every problem, or passes.

Hypothesis mutates the notice's calendar (calendars/2024-h1.toml): keys dropped or renamed,
values of the wrong type, dates swapped, slot times reversed, unknown levels, duplicate codes
and levels, huge numbers; and damages its bytes (random bytes, cut short, not UTF-8, empty).
The property: exit 0, or exit 1 with one line per problem, each naming the sitting or the
calendar and a field path (or saying the file is not valid TOML). Never a traceback.
"""

import codecs
import copy
import math
import re
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.cli import Result, run
from tests.conftest import CALENDAR

BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ORIGINAL_TEXT = CALENDAR.read_text(encoding="utf-8")
ORIGINAL: dict[str, Any] = tomllib.loads(ORIGINAL_TEXT)
CODES = [s["code"] for s in ORIGINAL["sittings"]]

# --- writing TOML (tomllib only reads) -----------------------------------------------------


def toml_char(ch: str) -> str:
    if ch in '"\\':
        return "\\" + ch
    return f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch


def toml_string(text: str) -> str:
    return '"' + "".join(map(toml_char, text)) + '"'


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # 'inf', '-inf', 'nan' and '1e+16' are TOML as they are
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(value)


def toml_document(document: dict[str, Any]) -> str:
    """One `key = value` line per top-level key; tables inline, sittings an array of them."""
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in document.items())


def test_the_toml_writer_round_trips_the_notice_calendar() -> None:
    assert tomllib.loads(toml_document(ORIGINAL)) == ORIGINAL


# --- what `calendar check` may print --------------------------------------------------------

# A wrong code or key may itself hold ': ', hence the lazy matches.
PROBLEM = re.compile(r"  (?:not valid TOML: |sittings: |calendar: .+?: |sitting .+?: .+?: )\S")


def problem_lines(result: Result, path: Path) -> list[str]:
    """The problems of a refused calendar, checked for shape: a header, one line each."""
    header, *problems = result.stderr.rstrip("\n").split("\n")
    assert header == f"{path}: {len(problems)} problem(s)", result.stderr
    assert problems, result.stderr
    for line in problems:
        assert PROBLEM.match(line), line
    return problems


def check_calendar(path: Path, text: str | bytes, expected: str | None) -> bool:
    """Exit 0 or 1, problems well formed; ``expected`` (if any) is named and exit is 1."""
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    result = run("calendar", "check", str(path))
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 0:
        assert expected is None, f"{expected!r} was not refused"
        assert "exam day" in result.stdout
        return True
    problems = problem_lines(result, path)
    if expected is not None:
        assert any(expected in line for line in problems), (expected, problems)
    return False


# --- mutations of the parsed calendar -------------------------------------------------------

KeyPath = tuple[str | int, ...]


def all_paths(value: object, prefix: KeyPath = ()) -> list[KeyPath]:
    found: list[KeyPath] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found += [(*prefix, key), *all_paths(child, (*prefix, key))]
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += [(*prefix, index), *all_paths(child, (*prefix, index))]
    return found


def parent_of(document: dict[str, Any], path: KeyPath) -> Any:
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    return node


OPTIONAL = re.compile(
    r"(organiser|notice|fees(\.[^.]+)?|sittings\.\d"
    r"|sittings\.\d\.(pass_mark|slots\.\d|windows\.exam|windows\.registration\.opens))"
)


def field_text(path: KeyPath, document: dict[str, Any]) -> str:
    """How `calendar check` names the field at ``path``: 'sitting 2024-1: windows.exam'."""
    dotted = ".".join(map(str, path[2:]))
    if path[0] != "sittings":
        return f"calendar: {'.'.join(map(str, path))}"
    if len(path) == 1:
        return "sittings: "
    code = document["sittings"][path[1]].get("code")
    named = code if isinstance(code, str) and code.isprintable() and code else f"#{path[1] + 1}"
    return f"sitting {named}: {dotted}"


WRONG_VALUES: st.SearchStrategy[object] = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.just(10**30),  # tomllib reads integers of any size
    st.floats(),
    st.text(max_size=20),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def mutated_calendars(draw: st.DrawFn) -> tuple[str, str | None]:
    """(TOML text, a field that must be named as wrong, or None if the result may be valid)."""
    doc = copy.deepcopy(ORIGINAL)
    kind = draw(
        st.sampled_from(
            [
                "drop a key",
                "wrong type",
                "rename a key",
                "swap a window's dates",
                "exam day after registration",
                "slot ends before it starts",
                "unknown level",
                "duplicate level",
                "duplicate code",
                "huge number",
            ]
        )
    )
    event(kind)
    index = draw(st.integers(0, len(CODES) - 1))
    sitting = doc["sittings"][index]
    here = f"sitting {CODES[index]}: "
    if kind == "drop a key":
        path = draw(st.sampled_from(all_paths(doc)))
        del parent_of(doc, path)[path[-1]]
        dotted = ".".join(map(str, path))
        required = not OPTIONAL.fullmatch(dotted)
        return toml_document(doc), field_text(path, doc) if required else None
    if kind == "wrong type":
        path = draw(st.sampled_from(all_paths(doc)))
        parent_of(doc, path)[path[-1]] = draw(WRONG_VALUES)
        return toml_document(doc), None
    if kind == "rename a key":
        path = draw(st.sampled_from([p for p in all_paths(doc) if isinstance(p[-1], str)]))
        new = "x_" + draw(st.from_regex(r"[a-z_]{1,8}", fullmatch=True))
        parent = parent_of(doc, path)
        parent[new] = parent.pop(path[-1])
        return toml_document(doc), field_text((*path[:-1], new), doc)
    if kind == "swap a window's dates":
        stage = draw(st.sampled_from(["registration", "training", "materials", "publicity"]))
        window = sitting["windows"][stage]
        window["opens"], window["closes"] = window["closes"], window["opens"]
        return toml_document(doc), f"{here}windows.{stage}"
    if kind == "exam day after registration":
        registration = sitting["windows"]["registration"]
        sitting["exam_day"], registration["closes"] = registration["closes"], sitting["exam_day"]
        return toml_document(doc), f"{here}exam_day"
    slot = draw(st.integers(0, len(sitting["slots"]) - 1))
    if kind == "slot ends before it starts":
        bad = sitting["slots"][slot]
        bad["starts"], bad["ends"] = (
            bad["ends"],
            draw(st.sampled_from([bad["starts"], bad["ends"]])),
        )
        return toml_document(doc), f"{here}slots.{slot}"
    if kind == "unknown level":
        level = draw(st.sampled_from(["特级", "专家级", "初級", "junior", "", "初级 "]))
        sitting["slots"][slot]["level"] = level
        return toml_document(doc), f"{here}slots.{slot}.level"
    if kind == "duplicate level":
        other = (slot + 1) % len(sitting["slots"])
        sitting["slots"][other]["level"] = sitting["slots"][slot]["level"]
        return toml_document(doc), f"{here}slots: level"
    if kind == "duplicate code":
        other = (index + 1) % len(CODES)
        doc["sittings"][other]["code"] = CODES[index]
        return toml_document(doc), f"{here}code: duplicate sitting code"
    field = draw(st.sampled_from(["pass_mark", "fees"]))  # huge number
    if field == "pass_mark":
        sitting["pass_mark"] = draw(st.sampled_from([10**30, 101, -1, math.inf]))
        return toml_document(doc), f"{here}pass_mark"
    doc["fees"]["初级"] = draw(st.sampled_from([10**30, 10**6, -1, math.inf, math.nan]))
    return toml_document(doc), "calendar: fees.初级"


@BOUNDED
@given(mutated=mutated_calendars())
def test_mutated_calendar_passes_or_every_problem_names_its_field(
    home: Path, tmp_path: Path, mutated: tuple[str, str | None]
) -> None:
    text, expected = mutated
    event("valid" if check_calendar(tmp_path / "calendar.toml", text, expected) else "refused")


# --- damaged bytes --------------------------------------------------------------------------


@st.composite
def damaged_calendars(draw: st.DrawFn) -> bytes:
    original = ORIGINAL_TEXT.encode()
    kind = draw(
        st.sampled_from(
            ["random bytes", "cut short", "junk inserted", "re-encoded", "BOM", "empty", "nested"]
        )
    )
    event(kind)
    if kind == "random bytes":
        return draw(st.binary(max_size=400))
    if kind == "cut short":
        return original[: draw(st.integers(0, len(original)))]
    if kind == "junk inserted":
        at = draw(st.integers(0, len(original)))
        junk = draw(
            st.one_of(
                st.binary(min_size=1, max_size=8), st.text(min_size=1, max_size=8).map(str.encode)
            )
        )
        return original[:at] + junk + original[at:]
    if kind == "re-encoded":
        return ORIGINAL_TEXT.encode(draw(st.sampled_from(["gbk", "gb18030", "utf-16", "utf-32"])))
    if kind == "BOM":
        return draw(st.sampled_from([codecs.BOM_UTF8, codecs.BOM_UTF16_LE])) + original
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"   \r\n", b"# only a comment\n"]))
    depth = draw(st.integers(1, 5000))  # nested arrays: tomllib recurses once per level
    return original + b"deep = " + b"[" * depth + b"]" * depth + b"\n"


@BOUNDED
@given(data=damaged_calendars())
def test_damaged_calendar_file_passes_or_says_what_is_wrong(
    home: Path, tmp_path: Path, data: bytes
) -> None:
    event("valid" if check_calendar(tmp_path / "calendar.toml", data, None) else "refused")


# --- each invalid shape, named --------------------------------------------------------------


def edited(old: str, new: str, count: int = 1) -> str:
    assert old in ORIGINAL_TEXT
    return ORIGINAL_TEXT.replace(old, new, count)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edited('certificate = "网店运营推广职业技能等级证书"\n', ""),
            "calendar: certificate: Field required",
            id="no certificate",
        ),
        pytest.param(
            edited('code = "2024-1"\n', ""), "sitting #1: code: Field required", id="no code"
        ),
        pytest.param(
            edited("exam_day = 2024-05-18\n", ""),
            "sitting 2024-1: exam_day: Field required",
            id="no exam day",
        ),
        pytest.param(
            edited("training = { opens = 2024-05-01, closes = 2024-05-06 }\n", ""),
            "sitting 2024-1: windows.training: Field required",
            id="no stage window",
        ),
        pytest.param(
            edited("opens = 2024-05-29, closes", "closes"),
            "sitting 2024-1: windows.publicity.opens: required",
            id="no opening day",
        ),
        pytest.param(
            edited("pass_mark = 60", 'pass_mark = "sixty"'),
            "sitting 2024-1: pass_mark: Input should be a valid integer",
            id="pass mark as text",
        ),
        pytest.param(
            edited("pass_mark = 60", "pass_mark = 100000000000000000000000000000"),
            "sitting 2024-1: pass_mark: Input should be less than or equal to 100",
            id="huge pass mark",
        ),
        pytest.param(
            edited('"初级" = 380', '"初级" = 100000000000000000000000000000'),
            "calendar: fees.初级: Input should be less than or equal to 100000",
            id="huge fee",
        ),
        pytest.param(
            edited("exam_day = 2024-05-18", 'exam_day = "5月18日"'),
            "sitting 2024-1: exam_day: Input should be a valid date",
            id="exam day as text",
        ),
        pytest.param(
            edited("closes = 2024-04-29", "closes = 2024-02-30"),
            "not valid TOML",
            id="30 February",
        ),
        pytest.param(
            edited(
                "training = { opens = 2024-05-01, closes = 2024-05-06 }",
                "training = { opens = 2024-05-06, closes = 2024-05-01 }",
            ),
            "sitting 2024-1: windows.training: opens 2024-05-06 is after closes 2024-05-01",
            id="window opens after it closes",
        ),
        pytest.param(
            edited("starts = 08:30:00, ends = 11:45:00", "starts = 11:45:00, ends = 08:30:00"),
            "sitting 2024-1: slots.0: slot 中级: starts 11:45:00 is not before ends 08:30:00",
            id="slot ends before it starts",
        ),
        pytest.param(
            edited("starts = 08:30:00", 'starts = "25:00"'),
            "sitting 2024-1: slots.0.starts: Input should be in a valid time format",
            id="slot at 25:00",
        ),
        pytest.param(
            edited("starts = 08:30:00", "starts = 0"),  # pydantic reads 0 as 00:00 UTC
            "sitting 2024-1: slots.0.starts: must be a local time of day",
            id="slot time as a number",
        ),
        pytest.param(
            edited("ends = 11:45:00", 'ends = "11:45:00+08:00"'),
            "sitting 2024-1: slots.0.ends: must be a local time of day",
            id="slot time with an offset",
        ),
        pytest.param(
            edited('level = "中级"', 'level = "特级"'),
            "sitting 2024-1: slots.0.level: Input should be '初级', '中级' or '高级'",
            id="unknown level",
        ),
        pytest.param(
            edited('level = "中级"', 'level = "初级"'),
            "sitting 2024-1: slots: level 初级 appears more than once",
            id="duplicate level",
        ),
        pytest.param(
            edited('code = "2024-2"', 'code = "2024-1"'),
            "sitting 2024-1: code: duplicate sitting code (also sitting #1)",
            id="duplicate code",
        ),
        pytest.param(
            edited('code = "2024-1"', 'code = "2024\\n1"'),
            "sitting #1: code: String should match pattern '^[a-z0-9][a-z0-9-]*$'",
            id="code with a line break",
        ),
        pytest.param(
            edited("pass_mark = 60", 'pass_mark = 60\n"bonus\\nmark" = 5'),
            "sitting 2024-1: 'bonus\\nmark': Extra inputs are not permitted",
            id="unknown key with a line break",
        ),
        pytest.param(
            edited('organiser = "北京鸿科经纬科技有限公司"', 'organiser = "[/x]"\n"[/y]" = 1'),
            "calendar: [/y]: Extra inputs are not permitted",
            id="rich markup in a key",
        ),
        pytest.param(
            "sittings = [1, 2]\n" + ORIGINAL_TEXT.split("[[sittings]]")[0],
            "sittings: sitting #1 is not a table ([[sittings]])",
            id="sittings that are not tables",
        ),
        pytest.param(
            ORIGINAL_TEXT.split("[[sittings]]")[0],
            "sittings: at least one [[sittings]] table is required",
            id="no sittings",
        ),
        pytest.param("", "calendar: certificate: Field required", id="empty file"),
        pytest.param(
            "a = " + "[" * 5000 + "]" * 5000,
            "not valid TOML: arrays or tables nested",
            id="deep nesting",
        ),
        pytest.param(
            ORIGINAL_TEXT.encode("gbk"), "not valid TOML: not UTF-8 (byte ", id="GBK bytes"
        ),
    ],
)
def test_each_invalid_shape_is_refused_with_its_field_named(
    home: Path, tmp_path: Path, text: str | bytes, expected: str
) -> None:
    assert not check_calendar(tmp_path / "calendar.toml", text, expected)


def test_rich_markup_in_names_is_printed_as_written(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    path.write_text(edited('certificate = "', 'certificate = "[/x]'), encoding="utf-8")
    result = run("calendar", "check", str(path))
    assert result.exit_code == 0, result.output
    assert "[/x]网店运营推广职业技能等级证书" in result.stdout


def test_a_calendar_saved_with_a_utf8_bom_is_read(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    path.write_bytes(codecs.BOM_UTF8 + ORIGINAL_TEXT.encode())
    result = run("calendar", "check", str(path))
    assert result.exit_code == 0, result.output
