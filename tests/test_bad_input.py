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
import random
import re
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlmodel import SQLModel

from adapters.tabular import read_table
from examflow.db import session_scope
from examflow.synthetic import (
    REGISTRATION_HEADER,
    SCHOOL_HEADER,
    make_id_number,
    make_name,
    write_csv,
)
from models import all_tables
from models.attendance import ATTENDANCE_COLUMNS
from models.facts import FACT_ALIASES, FACT_COLUMNS, FACT_LABELS_ZH, SiteFact
from models.fees import STANDARD_COLUMNS
from models.registration import REGISTRATION_COLUMNS
from models.rooms import ROOM_COLUMNS
from models.schools import SCHOOL_COLUMNS
from models.scores import REVIEW_COLUMNS, SCORE_COLUMNS
from models.table import Column, Table
from tests import oracles
from tests.cli import Result, run
from tests.helpers import OPEN, SCHOOLS, new_id, reg_file

BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
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


def restore(saved: Snapshot) -> None:
    """Put every table back as ``saved`` has it (SQLite or PostgreSQL alike)."""
    tables = SQLModel.metadata.sorted_tables
    with session_scope() as session:
        for table in reversed(tables):
            session.execute(table.delete())
        for table in tables:
            if saved[table.name]:
                session.execute(table.insert(), saved[table.name])


# --- what the messages of a refused file look like ------------------------------------------

# report_rejection: "f.csv: 2 problem(s); nothing was stored", then one line per problem.
PROBLEM_LINE = re.compile(r"  (?:row [1-9]\d*(?:, [^:]+)?|file(?:, [^:]+)?): \S")


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
    else:  # a whole-file problem (encoding, columns, damaged workbook): names the file
        assert f"error: {name}: " in stderr, stderr


# --- the importers --------------------------------------------------------------------------


def ticket_by_id(snap: Snapshot) -> dict[str, str]:
    id_of = {r["id"]: r["id_number"] for r in snap["registration"]}
    return {id_of[s["registration_id"]]: s["ticket_number"] for s in snap["seatassignment"]}


def row_ticket(v: dict[str, str], snap: Snapshot) -> str:
    if v.get("ticket_number"):
        return v["ticket_number"]
    return ticket_by_id(snap)[oracles.resident_id(v["id_number"])]


def schools_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    stored = {s["code"]: s for s in after["school"]}
    for _, v in table.rows:
        school = stored[v["code"]]
        assert (school["name"], school["province"]) == (v["name"], v["province"])
        assert school["is_pilot"] == oracles.yes_no(v["is_pilot"])


def registrations_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    old = {r["id_number"] for r in before["registration"]}
    new = [r["id_number"] for r in after["registration"] if r["id_number"] not in old]
    in_file = {oracles.resident_id(v["id_number"]) for _, v in table.rows}
    if "nothing changed" in stdout:
        assert in_file <= old and not new
    else:
        assert sorted(new) == sorted(in_file) and len(new) == len(table.rows)


def attendance_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    stored = {a["ticket_number"]: a["present"] for a in after["attendance"]}
    for _, v in table.rows:
        assert stored[v["ticket_number"]] == oracles.attended(v["attendance"])


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
        assert stored[(v["site_code"], v["room"])] == oracles.whole_number(v["seats"])


