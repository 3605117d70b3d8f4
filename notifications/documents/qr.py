"""QR codes for the materials: segno's encoder, a faster mask choice, drawn as a few rectangles.

segno (ISO/IEC 18004) builds the symbol; its mask evaluation (8 masks scored module by
module in Python) is 85 % of its time, so `qr_matrix` scores the masks on whole rows instead
(XOR of row integers, run and pattern search in C) with exactly segno's rules, and lets segno
add the format and version information. The result is the same matrix segno makes for the
same payload (tests/test_materials_pdf.py compares them over many payloads).

`qr_ops` turns a matrix into PDF path operators: dark runs of a row merged with identical
runs of the rows below into rectangles, in module units under one transform, filled at once
(no seams between rows, a fraction of the rectangles, integer coordinates).
"""

import functools
import re
from typing import Any

from reportlab.lib.rl_accel import fp_str  # type: ignore[import-untyped]
from segno import consts
from segno import encoder as _encoder

seg: Any = _encoder  # segno's encoder steps are untyped: called as segno's own encode() calls them

_CAPACITY: Any = consts.SYMBOL_CAPACITY
ERROR = consts.ERROR_LEVEL_M  # as the tickets always had: 15 % of the symbol may be lost
QUIET = 4  # modules of light margin on each side (ISO/IEC 18004: at least 4)

_TO_BITS = bytes.maketrans(b"01", b"\x00\x01")
_RUN = re.compile(rb"\x00{5,}|\x01{5,}")
_N3 = bytes((1, 0, 1, 1, 1, 0, 1))

Matrix = tuple[bytes, ...]


@functools.cache
def _masks(version: int) -> tuple[int, ...]:
    """Per mask, its XOR pattern over the whole symbol as one int (row-major, the top-left
    module the highest bit): the mask's dark modules within the encoding region, as segno
    finds that region."""
    width = seg.calc_matrix_size(version)
    function = seg.make_matrix(width, width)
    seg.add_finder_patterns(function, width, width)
    seg.add_alignment_patterns(function, width, width)
    function[-8][8] = 0x1
    masks = []
    for pattern in seg.get_data_mask_functions(False):
        bits = 0
        for i in range(width):
            for j in range(width):
                if function[i][j] > 0x1 and pattern(i, j):
                    bits |= 1 << ((width - 1 - i) * width + (width - 1 - j))
        masks.append(bits)
    return tuple(masks)


@functools.cache
def _n2_masks(width: int) -> tuple[int, int]:
    """(modules with a right neighbour in their row, modules with a row below them)."""
    same_row = 0
    for i in range(width):
        for j in range(width - 1):
            same_row |= 1 << ((width - 1 - i) * width + (width - 1 - j))
    everything = (1 << (width * width)) - 1
    return same_row, everything ^ ((1 << width) - 1)


def _n3(joined: bytes, size: int) -> int:
    """segno's N3 rule (1:1:3:1:1 with 4 light modules on one side), verbatim, over lines of
    `size` modules joined by a separator the pattern cannot cross."""
    count = 0
    stride = size + 1
    at = joined.find(_N3)
    while at != -1:
        start = at - at % stride
        seq, idx = joined[start : start + size], at % stride
        offset = idx + 7
        if (
            idx in (0, size - 7)
            or not any(seq[max(idx - 4, 0) : min(idx, size)])
            or not any(seq[max(offset, 0) : min(offset + 4, size)])
        ):
            count += 40
        else:
            offset = idx + 4
        at = joined.find(_N3, start + offset)
    return count


