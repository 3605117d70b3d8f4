"""Reading the CSV/XLSX files schools upload, and writing the reports sent back to them."""

import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

import adapters.tabular as tabular
from adapters.tabular import TableError, read_table, write_table
from models.resident_id import ResidentIdError, validate_resident_id
from models.table import Column, Table

COLUMNS = (
    Column("school_code", ("学校代码", "school code")),
    Column("name", ("姓名", "name")),
    Column("seats", ("考位数", "seats")),
    Column("note", ("备注说明", "note"), required=False),
)
HEADER = "学校代码,姓名,考位数"


def csv_table(text: str, encoding: str = "utf-8") -> Table:
    return read_table(text.encode(encoding), "upload.csv", COLUMNS)


def xlsx_bytes(*rows: list[object]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def table_error(data: bytes, columns: tuple[Column, ...] = COLUMNS) -> str:
    with pytest.raises(TableError) as info:
        read_table(data, "upload.csv", columns)
    return str(info.value)


# --- encodings and formats ---------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_csv_encodings_are_detected_without_asking(encoding: str) -> None:
    table = csv_table(f"{HEADER}\r\nS01,张三丰,30\r\n", encoding)
    assert table.rows == [(2, {"school_code": "S01", "name": "张三丰", "seats": "30", "note": ""})]


def test_gbk_bytes_are_not_mistaken_for_utf8() -> None:
    data = f"{HEADER}\nS01,欧阳娜娜,5\n".encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the premise: this really is a GBK-only file
    assert read_table(data, "gbk.csv", COLUMNS).rows[0][1]["name"] == "欧阳娜娜"


def test_undecodable_bytes_are_a_table_error_naming_the_file() -> None:
    data = HEADER.encode() + b"\r\nS01,\xff\xfe\xff,3\r\n"
    with pytest.raises(TableError, match=r"cannot read bad\.csv as text"):
        read_table(data, "bad.csv", COLUMNS)


def test_binary_files_are_refused() -> None:
    assert "not a CSV or XLSX" in table_error(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


def test_legacy_xls_is_refused_with_the_way_out() -> None:
    message = table_error(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    assert ".xls" in message
    assert "save it as .xlsx" in message


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    assert "not a readable .xlsx workbook" in table_error(buffer.getvalue())


def test_format_is_decided_by_content_not_by_name() -> None:
    data = xlsx_bytes(["学校代码", "姓名", "考位数"], ["S01", "李四", 3])
    assert read_table(data, "looks-like.csv", COLUMNS).rows[0][1]["name"] == "李四"


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n", b" , , \n"])
def test_an_empty_file_is_a_table_error(data: bytes) -> None:
    assert "empty" in table_error(data)


def test_files_over_64_mib_are_refused_before_parsing() -> None:
    assert "larger than 64 MiB" in table_error(b"x" * (64 * 1024 * 1024 + 1))


def test_more_rows_than_the_limit_is_a_table_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "MAX_ROWS", 3)
    assert len(csv_table(f"{HEADER}\nS1,a,1\nS2,b,2\n").rows) == 2
    with pytest.raises(TableError, match="more than 3 rows"):
        csv_table(f"{HEADER}\nS1,a,1\nS2,b,2\nS3,c,3\n")


# --- CSV dialect ---------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["\t", ";", ","])
def test_the_delimiter_is_sniffed_from_the_header(delimiter: str) -> None:
    text = f"学校代码{delimiter}姓名{delimiter}考位数\nS01{delimiter}王,五{delimiter}3\n"
    if delimiter == ",":
        text = text.replace("王,五", '"王,五"')
    assert csv_table(text).rows[0][1]["name"] == "王,五"


def test_quoted_fields_keep_newlines_and_row_numbers_count_records() -> None:
    table = csv_table(f'{HEADER}\r\nS01,"张\r\n三",3\r\nS02,"He said ""hi""",4\r\n')
    assert table.rows == [
        (2, {"school_code": "S01", "name": "张\r\n三", "seats": "3", "note": ""}),
        (3, {"school_code": "S02", "name": 'He said "hi"', "seats": "4", "note": ""}),
    ]


def test_a_record_the_csv_module_refuses_is_a_table_error_with_its_line() -> None:
    previous = csv.field_size_limit(10)
    try:
        message = table_error(f'{HEADER}\nS01,a,1\nS02,"{"长" * 20}",3\n'.encode())
    finally:
        csv.field_size_limit(previous)
    assert "line 3 is not valid CSV" in message


# --- header matching -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "School Code,NAME,Seats",
        "school_code,name,seats",
        "SCHOOL-CODE , Name ,seats",
        "学校代码,姓名,考位数（个）",
        "学校代码 (必填),姓名（必填）,考位数 ( 个 )",
        "*学校代码,*姓名,考位数",
        "ｓｃｈｏｏｌ ｃｏｄｅ,姓名,考位数",
    ],
)
def test_headers_match_whatever_their_language_case_spacing_or_notes(header: str) -> None:
    assert csv_table(f"{header}\nS01,赵六,3\n").rows[0][1]["school_code"] == "S01"