def facts_stored(table: Table, before: Snapshot, after: Snapshot, stdout: str) -> None:
    expected = {
        (v["site_code"], FACT_ALIASES[v["fact"]].value): oracles.yes_no(v["done"])
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
        (v["province"], v["level"], int(v["year"] or FEES_AS_OF[:4])): oracles.fen(v["amount"])
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
    return first17 + oracles.iso7064_check(first17)


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
    return st.builds(lambda t, m: [t, m], st.sampled_from(sorted(tickets.values())), mark)


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
        # --errors-out: a refused file's rows go back to the school with their problems
        lambda p: ["register", "2024-1", str(p), "--as-of", OPEN, "--errors-out", f"{p}.xlsx"],
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
    "1" + "0" * 30,
    "😀𠮷",
    '"',
    '"unclosed',
    "a,b;c\td",
]
ODD = st.sampled_from(ODD_TEXT)
HOSTILE_VALUES: st.SearchStrategy[object] = st.one_of(
    ODD,
    ODD,
    ODD,  # thrice: the known troublemakers come up more often than any other kind
    st.just("x" * 140_000),  # past the csv module's field limit
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
    other_births = [
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
        *(first17 + oracles.iso7064_check(first17) for first17 in other_births),
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


def with_hostile_cells(draw: st.DrawFn, grid: Grid) -> Grid:
    """A few cells below the first row replaced: ID numbers as Excel mangles them, or worse."""
    cells = [(r, c) for r in range(1, len(grid)) for c in range(len(grid[r]))]
    for r, c in draw(st.lists(st.sampled_from(cells), max_size=4, unique=True)) if cells else []:
        if is_id(grid[r][c]) and draw(st.booleans()):
            event("mangled ID number")
            grid[r][c] = draw(st.sampled_from(id_variants(str(grid[r][c]))))
        else:
            event("hostile cell")
            grid[r][c] = draw(HOSTILE_VALUES)
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


ENCODINGS = [  # what schools' files are in, thrice; then what they should not be in
    *["utf-8", "utf-8-sig", "gbk"] * 3,
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
    return reproducible(workbook)


FIXED_TIME = datetime(2024, 1, 1)


def reproducible(workbook: Workbook) -> bytes:
    """The workbook's bytes, the same for the same cells whenever they are saved.

    openpyxl stamps the save time into docProps/core.xml and zipfile stamps each member; a
    byte drawn by position (`damaged`) must not move with the clock, or hypothesis finds the
    same example drawing differently on replay (FlakyStrategyDefinition).
    """
    workbook.properties.created = FIXED_TIME
    saved = io.BytesIO()
    workbook.save(saved)
    stamp = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "docProps/core.xml":
                data = stamp.sub(rb"\g<1>2024-01-01T00:00:00Z\g<2>", data)
            fixed = zipfile.ZipInfo(member.filename, FIXED_TIME.timetuple()[:6])
            target.writestr(fixed, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


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
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=2)):
        event(mutation)
        grid = mutate(draw, grid, importer, mutation)
    if draw(st.booleans()):  # else a clean or only reshaped file, which may import whole
        grid = with_hostile_cells(draw, grid)
    data = csv_bytes(draw, grid) if kind == "csv" else xlsx_bytes(draw, grid)
    return (".xlsx" if kind == "xlsx" else ".csv"), damaged(draw, kind, data)


JUNK = [b"\x00", b'"', b"\r", b"\x81", b"\xe4\xb8", b"\xff\xfe"]  # NUL, stray quote, cut GBK…


def damaged(draw: st.DrawFn, kind: str, data: bytes) -> bytes:
    """Mostly intact; else cut short, one byte flipped, or junk bytes inserted somewhere."""
    damage = draw(st.sampled_from(["none"] * 6 + ["truncated", "byte flipped", "junk inserted"]))
    if damage == "none" or not data:
        return data
    event(f"{kind} {damage}")
    at = draw(st.integers(0, len(data) - 1))
    if damage == "truncated":
        return data[:at]
    if damage == "byte flipped":
        return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]
    return data[:at] + draw(st.sampled_from(JUNK)) + data[at:]


# --- the property ---------------------------------------------------------------------------


def import_whole_or_nothing(importer: Importer, path: Path, data: bytes) -> None:
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
    restore(before)  # the next example starts from the same database
    assert snapshot() == before


@dataclass(frozen=True)
class Prepared:
    importer: Importer
    context: Context


@pytest.fixture
def prepared(request: pytest.FixtureRequest) -> Prepared:
    """The importer and its database (its fixture: a register, or a scored sitting)."""
    importer: Importer = request.param
    fixture = request.getfixturevalue(importer.fixture)
    return Prepared(importer, fixture if isinstance(fixture, dict) else {})


@pytest.mark.parametrize("prepared", IMPORTERS, ids=str, indirect=True)
@BOUNDED
@given(data=st.data())
def test_hostile_file_is_imported_whole_or_refused_with_nothing_stored(
    prepared: Prepared, tmp_path: Path, data: st.DataObject
) -> None:
    importer = prepared.importer
    suffix, content = data.draw(hostile_files(importer, prepared.context), label="file")
    import_whole_or_nothing(importer, tmp_path / f"upload{suffix}", content)


# --- targeted cases -------------------------------------------------------------------------


def registered(sitting: str = "2024-1") -> int:
    from sqlalchemy import func

    from models.registration import Registration

    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Registration)
                .where(
                    Registration.sitting_code == sitting  # type: ignore[arg-type]
                )
            )
            or 0
        )