def _penalty(symbol: int, width: int) -> int:
    """segno's evaluate_mask (N1 + N2 + N3 + N4) on the symbol as one int."""
    flat = format(symbol, f"0{width * width}b").encode().translate(_TO_BITS)
    lines = [flat[i : i + width] for i in range(0, width * width, width)]
    columns = [flat[j::width] for j in range(width)]
    joined = b"\x02".join((*lines, *columns))
    runs = _RUN.findall(joined)
    n1 = sum(map(len, runs)) - 2 * len(runs)
    same_row, has_below = _n2_masks(width)
    # a 2×2 block of one colour, counted at its top-left module p: p like its right
    # neighbour (p-1), the module below (p-width) like its right neighbour, p like p-width
    horizontal = ~(symbol ^ (symbol << 1)) & same_row
    vertical = ~(symbol ^ (symbol << width))
    n2 = 3 * (horizontal & (horizontal << width) & vertical & has_below).bit_count()
    n3 = _n3(joined, width)
    n4 = 10 * int(abs(float(symbol.bit_count()) / width**2 * 100 - 50) / 5)
    return n1 + n2 + n3 + n4


def qr_matrix(value: str) -> Matrix:
    """The QR code of `value` (error level M, smallest version, segno's mode and mask choice):
    one bytes row per module row, 1 = dark."""
    segments = seg.prepare_data(value, None, None)
    version = seg.find_version(segments, ERROR, eci=False, micro=False)
    buff = seg.Buffer()
    ver_range = seg.version_range(version)
    for segment in segments:
        seg.write_segment(buff, segment, None, ver_range, False)
    capacity = _CAPACITY[version][ERROR]
    seg.write_terminator(buff, capacity, None, len(buff))
    seg.write_padding_bits(buff, version, len(buff))
    seg.write_pad_codewords(buff, version, capacity, len(buff))
    buff = seg.make_final_message(version, ERROR, buff)
    width = seg.calc_matrix_size(version)
    matrix = seg.make_matrix(width, width)
    seg.add_finder_patterns(matrix, width, width)
    seg.add_alignment_patterns(matrix, width, width)
    seg.add_codewords(matrix, buff, version)
    base = int(b"".join(bytes(row) for row in matrix).translate(_ASCII), 2)
    masks = _masks(version)
    scores = [_penalty(base ^ mask, width) for mask in masks]
    best_mask = scores.index(min(scores))  # the first of equals, as segno
    flat = format(base ^ masks[best_mask], f"0{width * width}b").encode().translate(_TO_BITS)
    masked = tuple(bytearray(flat[i : i + width]) for i in range(0, width * width, width))
    seg.add_format_info(masked, version, ERROR, best_mask)
    seg.add_version_info(masked, version)
    return tuple(bytes(row) for row in masked)


_ASCII = bytes.maketrans(b"\x00\x01", b"01")


def rectangles(matrix: Matrix) -> list[tuple[int, int, int, int]]:
    """(column, row, width, height) rectangles covering the dark modules exactly: each row's
    dark runs, a run extended downwards while the next row has the very same run."""
    runs_by_row = [
        [(m.start(), m.end() - m.start()) for m in re.finditer(rb"\x01+", row)] for row in matrix
    ]
    open_: dict[tuple[int, int], list[int]] = {}  # (col, width) -> [row, height]
    done: list[tuple[int, int, int, int]] = []
    for row, runs in enumerate(runs_by_row):
        current = set(runs)
        for key in list(open_):
            if key not in current:
                top, height = open_.pop(key)
                done.append((key[0], top, key[1], height))
        for key in runs:
            if key in open_:
                open_[key][1] += 1
            else:
                open_[key] = [row, 1]
    done += [(key[0], top, key[1], height) for key, (top, height) in open_.items()]
    return sorted(done, key=lambda r: (r[1], r[0]))


def qr_ops(value: str, x: float, y: float, size: float) -> str:
    """PDF content operators drawing value's QR code in the size×size square at (x, y), quiet
    zone included, black, in its own graphics state (q … Q)."""
    matrix = qr_matrix(value)
    count = len(matrix)
    module = size / (count + 2 * QUIET)
    # module units, y upwards: module row r spans count-1-r .. count-r
    origin_x, origin_y = x + QUIET * module, y + QUIET * module
    rects = " ".join(
        f"{col} {count - top - height} {width} {height} re"
        for col, top, width, height in rectangles(matrix)
    )
    return (
        f"q 0 g {fp_str(module)} 0 0 {fp_str(module)} {fp_str(origin_x, origin_y)} cm {rects} f Q"
    )
