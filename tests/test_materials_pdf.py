"""The site materials PDFs: extractable Chinese text, masked IDs only, expected page counts."""

import io
import random
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from examflow.synthetic import make_id_number
from models.materials_data import EXAM_RULES, RoomSlot, SiteMaterials, TicketLine
from models.resident_id import mask_resident_id
from notifications.documents import fonts

needs_font = pytest.mark.usefixtures("needs_cjk_font")  # skips, or fails in CI (conftest)

FULL_ID = re.compile(r"\d{17}[\dX]")
NAMES = ["张伟", "李娜", "王芳", "欧阳明", "刘洋", "陈静", "赵磊", "孙丽"]
SLOTS = {
    "中级": (datetime(2024, 5, 25, 8, 30), datetime(2024, 5, 25, 11, 45)),
    "初级": (datetime(2024, 5, 25, 14, 0), datetime(2024, 5, 25, 17, 45)),
}
# (room, level, candidates): 2 rooms × 2 levels, 8 candidates
LAYOUT = [
    ("机房101", "中级", 3),
    ("机房102", "中级", 2),
    ("机房101", "初级", 2),
    ("机房102", "初级", 1),
]
FULL_IDS: list[str] = []  # what the arrangement had before masking: must never be printed


def make_room(room: str, level: str, count: int, first_ticket: int, rng: random.Random) -> RoomSlot:
    starts, ends = SLOTS[level]
    lines = []
    for seat in range(1, count + 1):
        full_id = make_id_number(rng, "11")
        FULL_IDS.append(full_id)
        lines.append(
            TicketLine(
                ticket_number=f"T{first_ticket + seat - 1:09d}",
                name=NAMES[(first_ticket + seat) % len(NAMES)],
                masked_id=mask_resident_id(full_id),
                level=level,
                school_name="一号职业技术学院",
                room=room,
                seat=seat,
                starts=starts,
                ends=ends,
            )
        )
    return RoomSlot(room=room, level=level, starts=starts, ends=ends, seats=30, candidates=lines)


def make_site(layout: list[tuple[str, str, int]]) -> SiteMaterials:
    rng = random.Random(11)
    rooms, ticket = [], 202405001
    for room, level, count in layout:
        rooms.append(make_room(room, level, count, ticket, rng))
        ticket += count
    return SiteMaterials(
        sitting_code="2024-1",
        sitting_name="2024年第一次考试",
        certificate="Web前端开发职业技能等级证书",
        exam_day=date(2024, 5, 25),
        site_code="P1",
        site_name="五号考点学院",
        rules=EXAM_RULES,
        rooms=rooms,
    )


@pytest.fixture(scope="module")
def site() -> SiteMaterials:
    return make_site(LAYOUT)


@pytest.fixture(scope="module")
def pdfs(site: SiteMaterials, needs_cjk_font: None) -> dict[str, bytes]:
    from notifications.documents.materials import MATERIAL_KINDS, RENDERERS

    return {kind: RENDERERS[kind](site) for kind in MATERIAL_KINDS}


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@needs_font
@pytest.mark.parametrize(
    ("kind", "pages"), [("tickets", 4), ("labels", 4), ("door_signs", 4), ("sign_in_sheets", 4)]
)
def test_page_counts(pdfs: dict[str, bytes], kind: str, pages: int) -> None:
    # tickets: two per sheet; labels and sheets: each room and slot on its own page(s)
    assert len(pages_text(pdfs[kind])) == pages


@needs_font
@pytest.mark.parametrize("kind", ["tickets", "labels", "sign_in_sheets"])
def test_every_candidate_is_extractable_text(
    pdfs: dict[str, bytes], site: SiteMaterials, kind: str
) -> None:
    text = "\n".join(pages_text(pdfs[kind]))
    for line in site.candidates:
        assert line.name in text
        assert line.ticket_number in text
        if kind != "labels":
            assert line.masked_id in text


@needs_font
@pytest.mark.parametrize("kind", ["tickets", "labels", "door_signs", "sign_in_sheets"])
def test_no_full_id_number_anywhere(pdfs: dict[str, bytes], kind: str) -> None:
    text = "\n".join(pages_text(pdfs[kind]))
    assert not FULL_ID.search(text)
    assert not any(full_id in text for full_id in FULL_IDS)