def with_birth(born: str) -> str:
    first17 = f"110101{born}123"
    return first17 + oracles.iso7064_check(first17)


def test_id_number_mistakes_are_refused_row_by_row_and_nothing_is_stored(
    register_loaded: Path,
) -> None:
    good = new_id()
    rows = [
        ["P3", "错校验", good[:17] + ("0" if good[17] != "0" else "1"), "初级", ""],
        ["P3", "二月三十", with_birth("20230230"), "初级", ""],
        ["P3", "未出生", with_birth("20240501"), "初级", ""],  # after the as-of day
        ["P3", "科学计数", "1.10101E+17", "初级", ""],
        ["P3", "小数", good + ".0", "初级", ""],
        ["P3", "旧号", good[:15], "初级", ""],
        ["P3", "正确", new_id(), "初级", ""],
    ]
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 1, result.output
    field = "身份证号 (id_number)"
    for row, reason in [
        (2, "check digit is"),
        (3, "birth date 20230230 is not a real date"),
        (4, "birth date 20240501 is after 2024-04-20"),
        (5, "looks like Excel scientific notation (1.10101E+17)"),
        (6, "ends in a decimal part"),
        (7, "has 15 characters, expected 18 (15-digit IDs were replaced"),
    ]:
        assert f"row {row}, {field}: {reason}" in result.stderr, result.stderr
    assert "row 8" not in result.stderr
    assert_refusal_says_where(result, "reg.csv")
    assert registered() == 0


def test_ids_with_excel_apostrophe_full_width_digits_and_spaces_are_stored_normalised(
    register_loaded: Path,
) -> None:
    ids = [new_id() for _ in range(4)]
    typed = [
        "'" + ids[0],  # Excel's text marker, exported into the CSV
        ids[1].translate(FULL_WIDTH),
        f"{ids[2][:6]} {ids[2][6:14]}\u3000{ids[2][14:]}",
        f"\u201c{ids[3]}\u201d",  # pasted with Chinese quotes
    ]
    rows = [["P3", f"考生{i}", id_number, "初级", ""] for i, id_number in enumerate(typed)]
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    stored = {r["id_number"] for r in snapshot()["registration"]}
    assert stored == set(ids)


def registration_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(REGISTRATION_HEADER)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_id_in_an_xlsx_number_cell_is_named_as_excel_scientific_notation(
    register_loaded: Path,
) -> None:
    id_number = with_birth("19900307")  # 110101…: Excel shows the number as 1.10101E+17
    path = registration_xlsx(
        register_loaded / "reg.xlsx", [["P3", "王伟", float(id_number[:17] + "0"), "初级"]]
    )
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 1
    assert "row 2, 身份证号 (id_number): looks like Excel scientific notation (1.10101E+17)" in (
        result.stderr
    )
    assert registered() == 0


def test_merged_school_cells_leave_the_rows_below_blank_and_each_is_named(
    register_loaded: Path,
) -> None:
    """Schools merge the 学校代码 cells of their candidates: only the first row keeps it."""
    path = registration_xlsx(
        register_loaded / "reg.xlsx",
        [["P1", f"考生{i}", new_id(), "初级"] for i in range(3)],
    )
    from openpyxl import load_workbook

    workbook = load_workbook(path)
    workbook.active.merge_cells("A2:A4")
    workbook.save(path)
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 1
    for row in (3, 4):
        assert f"row {row}, 考点代码 (site_code): a social candidate" in result.stderr
    assert "row 2" not in result.stderr
    assert registered() == 0


def test_formula_without_a_value_reads_as_empty_with_a_warning_and_the_row_is_named(
    register_loaded: Path,
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["考点代码", "考场", "座位数"])
    sheet.append(["P3", "第1考场", "=20+10"])  # openpyxl saves no calculated value
    path = register_loaded / "rooms.xlsx"
    workbook.save(path)
    result = run("rooms", "import", str(path))
    assert result.exit_code == 1
    assert "1 formula cell(s) have no calculated value and were read as empty (C2)" in (
        result.stderr
    )
    assert "row 2, 座位数 (seats): a whole number > 0" in result.stderr
    assert snapshot()["room"] == []


