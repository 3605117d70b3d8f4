"""Benchmark: one 300-candidate site's four material PDFs (5 rooms × 30 seats × 2 levels).

Prints time, pages and pages/s per kind, and the ratio to a raw baseline measured in the same
run: a bare reportlab canvas drawing the same number of pages with one line of Helvetica each
(no font embedding). Font registration happens once per process and is timed on its own.
Target: < 3 s for all four PDFs.

    .venv/bin/python benchmarks/materials.py [--rooms 5] [--seats 30] [--out DIR]

--out also writes the four PDFs there (write_site_materials), e.g. to look at them.
"""

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examflow.synthetic import make_name  # noqa: E402
from models.materials_data import EXAM_RULES, RoomSlot, SiteMaterials, TicketLine  # noqa: E402

EXAM_DAY = date(2024, 5, 25)
SLOTS = [("中级", (8, 30), (11, 45)), ("初级", (14, 0), (17, 45))]
SCHOOLS = ["一号职业技术学院", "二号职业学院", "四号职业技术学院"]


def make_site(n_rooms: int, seats: int, seed: int = 7) -> SiteMaterials:
    """n_rooms rooms used in both slots, every seat taken. IDs are made masked: the benchmark
    has no use for a full one."""
    rng = random.Random(seed)
    rooms: list[RoomSlot] = []
    serial = 0
    for level, (h1, m1), (h2, m2) in SLOTS:
        starts = datetime(2024, 5, 25, h1, m1)
        ends = datetime(2024, 5, 25, h2, m2)
        for r in range(1, n_rooms + 1):
            room = f"机房{r:02d}"
            lines = []
            for seat in range(1, seats + 1):
                serial += 1
                masked = f"1101{rng.randrange(10, 99)}********{rng.randrange(1000, 9999)}"
                lines.append(
                    TicketLine(
                        ticket_number=f"2024011001{serial:04d}",
                        name=make_name(rng),
                        masked_id=masked,
                        level=level,
                        school_name=rng.choice(SCHOOLS),
                        room=room,
                        seat=seat,
                        starts=starts,
                        ends=ends,
                    )
                )
            rooms.append(
                RoomSlot(
                    room=room, level=level, starts=starts, ends=ends, seats=seats, candidates=lines
                )
            )
    return SiteMaterials(
        sitting_code="2024-1",
        sitting_name="2024年第一次考试",
        certificate="Web前端开发职业技能等级证书",
        exam_day=EXAM_DAY,
        site_code="P1",
        site_name="一号职业技术学院",
        rules=EXAM_RULES,
        rooms=rooms,
    )


def baseline(pages: int) -> bytes:
    from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1)
    for page in range(pages):
        canvas.setFont("Helvetica", 12)
        canvas.drawString(72, 720, f"Page {page + 1}: candidate ticket 20240110010001")
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def timed(render: Callable[[], bytes], repeat: int) -> tuple[float, float, bytes]:
    """(first run, best of `repeat`, output): best-of damps a busy machine's noise."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        output = render()
        times.append(time.perf_counter() - start)
    return times[0], min(times), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--seats", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from pypdf import PdfReader

    from notifications.documents.fonts import cjk_font
    from notifications.documents.materials import MATERIAL_KINDS, RENDERERS, write_site_materials

    site = make_site(args.rooms, args.seats)
    start = time.perf_counter()
    cjk_font()
    print(f"font registration (once per process): {time.perf_counter() - start:.3f} s")
    print(f"{len(site.candidates)} candidates in {len(site.rooms)} room-slots")
    print(f"seconds: best of {args.repeat} (first run in brackets)\n")
    print(f"{'kind':<16}{'seconds':>16}{'pages':>7}{'pages/s':>9}{'KiB':>8}")
    first_total = best_total = 0.0
    total_pages = 0
    for kind in MATERIAL_KINDS:
        first, best, pdf = timed(partial(RENDERERS[kind], site), args.repeat)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        first_total += first
        best_total += best
        total_pages += pages
        row = f"{best:>7.3f} ({first:.3f})"
        print(f"{kind:<16}{row:>16}{pages:>7}{pages / best:>9.0f}{len(pdf) / 1024:>8.0f}")
    row = f"{best_total:>7.3f} ({first_total:.3f})"
    print(f"{'all four':<16}{row:>16}{total_pages:>7}{total_pages / best_total:>9.0f}")
    _, raw, _ = timed(partial(baseline, total_pages), args.repeat)
    print(f"{'raw baseline':<16}{raw:>16.3f}{total_pages:>7}{total_pages / raw:>9.0f}")
    verdict = "met" if first_total < 3 else "MISSED"
    print(f"\nratio to baseline: {best_total / raw:.0f}x; target < 3 s (first runs): {verdict}")
    if args.out:
        for kind, path in write_site_materials(site, args.out).items():
            print(f"wrote {kind}: {path}")


if __name__ == "__main__":
    main()