@needs_font
def test_ticket_shows_candidate_slot_and_rules(pdfs: dict[str, bytes]) -> None:
    first = pages_text(pdfs["tickets"])[0]
    for expected in [
        "准考证",
        "Web前端开发职业技能等级证书",
        "2024年第一次考试",
        "五号考点学院（P1）",
        "机房101",
        "中级",
        "2024年5月25日",
        "08:30–11:45",
        "考生须知",
    ]:
        assert expected in first
    assert EXAM_RULES[0] in first


@needs_font
def test_door_sign_shows_ticket_range_and_count(
    pdfs: dict[str, bytes], site: SiteMaterials
) -> None:
    for room, text in zip(site.rooms, pages_text(pdfs["door_signs"]), strict=True):
        assert room.ticket_range in text
        assert f"{len(room.candidates)} 人" in text
        assert room.room in text and room.level in text


@needs_font
def test_sign_in_sheet_repeats_its_header_on_every_page() -> None:
    from notifications.documents.materials import sign_in_sheets_pdf

    big = make_site([("报告厅", "初级", 65)])
    texts = pages_text(sign_in_sheets_pdf(big))
    assert len(texts) == 3  # 30 rows a page
    for number, text in enumerate(texts, start=1):
        assert "座位号 准考证号 姓名 身份证号 考生签名" in text
        assert "考场：报告厅" in text
        assert f"第 {number} 页 / 共 3 页" in text
    lines = big.rooms[0].candidates
    assert lines[29].ticket_number in texts[0] and lines[29].ticket_number not in texts[1]
    assert lines[30].ticket_number in texts[1]


@needs_font
def test_same_data_gives_same_bytes(site: SiteMaterials, pdfs: dict[str, bytes]) -> None:
    from notifications.documents.materials import RENDERERS

    for kind, pdf in pdfs.items():
        assert RENDERERS[kind](site) == pdf


@needs_font
def test_font_is_embedded_not_a_cid_standard_font(pdfs: dict[str, bytes]) -> None:
    for pdf in pdfs.values():
        assert b"/FontFile2" in pdf
        assert b"STSong" not in pdf


@needs_font
def test_write_site_materials(site: SiteMaterials, tmp_path: Path) -> None:
    from notifications.documents.materials import MATERIAL_KINDS, write_site_materials

    written = write_site_materials(site, tmp_path / "out")
    assert list(written) == list(MATERIAL_KINDS)
    for kind, path in written.items():
        assert path == tmp_path / "out" / f"2024-1-P1-{kind}.pdf"
        assert path.read_bytes().startswith(b"%PDF-")


@needs_font
def test_wrap_keeps_times_whole_and_punctuation_off_line_starts() -> None:
    from notifications.documents.layout import Pen

    class _Canvas:  # wrap only measures text
        pass

    pen = Pen(_Canvas())
    for width in range(60, 400, 7):
        lines = pen.wrap(EXAM_RULES[1], 9, width)
        assert "".join(lines).replace(" ", "") == EXAM_RULES[1].replace(" ", "")
        assert not any(line[0] in "，。；：）" for line in lines)
        assert all(
            re.fullmatch(r"\d{1,2}:\d\d–\d\d:\d\d", t)
            for t in re.findall(r"\d{1,2}:[\d:–]+", "\n".join(lines))
        )


def test_missing_override_font_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(fonts.FONT_ENV, str(tmp_path / "nope.ttf"))
    with pytest.raises(fonts.CJKFontMissing, match=fonts.FONT_ENV):
        fonts.find_cjk_font()


def test_no_font_names_the_apt_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    monkeypatch.setattr(fonts, "DEBIAN_FONTS", (tmp_path / "absent.ttc",))
    with pytest.raises(fonts.CJKFontMissing, match="apt-get install -y fonts-wqy-microhei"):
        fonts.find_cjk_font()


def test_override_font_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    font = tmp_path / "custom.ttf"
    font.write_bytes(b"not checked here")
    monkeypatch.setenv(fonts.FONT_ENV, str(font))
    assert fonts.find_cjk_font() == font