def test_rich_markup_in_cells_and_headers_is_printed_as_typed(register_loaded: Path) -> None:
    rows = [["P3", "[bold]王伟", new_id(), "[/x]", ""]]
    path = reg_file(register_loaded, rows)
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 1
    assert "row 2, 级别 (level): '[/x]' is not 初级, 中级 or 高级" in result.stderr
    header = [*REGISTRATION_HEADER, "[/备注]"]
    path = write_csv(register_loaded / "notes.csv", header, [["P3", "王伟", new_id(), "初级", ""]])
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert "ignored column(s) not used here: F “[/备注]”" in result.stderr


def test_csv_wider_than_excel_names_columns_past_zzz_by_number(register_loaded: Path) -> None:
    """openpyxl has letters only up to ZZZ (18,278); a CSV can be wider."""
    padding = [f"备注{i}" for i in range(20_000)]
    rows = [[*s, *[""] * len(padding)] for s in SCHOOLS]
    wide = write_csv(register_loaded / "wide.csv", [*SCHOOL_HEADER, *padding], rows)
    result = run("schools", "import", str(wide))
    assert result.exit_code == 0, result.output
    assert "… (20000 in all)" in result.stderr
    header = [*SCHOOL_HEADER, *padding, "学校代码"]  # the code column again, at #20010
    doubled = write_csv(register_loaded / "doubled.csv", header, [[*r, "X"] for r in rows])
    before = snapshot()
    result = run("schools", "import", str(doubled))
    assert result.exit_code == 1
    assert "学校代码 (code) is in columns A “学校代码” and #20010 “学校代码”" in result.stderr
    assert snapshot() == before


@pytest.mark.parametrize("count", ["²", "9" * 5000, "9" * 30, "１２０", "-3"])
def test_counts_that_are_not_storable_whole_numbers_are_row_errors(
    register_loaded: Path, count: str
) -> None:
    """'²' passes str.isdigit but not int(); 5000 digits pass neither; 10**30 fits no column."""
    rows = [[*SCHOOLS[0][:6], count, *SCHOOLS[0][7:]]]
    before = snapshot()
    schools = run(
        "schools", "import", str(write_csv(register_loaded / "s.csv", SCHOOL_HEADER, rows))
    )
    rooms = run(
        "rooms",
        "import",
        str(
            write_csv(
                register_loaded / "r.csv", ["考点代码", "考场", "座位数"], [["P1", "A", count]]
            )
        ),
    )
    if count == "１２０":  # full-width digits are a number, as the user meant
        assert schools.exit_code == 0 and rooms.exit_code == 0, schools.output + rooms.output
        return
    assert schools.exit_code == 1 and "row 2, 考位数 (seats): a site needs" in schools.stderr
    assert rooms.exit_code == 1 and "row 2, 座位数 (seats): a whole number > 0" in rooms.stderr
    assert snapshot() == before


@pytest.mark.parametrize("score", ["²", "9" * 5000, "101", "-1", "88.5"])
def test_scores_that_are_not_whole_numbers_0_to_100_are_row_errors(
    scored: dict[str, str], tmp_path: Path, score: str
) -> None:
    path = write_csv(tmp_path / "s.csv", ["准考证号", "成绩"], [[scored["甲1"], score]])
    before = snapshot()
    result = run("scores", "import", "2024-1", str(path))
    assert result.exit_code == 1
    assert "row 2, 成绩 (score): " in result.stderr and "is not a whole number 0–100" in (
        result.stderr
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    ("province", "amount", "year", "reason"),
    [
        ("北京市", "1e30", "", "'1e30' is not an amount in yuan"),
        ("北京市", "99999999999999999999", "", "is not an amount in yuan"),
        ("北京市", "NaN", "", "'NaN' is not an amount in yuan"),
        ("北京市", "380", "9" * 30, "is not a year"),
        ("北京市", "380", "²", "year '²' is not a year"),
        ("北京市", "380", "9" * 5000, "is not a year"),
        ("", "380", "", "province is required"),
    ],
)
def test_fee_standards_out_of_range_are_row_errors(
    home: Path, tmp_path: Path, province: str, amount: str, year: str, reason: str
) -> None:
    rows = [["河北省", "初级", "380", "2024"], [province, "中级", amount, year]]
    path = write_csv(tmp_path / "fees.csv", ["省份", "级别", "金额", "年度"], rows)
    before = snapshot()
    result = run("fees", "standard", "--file", str(path), "--as-of", FEES_AS_OF)
    assert result.exit_code == 1
    assert "fees.csv: 1 problem(s); nothing was stored" in result.stderr
    assert re.search(rf"^  row 3, [^:]+: .*{re.escape(reason)}", result.stderr, re.M), result.stderr
    assert snapshot() == before