def test_columns_may_come_in_any_order() -> None:
    row = csv_table("考位数,姓名,学校代码\n3,赵六,S01\n").rows[0][1]
    assert (row["school_code"], row["name"], row["seats"]) == ("S01", "赵六", "3")


def test_missing_required_columns_are_all_named_in_chinese_and_by_key() -> None:
    message = table_error("学校代码,备注说明\nS01,x\n".encode())
    assert "姓名 (name)" in message
    assert "考位数 (seats)" in message
    assert "学校代码 (school_code)" not in message


def test_a_missing_optional_column_reads_as_empty() -> None:
    assert csv_table(f"{HEADER}\nS01,a,1\n").rows[0][1]["note"] == ""


def test_two_headers_for_the_same_column_are_a_table_error() -> None:
    message = table_error("学校代码,姓名,考位数,School Code\nS01,a,1,S02\n".encode())
    assert "学校代码 (school_code)" in message
    assert "A “学校代码”" in message and "D “School Code”" in message


def test_unknown_columns_are_ignored_with_one_warning() -> None:
    table = csv_table(f"{HEADER},联系人,电话\nS01,a,1,张老师,123\n")
    assert table.rows[0][1] == {"school_code": "S01", "name": "a", "seats": "1", "note": ""}
    assert len(table.warnings) == 1
    assert "D “联系人”" in table.warnings[0] and "E “电话”" in table.warnings[0]


def test_a_title_row_above_the_header_is_skipped_with_a_warning() -> None:
    table = csv_table(f"2026年考点信息表,,\n\n{HEADER}\nS01,a,1\n")
    assert table.rows[0][0] == 4
    assert any("above the header (row 3)" in w for w in table.warnings)


def test_a_file_without_the_header_reports_the_missing_columns() -> None:
    assert "missing required column(s)" in table_error(b"S01,a,1\nS02,b,2\n")


def test_columns_sharing_a_label_are_a_programming_error() -> None:
    clash = (Column("a", ("代码",)), Column("b", ("代码",)))
    with pytest.raises(ValueError, match="names both"):
        read_table("代码\n1\n".encode(), "x.csv", clash)


# --- values and row numbers ----------------------------------------------------------------


def test_blank_rows_are_skipped_but_counted() -> None:
    table = csv_table(f"{HEADER}\n\nS01,a,1\n,,\n \t, \u3000,\nS02,b,2\n")
    assert [number for number, _ in table.rows] == [3, 6]


def test_values_are_stripped_of_spaces_but_not_otherwise_normalised() -> None:
    row = csv_table(f"{HEADER}\n\u3000S01 , 张\u3000三 ,\t１２\n").rows[0][1]
    assert row == {"school_code": "S01", "name": "张\u3000三", "seats": "１２", "note": ""}


def test_short_rows_are_padded_and_overflowing_cells_warned_about() -> None:
    table = csv_table(f"{HEADER}\nS01,a\nS02,b,2,extra\n")
    assert table.rows[0][1]["seats"] == ""
    assert table.rows[1][1]["seats"] == "2"
    assert table.warnings == ["cells right of the header's last column were ignored (rows 3)"]


def test_a_large_csv_is_read_whole_with_correct_row_numbers() -> None:
    lines = [HEADER] + [f"S{i},name{i},{i}" for i in range(20_000)]
    table = csv_table("\r\n".join(lines))
    assert len(table.rows) == 20_000
    last = {"school_code": "S19999", "name": "name19999", "seats": "19999", "note": ""}
    assert table.rows[-1] == (20_001, last)


# --- XLSX ------------------------------------------------------------------------------


def test_xlsx_cells_read_the_way_excel_shows_them() -> None:
    data = xlsx_bytes(
        ["学校代码", "姓名", "考位数", "备注说明"],
        [10001, "钱七", 30.0, True],
        [None, None, None, None],
        ["S02", " 孙八 ", 2.5, datetime(2026, 5, 1)],
        ["S03", "周九", 1.10101199003071e17, datetime(2026, 5, 1, 9, 30)],
    )
    rows = read_table(data, "sites.xlsx", COLUMNS).rows
    assert rows == [
        (2, {"school_code": "10001", "name": "钱七", "seats": "30", "note": "TRUE"}),
        (4, {"school_code": "S02", "name": "孙八", "seats": "2.5", "note": "2026-05-01"}),
        (
            5,
            {
                "school_code": "S03",
                "name": "周九",
                "seats": "1.10101E+17",
                "note": "2026-05-01T09:30:00",
            },
        ),
    ]


