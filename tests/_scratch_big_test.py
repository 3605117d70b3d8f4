"""Hostile upload files: every importer stores a whole file or nothing, and says where.

Each upload command runs through the command line (tests.cli.run re-raises any exception, so a
traceback fails the test) on files that hypothesis builds from a valid table and then damages:
random bytes, foreign encodings and BOMs, missing, extra, renamed and duplicated columns, XLSX
with merged cells, formulas, typed cells (numbers, dates, booleans), empty or several sheets,
and hostile cell values (long text, control characters, line breaks, ID numbers that Excel
mangled). The property: exit 0 with every row stored, or exit 1 with messages naming a row,
a field or the file, and the database exactly as it was. Never a traceback, never exit 2.
"""

import codecs
import csv
import io
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlmodel import SQLModel

from examflow.commands.fees_cmds import STANDARD_COLUMNS
from examflow.db import get_engine, session_scope
from examflow.synthetic import REGISTRATION_HEADER, SCHOOL_HEADER
from models import all_tables
from models.attendance import ATTENDANCE_COLUMNS, PRESENT
from models.facts import FACT_ALIASES, FACT_COLUMNS, FACT_LABELS_ZH, SiteFact
from models.fees import yuan_to_fen
from models.registration import REGISTRATION_COLUMNS
from models.resident_id import check_digit, validate_resident_id
from models.rooms import ROOM_COLUMNS
from models.schools import SCHOOL_COLUMNS, parse_count, parse_yes_no
from models.scores import REVIEW_COLUMNS, SCORE_COLUMNS
from models.tabular import Column, Table, read_table
from tests.cli import Result, run
from tests.helpers import OPEN, SCHOOLS

BOUNDED = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REGISTERED_ON = date.fromisoformat(OPEN[:10])
IN_PUBLICITY = "2024-05-30T10:00:00"
FEES_AS_OF = "2024-03-01T09:00:00"

# --- the database before and after --------------------------------------------------------

Snapshot = dict[str, list[dict[str, Any]]]


def snapshot() -> Snapshot:
    """Every row of every examflow table, in primary-key order."""
    all_tables()
    with session_scope() as session:
        return {
            table.name: [
                dict(row._mapping)
                for row in session.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


class SavedDatabase:
    """A copy of the test's database, to go back to after an import that stored something."""

    def __init__(self) -> None:
        self.copy = sqlite3.connect(":memory:")
        raw = get_engine().raw_connection()
        try:
            raw.driver_connection.backup(self.copy)  # type: ignore[union-attr]
        finally:
            raw.close()

    def restore(self) -> None:
        raw = get_engine().raw_connection()
        try:
            self.copy.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()


# --- what the messages of a refused file look like ------------------------------------------

# report_rejection: "f.csv: 2 problem(s); nothing was stored", then one line per problem.
PROBLEM_LINE = re.compile(r"  (?:row [1-9]\d*(?:, [^:]+)?|file(?:, [^:]+)?): \S")
FEES_LINE = re.compile(r"  row [1-9]\d*: \S")


def assert_refusal_says_where(result: Result, name: str) -> None:
    """Exit 1 came with the file's name and a message per problem naming its row or field."""
    stderr = result.stderr
    summary = re.search(
        rf"^{re.escape(name)}: (\d+) problem\(s\); nothing was stored$", stderr, re.MULTILINE
    )
    if summary:
        problems = stderr[summary.end() :].strip("\n").split("\n")
        assert len(problems) == int(summary[1]), stderr
        assert all(PROBLEM_LINE.match(p) for p in problems), stderr
    elif "error: nothing was stored:\n" in stderr:  # fees standard --file lists its own
        problems = stderr.split("error: nothing was stored:\n", 1)[1].strip("\n").split("\n")
        assert all(FEES_LINE.match(p) for p in problems), stderr
    else:  # a whole-file problem (encoding, columns, damaged workbook): names the file
        assert f"error: {name}: " in stderr, stderr


# --- the importers --------------------------------------------------------------------------


def ticket_by_id(snap: Snapshot) -> dict[str, str]:
    id_of = {r["id"]: r["id_number"] for r in snap["registration"]}
    return {id_of[s["registration_id"]]: s["ticket_number"] for s in snap["seatassignment"]}


def row_ticket(v: dict[str, str], snap: Snapshot) -> str:
    if v.get("ticket_number"):
        return v["ticket_number"]
    return ticket_by_id(snap)[validate_resident_id(v["id_number"], REGISTERED_ON)]


def schools_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    stored = {s["code"]: s for s in after["school"]}
    for _, v in table.rows:
        school = stored[v["code"]]
        assert (school["name"], school["province"]) == (v["name"], v["province"])
        assert school["is_pilot"] == parse_yes_no(v["is_pilot"])


def registrations_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    old = {r["id_number"] for r in before["registration"]}
    new = [r["id_number"] for r in after["registration"] if r["id_number"] not in old]
    in_file = {validate_resident_id(v["id_number"], REGISTERED_ON) for _, v in table.rows}
    if "nothing changed" in stdout:
        assert in_file <= old and not new
    else:
        assert sorted(new) == sorted(in_file) and len(new) == len(table.rows)


def attendance_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    stored = {a["ticket_number"]: a["present"] for a in after["attendance"]}
    for _, v in table.rows:
        assert stored[v["ticket_number"]] == (v["attendance"].casefold() in PRESENT)


def scores_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    stored = {s["ticket_number"]: s["score"] for s in after["score"]}
    for _, v in table.rows:
        assert stored[row_ticket(v, after)] == int(v["score"].removesuffix(".0"))


def review_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    old = {item["id"] for item in before["reviewitem"]}
    new = [item["ticket_number"] for item in after["reviewitem"] if item["id"] not in old]
    assert sorted(new) == sorted(row_ticket(v, after) for _, v in table.rows)


def rooms_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    stored = {(r["site_code"], r["name"]): r["seats"] for r in after["room"]}
    for _, v in table.rows:
        assert stored[(v["site_code"], v["room"])] == parse_count(v["seats"])


def facts_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    expected = {
        (v["site_code"], FACT_ALIASES[v["fact"]].value): parse_yes_no(v["done"])
        if v["done"]
        else True
        for _, v in table.rows
    }
    stored = {
        (r["site_code"], r["fact"]): r["done"]
        for r in after["sitefactrecord"]
        if r["sitting_code"] == "2024-1"
    }
    for key, done in expected.items():
        assert stored.get(key, False) is done


def fees_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    expected = {
        (v["province"], v["level"], int(v["year"] or FEES_AS_OF[:4])): yuan_to_fen(v["amount"])
        for _, v in table.rows
    }
    stored = {(f["province"], f["level"], f["year"]): f["amount_fen"] for f in after["feestandard"]}
    for key, fen in expected.items():
        assert stored[key] == fen


Context = dict[str, str]  # the scored fixture's ticket numbers by candidate name
RowStrategy = st.SearchStrategy[list[object]]


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["110101", "130102", "440305", "510104"]))
    born = draw(st.dates(date(1950, 1, 1), date(2008, 12, 31)))
    first17 = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + check_digit(first17)


