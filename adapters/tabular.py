"""Read the CSV and XLSX files that schools and ops upload; write reports back to them.

The files come from Excel or WPS on Chinese Windows: a CSV may be GBK, headers are Chinese or
English with notes such as 考位数（个）, and numbers have been through Excel's formatting.
``read_table`` absorbs all of that and raises TableError only for whole-file problems; judging
the values row by row is the caller's job.
"""

import codecs
import csv
import gc
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.utils import get_column_letter

from models.table import Column, Table

MAX_BYTES = 64 * 1024 * 1024
MAX_ROWS = 1_000_000
HEADER_SEARCH_ROWS = 10  # how far down a title block may push the header row
_LETTERED_COLUMNS = 18278  # A … ZZZ: openpyxl has no letters for columns beyond
_SHOWN_CHARS = 60  # of one header cell quoted in a message
_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"
_DELIMITERS = ",\t;"
_SNIFF_CHARS = 64 * 1024
_MAX_FORMULA_SCAN = 256 * 1024 * 1024  # uncompressed sheet XML
_TRAILING_NOTES_RE = re.compile(r"(?:\([^()]*\)\s*)+$")
_HEADER_NOISE_RE = re.compile(r"[\s_\-*]+")  # '*' marks required columns in many templates
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A formula cell (<c><f>…</f></c>) with no cached <v>: data_only reads it as empty.
_FORMULA_WITHOUT_VALUE_RE = re.compile(
    rb"<(?:\w+:)?c\b[^>]*?\br=\"([A-Z]+[0-9]+)\"[^>]*>\s*"
    rb"<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*"
    rb"(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*"
    rb"</(?:\w+:)?c>"
)


class TableError(ValueError):
    """The file as a whole cannot be read as the expected table."""


def read_table(data: bytes, filename: str, columns: Sequence[Column]) -> Table:
    """Read an uploaded CSV or XLSX file (told apart by content, not by name)."""
    if len(data) > MAX_BYTES:
        raise TableError("file is larger than 64 MiB")
    if data.startswith(_XLS_MAGIC):
        raise TableError(
            f"{filename} is a legacy Excel .xls file; "
            "save it as .xlsx (Excel Workbook) or CSV UTF-8 and upload it again"
        )
    warnings: list[str] = []
    if data.startswith(_XLSX_MAGIC):
        lines = _xlsx_rows(data, filename, warnings)
    else:
        lines = _csv_rows(_decode(data, filename))
    numbered = enumerate(lines, start=1)
    table = _build_table(islice(numbered, MAX_ROWS), columns, warnings)
    if next(numbered, None) is not None:
        raise TableError(f"the file has more than {MAX_ROWS:,} rows")
    return table


# --- CSV --------------------------------------------------------------------------------


def _decode(data: bytes, filename: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)  # Excel's "Unicode Text" export
    else:
        # utf-8-sig also reads BOM-less UTF-8, so it stands for both UTF-8 attempts.
        # GB18030 is a superset of GBK/GB2312, what Excel on Chinese Windows writes.
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # text files have no NULs; binary ones nearly always do
            raise TableError(f"{filename} is not a CSV or XLSX file (it holds binary data)")
        return text
    raise TableError(
        f"cannot read {filename} as text: it is neither UTF-8 nor GBK/GB18030; "
        "save it as CSV UTF-8 or .xlsx and upload it again"
    )


def _sniff_delimiter(text: str) -> str:
    """The delimiter of the first line that has any: the header (or a title row above it)."""
    for line in text[:_SNIFF_CHARS].splitlines()[:HEADER_SEARCH_ROWS]:
        counts = [line.count(d) for d in _DELIMITERS]
        if any(counts):
            return _DELIMITERS[counts.index(max(counts))]  # ties go to the comma
    return ","


def _csv_rows(text: str) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        yield from reader
    except csv.Error as error:
        raise TableError(f"line {reader.line_num} is not valid CSV: {error}") from None


# --- XLSX -------------------------------------------------------------------------------