def test_a_payment_too_large_for_the_database_is_refused(home: Path) -> None:
    result = run("fees", "paid", "P1", "1e30")
    assert result.exit_code == 1 and "'1e30' is not an amount in yuan" in result.stderr


BIG_SITE = [
    "BIG",
    "大型考点学院",
    "北京市",
    "是",
    "1000000",
    "是",
    "1000000",
    "a@big.cn",
    "t@big.cn",
]


def big_site(tmp_path: Path) -> None:
    result = run(
        "schools", "import", str(write_csv(tmp_path / "big.csv", SCHOOL_HEADER, [BIG_SITE]))
    )
    assert result.exit_code == 0, result.output


def unique_ids(n: int, seed: int) -> Iterator[str]:
    rng, seen = random.Random(seed), set()
    while len(seen) < n:
        id_number = make_id_number(rng)
        if id_number not in seen:
            seen.add(id_number)
            yield id_number


def test_one_bad_row_among_10000_good_ones_stores_nothing(register_loaded: Path) -> None:
    big_site(register_loaded)
    rows = [
        ["BIG", make_name(random.Random(i)), id_number, "初级", ""]
        for i, id_number in enumerate(unique_ids(10_001, 3))
    ]
    bad = rows[5_000][2]
    rows[5_000][2] = bad[:17] + ("0" if bad[17] != "0" else "1")
    path = reg_file(register_loaded, rows)
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 1
    assert "reg.csv: 1 problem(s); nothing was stored" in result.stderr
    assert "row 5002, 身份证号 (id_number): check digit is" in result.stderr
    assert registered() == 0
    rows[5_000][2] = bad  # the school fixes the row: the whole file goes in
    result = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert registered() == 10_001


def test_a_file_over_64_mib_is_refused_having_read_no_more_than_that(
    register_loaded: Path,
) -> None:
    path = register_loaded / "huge.csv"
    with path.open("wb") as handle:
        handle.write(",".join(REGISTRATION_HEADER).encode() + b"\r\n")
        handle.truncate(1024**3)  # 1 GiB, sparse: takes no disk and no time to make
    tracemalloc.start()
    try:
        result = run("register", "2024-1", str(path), "--as-of", OPEN)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 1
    assert "error: huge.csv: file is larger than 64 MiB" in result.stderr
    assert peak < 256 * 1024**2  # the file was not read whole
    assert registered() == 0