NAMES = st.sampled_from(["王伟", "李娜", "欧阳娜娜", "张三", "阿依古丽·买买提"])


def school_rows(_: Context) -> RowStrategy:
    template = st.sampled_from(SCHOOLS)
    code = st.one_of(
        st.sampled_from(["P1", "P2", "N1", "P3", "P4"]),
        st.from_regex(r"H[0-9]{1,3}", fullmatch=True),
    )
    return st.builds(lambda row, c: [c, *row[1:]], template, code)


def registration_rows(_: Context) -> RowStrategy:
    # Mostly P3 (100 seats): P1 and P4 have 3 and 2 seats, so big files would run out.
    route = st.sampled_from([("P3", "")] * 4 + [("P1", ""), ("P4", ""), ("P3", "P3")])
    return st.builds(
        lambda r, name, id_number, level: [r[0], name, id_number, level, r[1]],
        route,
        NAMES,
        resident_ids(),
        st.sampled_from(["初级", "中级"]),
    )


def attendance_rows(tickets: Context) -> RowStrategy:
    mark = st.sampled_from(["出席", "缺考", "present", "absent", "是", "否"])
    return st.lists(st.sampled_from(sorted(tickets.values())), min_size=1, max_size=1).flatmap(
        lambda t: st.builds(lambda m: [t[0], m], mark)
    )


def present(tickets: Context) -> list[str]:
    return [t for name, t in sorted(tickets.items()) if name != "甲2"]


def score_rows(tickets: Context) -> RowStrategy:
    return st.builds(lambda t, s: [t, s], st.sampled_from(present(tickets)), st.integers(0, 100))


def review_rows(tickets: Context) -> RowStrategy:
    own = [tickets["甲0"], tickets["甲1"]]  # P3's candidates with a score
    return st.builds(lambda t, r: [t, r], st.sampled_from(own), st.sampled_from(["", "分数有误"]))