def _xlsx_rows(data: bytes, filename: str, warnings: list[str]) -> Iterator[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises a zoo of types on damaged or foreign zips
        raise TableError(f"{filename} is not a readable .xlsx workbook ({error})") from None
    try:
        if not workbook.worksheets:
            raise TableError("the workbook has no worksheet")
        sheet, *others = workbook.worksheets
        try:
            _warn_other_sheets(sheet, others, warnings)
            _warn_formulas_without_values(data, sheet, warnings)
            # Programs write wrong <dimension>s; without them rows come back as stored.
            sheet.reset_dimensions()
            for values in sheet.iter_rows(min_row=1, min_col=1, values_only=True):
                yield [_cell_text(v) for v in values]
        except Exception as error:  # damaged XML surfaces only while streaming the rows
            raise TableError(f"the worksheet is damaged ({error})") from None
    finally:
        workbook.close()


def _warn_other_sheets(sheet: Any, others: list[Any], warnings: list[str]) -> None:
    # Sheets whose recorded size is beyond A1 probably hold data that nobody will read.
    used = [s.title for s in others if (s.max_row or 0) > 1 or (s.max_column or 0) > 1]
    if used:
        names = ", ".join(f"“{t}”" for t in used)
        warnings.append(f"only the first worksheet, “{sheet.title}”, was read; not {names}")


def _warn_formulas_without_values(data: bytes, sheet: Any, warnings: list[str]) -> None:
    """Formulas saved by a program that never calculated them have no value to read."""
    path = getattr(sheet, "_worksheet_path", None)
    if not isinstance(path, str):
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            info = archive.getinfo(path.lstrip("/"))
        except KeyError:
            return
        if info.file_size > _MAX_FORMULA_SCAN:  # zipfile never inflates past this size
            return
        xml = archive.read(info)
    if b"<f" not in xml and b":f" not in xml:  # no formulas at all: skip the slow scan
        return
    cells = [m.decode() for m in _FORMULA_WITHOUT_VALUE_RE.findall(xml)]
    if cells:
        shown = ", ".join(cells[:5]) + (", …" if len(cells) > 5 else "")
        warnings.append(
            f"{len(cells)} formula cell(s) have no calculated value and were read as empty "
            f"({shown}); open the file in Excel or WPS, save it and upload it again"
        )


def _cell_text(value: object) -> str:
    """A cell value as text, the way Excel shows it in a General-format cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _float_text(value: float) -> str:
    if value.is_integer():
        if abs(value) < 1e15:  # exact in a double: 10001.0 was typed as 10001
            return str(int(value))
        # Excel shows big numbers, such as an ID typed into a number cell, as 1.10101E+17;
        # keep that so that validators can tell the user what happened.
        return format(value, "G")
    return format(value, ".15G")  # Excel keeps 15 significant digits


# --- Header and rows ---------------------------------------------------------------------


def _normalise_header(text: str) -> str:
    """'School Code', 'school_code', '*学校代码', '考位数（个）' → 'schoolcode', …, '考位数'."""
    text = unicodedata.normalize("NFKC", text).strip()  # full-width （） become ()
    text = _TRAILING_NOTES_RE.sub("", text)
    return _HEADER_NOISE_RE.sub("", text).casefold()


def _label_map(columns: Sequence[Column]) -> dict[str, str]:
    """Normalised label → column key; the key itself is a label too."""
    labels: dict[str, str] = {}
    for column in columns:
        for label in (column.key, *column.labels):
            norm = _normalise_header(label)
            if labels.setdefault(norm, column.key) != column.key:
                raise ValueError(f"label {label!r} names both {labels[norm]} and {column.key}")
    return labels


def _display_name(column: Column) -> str:
    """'学校代码 (school_code)': the Chinese label the school sees, and the key ops see."""
    chinese = [label for label in column.labels if any("\u4e00" <= ch <= "\u9fff" for ch in label)]
    return f"{(chinese or column.labels or (column.key,))[0]} ({column.key})"


def _header_positions(cells: list[str], labels: dict[str, str]) -> dict[str, list[int]]:
    """Column key → the indexes of the header cells that name it."""
    positions: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        key = labels.get(_normalise_header(cell))
        if key is not None:
            positions.setdefault(key, []).append(index)
    return positions


class _Header(NamedTuple):
    number: int
    cells: list[str]
    positions: dict[str, list[int]]  # column key → indexes of the cells that name it
    rows_above: int  # non-blank rows above it: a title block


def _find_header(
    numbered: Iterator[tuple[int, list[str]]], labels: dict[str, str], required: list[Column]
) -> _Header | None:
    """The first non-blank row that names every required column, else the closest one.

    Looks a few rows down because schools often put a title such as "2026年考点信息表" above
    the header.
    """
    best: _Header | None = None
    best_found = -1
    seen = 0
    for number, cells in numbered:
        if not any(cell.strip() for cell in cells):
            continue
        header = _Header(number, cells, _header_positions(cells, labels), rows_above=seen)
        found = sum(column.key in header.positions for column in required)
        if found == len(required):
            return header
        if found > best_found:
            best, best_found = header, found
        seen += 1
        if seen == HEADER_SEARCH_ROWS:
            break
    return best


def _build_table(
    numbered: Iterator[tuple[int, list[str]]], columns: Sequence[Column], warnings: list[str]
) -> Table:
    required = [column for column in columns if column.required]
    header = _find_header(numbered, _label_map(columns), required)
    if header is None:
        raise TableError("the file is empty (no header row)")
    _check_header(header, columns, warnings)
    if header.rows_above:
        warnings.append(
            f"{header.rows_above} row(s) above the header (row {header.number}) were ignored"
        )
    rows = _read_rows(numbered, header, columns, warnings)
    return Table(rows, warnings)


def _column_ref(index: int) -> str:
    """The column as the spreadsheet names it ('B' for index 1); CSVs may run past ZZZ."""
    return get_column_letter(index + 1) if index < _LETTERED_COLUMNS else f"#{index + 1}"


def _listed(items: list[str], limit: int = 10) -> str:
    """The first ``limit`` items, comma-separated: a binary file's 'header' can be megabytes."""
    more = f", … ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _check_header(header: _Header, columns: Sequence[Column], warnings: list[str]) -> None:
    cells, positions = header.cells, header.positions
    by_key = {column.key: column for column in columns}
    missing = [_display_name(c) for c in columns if c.required and c.key not in positions]
    if missing:
        found = " | ".join(cell.strip()[:_SHOWN_CHARS] for cell in cells[:20] if cell.strip())
        raise TableError(
            f"missing required column(s) {', '.join(missing)} "
            f"(header row {header.number} reads: {found}{' | …' if len(cells) > 20 else ''})"
        )
    duplicated = [
        f"{_display_name(by_key[key])} is in columns "
        + " and ".join(f"{_column_ref(i)} “{cells[i].strip()}”" for i in indexes)
        for key, indexes in positions.items()
        if len(indexes) > 1
    ]
    if duplicated:
        raise TableError(f"{'; '.join(duplicated)}; keep only one of each")
    used = {indexes[0] for indexes in positions.values()}
    extras = [
        f"{_column_ref(i)} “{cell.strip()[:_SHOWN_CHARS]}”"
        for i, cell in enumerate(cells)
        if cell.strip() and i not in used
    ]
    if extras:
        warnings.append(f"ignored column(s) not used here: {_listed(extras)}")


def _read_rows(
    numbered: Iterator[tuple[int, list[str]]],
    header: _Header,
    columns: Sequence[Column],
    warnings: list[str],
) -> list[tuple[int, dict[str, str]]]:
    """The non-blank rows below the header, as (row number, values by key)."""
    if not header.positions:  # only optional columns, none of them present: nothing to read
        return []
    # (key, cell index) pairs: a dict comprehension over them is the cheapest row builder.
    pairs = tuple((key, indexes[0]) for key, indexes in header.positions.items())
    width, header_width = max(index for _, index in pairs) + 1, len(header.cells)
    absent = {c.key: "" for c in columns if c.key not in header.positions}
    rows: list[tuple[int, dict[str, str]]] = []
    append, strip = rows.append, str.strip  # str.strip knows U+3000
    overflowing: list[int] = []
    with _gc_paused():
        for number, cells in numbered:
            if len(cells) != header_width:
                cells = _fit_row(cells, width, header_width, number, overflowing)
            row = {key: strip(cells[index]) for key, index in pairs}
            if any(row.values()):  # else a blank row, or one of only spaces
                if absent:
                    row.update(absent)
                append((number, row))
    if overflowing:
        shown = ", ".join(map(str, overflowing[:5])) + (", …" if len(overflowing) > 5 else "")
        warnings.append(f"cells right of the header's last column were ignored (rows {shown})")
    return rows


def _fit_row(
    cells: list[str], width: int, header_width: int, number: int, overflowing: list[int]
) -> list[str]:
    """Pad a short row (CSV writers drop trailing empty cells); note a long one's overflow."""
    if len(cells) < width:
        return cells + [""] * (width - len(cells))
    if len(cells) > header_width and any(cell.strip() for cell in cells[header_width:]):
        overflowing.append(number)
    return cells


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building rows.

    Each kept (number, dict) tuple stays tracked, so 10^5 of them set off full collections
    that walk the whole heap: a third of the reading time. Rows make no cycles to collect.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- Writing ---------------------------------------------------------------------------


def write_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write ``.xlsx`` if the path says so, else CSV in UTF-8 with BOM (Excel in China needs
    the BOM to see UTF-8). Prefer .xlsx for ID numbers: Excel mangles long numbers in CSVs.
    """
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(path, header, rows)
    else:
        _write_csv(path, header, rows)


def _write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    path.write_bytes(xlsx_bytes(header, rows))


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The ``.xlsx`` file write_table writes, as bytes (for a download without a file)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([_xlsx_value(sheet, value) for value in header])
    for row in rows:
        sheet.append([_xlsx_value(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(sheet: Any, value: object) -> object:
    if isinstance(value, str):
        # Reports echo what users typed: control characters would make openpyxl refuse the
        # value, and a leading '=' must stay text, not become a formula.
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        if not text.startswith("="):
            return text
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        return cell
    if value is None or isinstance(value, int | float | Decimal | date | time):
        return value
    return str(value)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([_csv_value(value) for value in header])
        writer.writerows([_csv_value(value) for value in row] for row in rows)


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    text = str(value)
    # Excel runs a cell starting with = + - @ as a formula: keep user text as text.
    if text.startswith(_CSV_FORMULA_STARTS) and not _NUMBER_RE.fullmatch(text):
        return "'" + text
    return text