def rewrite_sheet(data: bytes, old: bytes, new: bytes) -> bytes:
    """The workbook with its first sheet's XML edited, to store what other programs store."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert old in content
                content = content.replace(old, new)
            dst.writestr(item, content)
    return out.getvalue()


def test_whole_numbers_stored_as_decimals_read_without_point_zero() -> None:
    data = xlsx_bytes(["学校代码", "姓名", "考位数"], [20260501, "a", 30])
    data = rewrite_sheet(data, b"<v>20260501</v>", b"<v>20260501.0</v>")
    data = rewrite_sheet(data, b"<v>30</v>", b"<v>3.0E1</v>")
    row = read_table(data, "a.xlsx", COLUMNS).rows[0][1]
    assert (row["school_code"], row["seats"]) == ("20260501", "30")


def test_an_id_stored_as_a_whole_integer_by_another_program_stays_exact() -> None:
    columns = (Column("id_number", ("身份证号",)),)
    data = xlsx_bytes(["身份证号"], [1])
    data = rewrite_sheet(data, b"<v>1</v>", b"<v>110101199003071234</v>")
    assert read_table(data, "a.xlsx", columns).rows[0][1]["id_number"] == "110101199003071234"


def test_a_damaged_worksheet_is_a_table_error() -> None:
    data = xlsx_bytes(["学校代码", "姓名", "考位数"], ["S01", "a", 1])
    data = rewrite_sheet(data, b"</sheetData>", b"<row><c</sheetData>")
    assert "the worksheet is damaged" in table_error(data)


def test_an_id_typed_into_a_number_cell_is_reported_as_scientific_notation() -> None:
    columns = (Column("id_number", ("身份证号",)),)
    data = xlsx_bytes(["身份证号"], [110101199003071234.0])  # a double, as Excel stores it
    value = read_table(data, "a.xlsx", columns).rows[0][1]["id_number"]
    assert value == "1.10101E+17"
    with pytest.raises(ResidentIdError, match="scientific notation"):
        validate_resident_id(value, date(2026, 5, 1))


def test_xlsx_row_numbers_follow_the_sheet_even_when_data_starts_lower() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet["B3"], sheet["C3"], sheet["D3"] = "学校代码", "姓名", "考位数"
    sheet["B6"], sheet["C6"], sheet["D6"] = "S01", "吴十", 4
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read_table(buffer.getvalue(), "a.xlsx", COLUMNS)
    assert table.rows == [(6, {"school_code": "S01", "name": "吴十", "seats": "4", "note": ""})]
    assert not any("above the header" in w for w in table.warnings)  # rows 1-2 are empty


def test_only_the_first_worksheet_is_read_and_others_with_data_are_mentioned() -> None:
    workbook = Workbook()
    workbook.active.append(["学校代码", "姓名", "考位数"])
    workbook.active.append(["S01", "a", 1])
    workbook.create_sheet("说明")["C4"] = "填表说明"
    workbook.create_sheet("Sheet3")
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read_table(buffer.getvalue(), "a.xlsx", COLUMNS)
    assert len(table.rows) == 1
    assert table.warnings == ["only the first worksheet, “Sheet”, was read; not “说明”"]


def test_formulas_without_a_saved_value_read_as_empty_with_a_warning() -> None:
    data = xlsx_bytes(["学校代码", "姓名", "考位数"], ["S01", "a", "=1+2"])
    table = read_table(data, "a.xlsx", COLUMNS)
    assert table.rows[0][1]["seats"] == ""
    assert len(table.warnings) == 1 and "(C2)" in table.warnings[0]


# --- writing reports -------------------------------------------------------------------


def test_csv_reports_are_utf8_with_bom_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    write_table(path, ["学校代码", "姓名", "考位数"], [["S01", "郑十一", 3], ["S02", None, True]])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf\xe5\xad\xa6")  # BOM, then 学
    # read back by the csv module, not by read_table: the writer is what is under test
    with path.open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["学校代码", "姓名", "考位数"],
            ["S01", "郑十一", "3"],
            ["S02", "", "TRUE"],
        ]
    assert read_table(path.read_bytes(), path.name, COLUMNS).rows[1] == (
        3,
        {"school_code": "S02", "name": "", "seats": "TRUE", "note": ""},
    )  # and examflow reads its own report


def test_csv_reports_keep_formula_like_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "errors.csv"
    write_table(path, ["a", "b", "c"], [['=HYPERLINK("x")', "+86 138", -5]])
    assert path.read_text("utf-8-sig").splitlines()[1] == '"\'=HYPERLINK(""x"")",\'+86 138,-5'


def test_xlsx_reports_read_back_and_keep_formula_like_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "errors.XLSX"
    write_table(path, ["学校代码", "姓名", "考位数"], [["S01", "=1+2", 3], ["S02", "a\x01b", None]])
    sheet = load_workbook(path).active
    assert [[c.value for c in row] for row in sheet.iter_rows(min_row=2)] == [
        ["S01", "=1+2", 3],
        ["S02", "ab", None],
    ]
    assert sheet["B2"].data_type == "s"
    assert read_table(path.read_bytes(), path.name, COLUMNS).rows[0][1]["name"] == "=1+2"