def room_rows(_: Context) -> RowStrategy:
    return st.builds(
        lambda site, room, seats: [site, room, seats],
        st.sampled_from(["P1", "P3", "P4"]),
        st.sampled_from(["第1考场", "第2考场", "A101"]),
        st.integers(1, 200),
    )


def fact_rows(_: Context) -> RowStrategy:
    facts = [f.value for f in SiteFact] + list(FACT_LABELS_ZH.values())
    return st.builds(
        lambda site, fact, done: [site, fact, done],
        st.sampled_from(["P1", "P3", "P4"]),
        st.sampled_from(facts),
        st.sampled_from(["是", "否", ""]),
    )


def fee_rows(_: Context) -> RowStrategy:
    return st.builds(
        lambda province, level, amount, year: [province, level, amount, year],
        st.sampled_from(["北京市", "河北省"]),
        st.sampled_from(["初级", "中级", "高级"]),
        st.sampled_from(["380", "360.50", "0", "1,200"]),
        st.sampled_from(["", "2024", "2025"]),
    )


@dataclass(frozen=True)
class Importer:
    """One upload command: its columns, a valid row, and how to see that a file was stored."""

    name: str
    fixture: str
    columns: tuple[Column, ...]
    header: tuple[str, ...]
    command: Callable[[Path], list[str]]
    rows: Callable[[Context], RowStrategy]
    key: Callable[[list[object]], object]  # rows with equal keys make a duplicate
    assert_stored: Callable[[Table, Snapshot, Snapshot, str], None]

    def __str__(self) -> str:
        return self.name


IMPORTERS = [
    Importer(
        "schools",
        "register_loaded",
        SCHOOL_COLUMNS,
        tuple(SCHOOL_HEADER),
        lambda p: ["schools", "import", str(p)],
        school_rows,
        lambda r: r[0],
        schools_stored,
    ),
    Importer(
        "register",
        "register_loaded",
        REGISTRATION_COLUMNS,
        tuple(REGISTRATION_HEADER),
        lambda p: ["register", "2024-1", str(p), "--as-of", OPEN],
        registration_rows,
        lambda r: r[2],
        registrations_stored,
    ),
    Importer(
        "attendance",
        "scored",
        ATTENDANCE_COLUMNS,
        ("准考证号", "出勤"),
        lambda p: ["attendance", "2024-1", str(p)],
        attendance_rows,
        lambda r: r[0],
        attendance_stored,
    ),
    Importer(
        "scores",
        "scored",
        SCORE_COLUMNS,
        ("准考证号", "成绩"),
        lambda p: ["scores", "import", "2024-1", str(p)],
        score_rows,
        lambda r: r[0],
        scores_stored,
    ),
    Importer(
        "review",
        "scored",
        REVIEW_COLUMNS,
        ("准考证号", "复核理由"),
        lambda p: ["review", "file", "2024-1", "P3", str(p), "--as-of", IN_PUBLICITY],
        review_rows,
        lambda r: r[0],
        review_stored,
    ),
    Importer(
        "rooms",
        "register_loaded",
        ROOM_COLUMNS,
        ("考点代码", "考场", "座位数"),
        lambda p: ["rooms", "import", str(p)],
        room_rows,
        lambda r: (r[0], r[1]),
        rooms_stored,
    ),
    Importer(
        "mark",
        "register_loaded",
        FACT_COLUMNS,
        ("考点代码", "事项", "完成"),
        lambda p: ["mark", "2024-1", "--file", str(p)],
        fact_rows,
        lambda r: (r[0], FACT_ALIASES[str(r[1])]),
        facts_stored,
    ),
    Importer(
        "fees",
        "home",
        STANDARD_COLUMNS,
        ("省份", "级别", "金额", "年度"),
        lambda p: ["fees", "standard", "--file", str(p), "--as-of", FEES_AS_OF],
        fee_rows,
        lambda r: (r[0], r[1], r[3] or FEES_AS_OF[:4]),
        fees_stored,
    ),
]

# --- hostile files --------------------------------------------------------------------------