@pytest.mark.slow
def test_a_50_mb_file_with_a_bad_last_row_stores_nothing_and_without_it_stores_all(
    register_loaded: Path,
) -> None:
    """~150,000 rows with a notes column, about 50 MB: judged whole, stored in one go."""
    big_site(register_loaded)
    note = "该考生已完成线上培训并提交承诺书，报名信息经学校教务处审核无误。" * 3
    path = register_loaded / "national.csv"
    rng = random.Random(11)
    n = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join([*REGISTRATION_HEADER, "备注"]) + "\r\n")
        for id_number in unique_ids(200_000, 11):
            if handle.tell() >= 50_000_000:
                break
            level = "初级" if n % 2 else "中级"
            handle.write(f"BIG,{make_name(rng)},{id_number},{level},,{note}\r\n")
            n += 1
        good_size = handle.tell()
        handle.write(f"BIG,王伟,1.10101E+17,初级,,{note}\r\n")
    assert good_size >= 50_000_000
    refused = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert refused.exit_code == 1, refused.output
    assert f"row {n + 2}, 身份证号 (id_number): looks like Excel scientific" in refused.stderr
    assert registered() == 0
    with path.open("r+b") as handle:
        handle.truncate(good_size)  # the school deletes the bad row
    result = run("register", "2024-1", str(path), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert f"{n} candidates registered" in result.stdout
    assert registered() == n


# --- one way to import a file ---------------------------------------------------------------

FACT_HEADER = ["考点代码", "事项", "完成"]


def test_a_facts_file_with_bad_rows_among_good_ones_stores_nothing_and_names_every_problem(
    register_loaded: Path,
) -> None:
    rows = [
        ["P1", "platform_installed", "是"],
        ["P3", "考试平台已安装", ""],
        ["N1", "installed", "也许"],  # not a site, not a fact, not 是/否
        ["P4", "mock_passed", "否"],
        ["P4", "tech_trained", "maybe"],
    ]
    path = write_csv(register_loaded / "facts.csv", FACT_HEADER, rows)
    before = snapshot()
    result = run("mark", "2024-1", "--file", str(path))
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines == [
        "facts.csv: 4 problem(s); nothing was stored",
        "  row 4, 事项 (fact): 'installed' is not one of " + ", ".join(SiteFact),
        "  row 4, 完成 (done): '也许' is not 是 or 否",
        "  row 4, 考点代码 (site_code): 'N1' is not an exam site",
        "  row 6, 完成 (done): 'maybe' is not 是 or 否",
    ]
    assert snapshot() == before
    del rows[2], rows[3]  # ops fix the file: every row goes in
    result = run("mark", "2024-1", "--file", str(write_csv(path, FACT_HEADER, rows)))
    assert result.exit_code == 0, result.output
    assert "facts.csv: 2 changed, 1 unchanged" in result.stdout


def test_the_portal_imports_uploaded_bytes_whole_or_gets_every_problem_by_row_and_field(
    register_loaded: Path,
) -> None:
    from datetime import datetime

    from examflow.importing import ImportRefusedError, import_file
    from models.domain import SHANGHAI
    from models.rooms import ROOMS_IMPORTER

    as_of = datetime(2024, 5, 1, 9, tzinfo=SHANGHAI)
    good = "考点代码,考场,座位数\r\nP1,101,30\r\nP3,201,40\r\nP3,202,40\r\n"
    bad = good + "P9,301,0\r\nP1,101,20\r\n"
    before = snapshot()
    with pytest.raises(ImportRefusedError) as refused:
        import_file(ROOMS_IMPORTER, bad.encode("gb18030"), "rooms.csv", as_of=as_of)
    assert not refused.value.whole
    assert [(p.row, p.field, p.message) for p in refused.value.problems] == [
        (5, "座位数 (seats)", "a whole number > 0"),
        (5, "考点代码 (site_code)", "'P9' is not a site"),
        (6, "考场 (room)", "listed twice for this site"),
    ]
    assert snapshot() == before

    with pytest.raises(ImportRefusedError) as unreadable:
        import_file(ROOMS_IMPORTER, b"\xd0\xcf\x11\xe0legacy", "rooms.xls", as_of=as_of)
    assert unreadable.value.whole and unreadable.value.problems[0].row == 0
    assert "legacy Excel .xls file" in unreadable.value.headline

    imported = import_file(ROOMS_IMPORTER, good.encode(), "rooms.csv", as_of=as_of)
    assert (imported.rows, imported.summary.rooms, imported.summary.sites) == (3, 3, 2)
    stored = {(r["site_code"], r["name"]): r["seats"] for r in snapshot()["room"]}
    assert stored == {("P1", "101"): 30, ("P3", "201"): 40, ("P3", "202"): 40}


def test_an_unknown_sitting_fails_every_command_with_the_same_message_and_exit_code(
    register_loaded: Path,
) -> None:
    scores = write_csv(register_loaded / "s.csv", ["准考证号", "成绩"], [["T1", "80"]])
    attendance = write_csv(register_loaded / "a.csv", ["准考证号", "出勤"], [["T1", "出席"]])
    review = write_csv(register_loaded / "r.csv", ["准考证号"], [["T1"]])
    facts = write_csv(register_loaded / "f.csv", FACT_HEADER, [["P1", "mock_passed", "是"]])
    registration = reg_file(register_loaded, [["P3", "王伟", new_id(), "初级", ""]])
    commands = [
        ["register", "2099-9", str(registration), "--as-of", OPEN],
        ["scores", "import", "2099-9", str(scores)],
        ["review", "file", "2099-9", "P3", str(review)],
        ["attendance", "2099-9", str(attendance)],
        ["mark", "2099-9", "--file", str(facts)],
        ["mark", "2099-9", "P1", "mock_passed"],
        ["fees", "2099-9"],
        ["sites", "agree", "P3", "N1", "2099-9"],
    ]
    before = snapshot()
    for command in commands:
        result = run(*command)
        assert (result.exit_code, result.stdout, result.stderr) == (
            1,
            "",
            "error: unknown sitting '2099-9': load its calendar first (examflow calendar load)\n",
        ), command
    assert snapshot() == before