@needs_font
def test_a_site_without_candidates_gets_one_notice_page() -> None:
    from notifications.documents.materials import RENDERERS

    empty = make_site([])
    for render in RENDERERS.values():
        texts = pages_text(render(empty))
        assert len(texts) == 1 and "无考生" in texts[0]


# QR codes: segno's own matrix, drawn as merged rectangles, read back by an independent decoder


def _segno_matrix(value: str) -> tuple[bytes, ...]:
    import segno

    return tuple(bytes(row) for row in segno.make_qr(value, error="m", boost_error=False).matrix)


def test_qr_matrix_is_segnos_own_for_the_same_payload() -> None:
    """The faster mask choice picks what segno's evaluation picks, module for module."""
    from notifications.documents.qr import qr_matrix

    rng = random.Random(5)
    payloads = [f"2024{rng.randrange(10, 99)}P{rng.randrange(1, 999)}{i:04d}" for i in range(150)]
    payloads += ["".join(chr(rng.randrange(32, 127)) for _ in range(n)) for n in range(1, 200, 3)]
    payloads += [f"https://verify.example/urn:uuid:{rng.getrandbits(128):032x}" for _ in "ab"]
    payloads += ["王小明 准考证" * n for n in (1, 7, 20)]
    for value in payloads:
        assert qr_matrix(value) == _segno_matrix(value), value


def test_qr_rectangles_cover_exactly_the_dark_modules() -> None:
    from notifications.documents.qr import qr_matrix, rectangles

    for value in ("202411P30001", "https://verify.example/" + "x" * 120):
        matrix = qr_matrix(value)
        painted = [[0] * len(matrix) for _ in matrix]
        rects = rectangles(matrix)
        for col, row, width, height in rects:
            for r in range(row, row + height):
                for c in range(col, col + width):
                    painted[r][c] += 1  # 2 would be an overlap
        assert [bytes(row) for row in painted] == list(matrix)
        dark_runs = sum(len(re.findall(rb"\x01+", row)) for row in matrix)
        assert len(rects) < dark_runs  # runs merged across rows: fewer than one per run


@needs_font
def test_a_rendered_tickets_qr_codes_decode_to_their_ticket_numbers(
    site: SiteMaterials, pdfs: dict[str, bytes], tmp_path: Path
) -> None:
    """Rasterised by poppler and read by zbar: neither shares code with the encoder."""
    import shutil
    import subprocess

    from tests.conftest import missing_system_tool

    try:
        from pyzbar.pyzbar import decode
    except ImportError as exc:  # pyzbar is a dev dependency; zbar is libzbar0 (Debian)
        missing_system_tool(f"no QR decoder: {exc} (apt-get install -y libzbar0)")
    if not shutil.which("pdftoppm"):
        missing_system_tool("no pdftoppm (apt-get install -y poppler-utils)")
    from PIL import Image

    (tmp_path / "tickets.pdf").write_bytes(pdfs["tickets"])
    subprocess.run(
        ["pdftoppm", "-r", "110", "-png", str(tmp_path / "tickets.pdf"), str(tmp_path / "page")],
        check=True,
    )
    found = []
    for png in sorted(tmp_path.glob("page-*.png")):
        found += sorted(code.data.decode() for code in decode(Image.open(png)))
    wanted = [[c.ticket_number for c in site.candidates][i : i + 2] for i in range(0, 8, 2)]
    assert found == [number for pair in wanted for number in sorted(pair)]


@needs_font
def test_another_process_renders_the_same_bytes(pdfs: dict[str, bytes], tmp_path: Path) -> None:
    """Bytes depend on the data only: not on the process, its font registration or its QR
    caches (a Dask worker renders what the portal would have)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.test_materials_pdf import LAYOUT, make_site\n"
        "from notifications.documents.materials import MATERIAL_KINDS, RENDERERS\n"
        "site = make_site(LAYOUT)\n"
        "for kind in MATERIAL_KINDS:\n"
        "    Path(sys.argv[1], kind).write_bytes(RENDERERS[kind](site))\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=root, check=True)
    for kind, pdf in pdfs.items():
        assert (tmp_path / kind).read_bytes() == pdf, kind