ODD_TEXT = [
    "",
    " ",
    "\u3000",
    "=1+1",
    "=A2",
    "=SUM(A1:A9",
    "+86 138",
    "-1",
    "@x",
    "'",
    "'0012",
    "1.10101E+17",
    "110101199003077777.0",
    "NULL",
    "#N/A",
    "TRUE",
    "[/x]",
    "[bold red]粗体",
    "a\\",
    "王\r\n伟",
    "王\n伟",
    "王\r伟",
    "\t",
    "\x00",
    "\x07\x1b[31m",
    "\ufeff",
    "\u200b",
    "１２０",
    "²",
    "٣",
    "1,000",
    "1e309",
    "nan",
    "-0",
    "9" * 5000,
    "😀𠮷",
    '"',
    '"unclosed',
    "a,b;c\td",
]
HOSTILE_VALUES: st.SearchStrategy[object] = st.one_of(
    st.sampled_from(ODD_TEXT),
    st.text(max_size=30),
    st.text(min_size=1, max_size=3).map(lambda s: s * 3000),  # very long
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.just(1.10101e17),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.none(),
)
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def id_variants(id_number: str) -> list[object]:
    """What Excel, input methods and typos make of an ID number (valid ones among them)."""
    with_birth = [
        f"{id_number[:6]}{born}{id_number[14:17]}" for born in ("20230230", "20240501", "18991231")
    ]
    return [
        id_number[:17] + ("0" if id_number[17] != "0" else "1"),  # wrong check digit
        "'" + id_number,  # Excel's text marker
        id_number.translate(FULL_WIDTH),
        f" {id_number[:6]} {id_number[6:14]} {id_number[14:]} ",
        id_number.lower(),
        format(float(id_number[:17]) * 10, "G"),  # 1.10101E+17
        float(id_number[:17]) * 10,  # a number cell
        int(id_number[:17]) * 10,
        id_number + ".0",
        id_number[:15],
        *(first17 + check_digit(first17) for first17 in with_birth),
    ]


Grid = list[list[object]]
MUTATIONS = [
    "drop column",
    "duplicate column",
    "rename column",
    "extra column",
    "shuffle columns",
    "title rows",
    "blank rows",
    "hostile cells",
    "mangled ID numbers",
    "short row",
    "long row",
    "no header",
    "no rows",
    "duplicate row",
]


def mutate(draw: st.DrawFn, grid: Grid, importer: Importer, mutation: str) -> Grid:
    width = max((len(r) for r in grid), default=0)
    column = draw(st.integers(0, max(width - 1, 0)))
    row = draw(st.integers(0, max(len(grid) - 1, 0)))
    if mutation == "drop column":
        return [r[:column] + r[column + 1 :] for r in grid]
    if mutation == "duplicate column":
        return [[*r, r[column] if column < len(r) else ""] for r in grid]
    if mutation == "rename column" and grid and grid[0]:
        # Another label of a column, the same with template noise, or anything at all.
        label = draw(st.sampled_from([x for c in importer.columns for x in (c.key, *c.labels)]))
        noisy = "*" + label.upper() + draw(st.sampled_from(["（个）", " (必填)", "\n"]))
        renamed = draw(st.one_of(st.just(label), st.just(noisy), st.text(max_size=12)))
        grid[0][min(column, len(grid[0]) - 1)] = renamed
        return grid
    if mutation == "extra column":
        return [[*r, draw(HOSTILE_VALUES)] for r in grid]
    if mutation == "shuffle columns":
        order = draw(st.permutations(range(width)))
        return [[r[i] if i < len(r) else "" for i in order] for r in grid]
    if mutation == "title rows":
        titles = draw(st.lists(st.lists(HOSTILE_VALUES, max_size=3), min_size=1, max_size=3))
        return [*titles, *grid]
    if mutation == "blank rows":
        return [*grid[:row], [], [""] * width, [" "], *grid[row:]]
    if mutation == "hostile cells":
        for _ in range(draw(st.integers(1, 4))):
            r = draw(st.integers(0, max(len(grid) - 1, 0)))
            if grid and grid[r]:
                grid[r][draw(st.integers(0, len(grid[r]) - 1))] = draw(HOSTILE_VALUES)
        return grid
    if mutation == "mangled ID numbers":
        return [[draw(st.sampled_from(id_variants(c))) if is_id(c) else c for c in r] for r in grid]
    if mutation == "short row" and grid:
        grid[row] = grid[row][: draw(st.integers(0, len(grid[row])))]
        return grid
    if mutation == "long row" and grid:
        grid[row] = grid[row] + draw(st.lists(HOSTILE_VALUES, min_size=1, max_size=3))
        return grid
    if mutation == "no header":
        return grid[1:]
    if mutation == "no rows":
        return grid[:1]
    if mutation == "duplicate row" and len(grid) > 1:
        return [*grid, list(grid[-1])]
    return grid


def is_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 18
        and value[:17].isascii()
        and value[:17].isdigit()
    )


def cell_text(value: object) -> str:
    """A typed value as a CSV writer would put it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


ENCODINGS = [
    "utf-8",
    "utf-8-sig",
    "gbk",
    "gb18030",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "latin-1",
    "cp1252",
    "shift_jis",
    "big5",
]
BOMS = [codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, b""]


def csv_bytes(draw: st.DrawFn, grid: Grid) -> bytes:
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerows([cell_text(value) for value in row] for row in grid)
    encoding = draw(st.sampled_from(ENCODINGS))
    event(f"csv {encoding}")
    # latin-1, Shift-JIS and Big5 cannot hold every character: '?' stands in, as in Notepad.
    data = buffer.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 4)) == 0:
        bom = draw(st.sampled_from(BOMS))
        event("csv with a stray BOM")
        data = bom + data
    return data


def xlsx_value(value: object) -> object:
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)  # XML cannot hold them; openpyxl refuses
    return value


def xlsx_bytes(draw: st.DrawFn, grid: Grid) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    layout = draw(st.sampled_from(["one sheet", "data on sheet 2", "empty", "extra sheets"]))
    event(f"xlsx {layout}")
    if layout == "data on sheet 2":
        sheet.title = "填表说明"
        sheet["A1"] = "请在第二张表填写"
        sheet = workbook.create_sheet("报名表")
    if layout != "empty":
        for r, row in enumerate(grid, start=1):
            for c, value in enumerate(row, start=1):
                sheet.cell(r, c).value = xlsx_value(value)
    if layout == "extra sheets":
        workbook.create_sheet("空白")
        workbook.create_sheet("旧数据")["B3"] = "=1+1"
    width = max((len(r) for r in grid), default=1)
    for _ in range(draw(st.integers(0, 2))):
        top, left = draw(st.integers(1, len(grid) + 1)), draw(st.integers(1, width + 1))
        bottom, right = top + draw(st.integers(0, 2)), left + draw(st.integers(0, 2))
        if (bottom, right) != (top, left):
            event("xlsx merged cells")
            sheet.merge_cells(start_row=top, start_column=left, end_row=bottom, end_column=right)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@st.composite
def hostile_files(draw: st.DrawFn, importer: Importer, context: Context) -> tuple[str, bytes]:
    """(suffix, bytes) of a file an upload might be: built from valid rows, then damaged."""
    kind = draw(st.sampled_from(["random bytes", "csv", "xlsx"]))
    if kind == "random bytes":
        magic = draw(st.sampled_from([b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", *BOMS]))
        event(f"random bytes after {magic[:4]!r}")
        return draw(st.sampled_from([".csv", ".xlsx", ""])), magic + draw(st.binary(max_size=600))
    rows = draw(st.lists(importer.rows(context), max_size=6, unique_by=importer.key))
    grid: Grid = [list(importer.header), *rows]
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        event(mutation)
        grid = mutate(draw, grid, importer, mutation)
    data = csv_bytes(draw, grid) if kind == "csv" else xlsx_bytes(draw, grid)
    damage = draw(st.sampled_from(["none"] * 6 + ["truncated", "bytes flipped"]))
    if damage != "none" and data:
        event(f"{kind} {damage}")
        at = draw(st.integers(0, len(data) - 1))
        data = (
            data[:at]
            if damage == "truncated"
            else data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]
        )
    return (".xlsx" if kind == "xlsx" else ".csv"), data


# --- the property ---------------------------------------------------------------------------


def import_whole_or_nothing(
    importer: Importer, path: Path, data: bytes, saved: SavedDatabase
) -> None:
    path.write_bytes(data)
    before = snapshot()
    result = run(*importer.command(path))
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        event("refused")
        assert snapshot() == before, "a refused file changed the database"
        assert_refusal_says_where(result, path.name)
        return
    event("imported")
    table = read_table(data, path.name, importer.columns)
    importer.assert_stored(table, before, snapshot(), result.stdout)
    saved.restore()
    assert snapshot() == before  # the next example starts from the same database


@dataclass(frozen=True)
class Prepared:
    importer: Importer
    context: Context
    saved: SavedDatabase


@pytest.fixture
def prepared(request: pytest.FixtureRequest) -> Prepared:
    """The importer's database (its fixture), saved so that each example starts from it."""
    importer: Importer = request.param
    fixture = request.getfixturevalue(importer.fixture)
    return Prepared(importer, fixture if isinstance(fixture, dict) else {}, SavedDatabase())


@pytest.mark.parametrize("prepared", IMPORTERS, ids=str, indirect=True)
@BOUNDED
@given(data=st.data())
def test_hostile_file_is_imported_whole_or_refused_with_nothing_stored(
    prepared: Prepared, tmp_path: Path, data: st.DataObject
) -> None:
    importer = prepared.importer
    suffix, content = data.draw(hostile_files(importer, prepared.context), label="file")
    import_whole_or_nothing(importer, tmp_path / f"upload{suffix}", content, prepared.saved)
