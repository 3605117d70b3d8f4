"""Benchmark: room arrangement at national scale, and one site's full materials.

1. 200,000 candidates over 1,500 sites arranged into rooms, seats and slots (first run:
   every seat and ticket number new; second run: nothing moves). Target: < 5 s.
   Then 1,500 sites of sitting 2024-3 whose overlapping 初级 and 高级 fill 4-30 rooms of
   20-45 seats exactly, every seat taken (in memory): the worst case for the split of the
   rooms, which is searched exactly wherever the quick split leaves someone out; then the
   same sites with every seat already given in room order, so the split also keeps seats.
2. The four PDFs (tickets, desk labels, door signs, sign-in sheets) of one site with 300
   candidates, built from the database. Target: < 3 s. Printed with an estimate for the
   national batch (every site's materials) on one core.

    .venv/bin/python benchmarks/arrangement.py [--candidates 200000]
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

ARRANGED = datetime.fromisoformat("2024-05-06T23:00:00+08:00")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="examflow-arrange-") as home:
        os.environ["EXAMFLOW_HOME"] = home
        import fanout

        from examflow.db import session_scope
        from models.arrangement import arrange
        from models.site_materials import site_materials
        from models.sittings import get_sitting
        from notifications.documents.fonts import cjk_font
        from notifications.documents.materials import RENDERERS

        fanout.load_register(2000, 1500, args.candidates)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            with session_scope() as session:
                report = arrange(session, get_sitting(session, "2024-1"), ARRANGED)
            timings.append(time.perf_counter() - start)
            print(
                f"arrange {args.candidates:,} candidates / 1,500 sites: {timings[-1]:.2f} s "
                f"({report.seated:,} seated, {report.new:,} new, {report.moved} moved, "
                f"{len(report.shortfalls)} shortfalls) (target < 5 s)"
            )
        tight_sites(1500)
        cjk_font()  # registered once per process; not part of a site's materials
        with session_scope() as session:
            sitting = get_sitting(session, "2024-1")
            busiest = max(
                (site_materials(session, sitting, f"S{i:05d}") for i in range(1, 6)),
                key=lambda m: len(m.candidates),
            )
        start = time.perf_counter()
        pages = {kind: render(busiest) for kind, render in RENDERERS.items()}
        materials_s = time.perf_counter() - start
        n = len(busiest.candidates)
        size = sum(len(p) for p in pages.values()) / 1e6
        print(
            f"materials of site {busiest.site_code} ({n} candidates, 4 PDFs, {size:.1f} MB): "
            f"{materials_s:.2f} s (target < 3 s for 300 candidates)"
        )
        per_candidate = materials_s / n
        print(
            f"estimate, national batch ({args.candidates:,} candidates): "
            f"{per_candidate * args.candidates / 60:.0f} min on one core; sites render "
            "independently, so workers divide it"
        )


def tight_sites(n: int) -> None:
    import random

    import models.arrangement
    from models.arrangement import arrange_site
    from models.rooms import RoomSpec
    from models.sitting_calendar import parse_calendar

    spec = parse_calendar((ROOT / "calendars" / "2024-h1.toml").read_text("utf-8")).sitting(
        "2024-3"
    )
    rng = random.Random(3)
    sites = []
    for _ in range(n):
        rooms = [RoomSpec(f"{i:03d}", rng.randint(20, 45)) for i in range(rng.randint(4, 30))]
        # 高级 gets the seats of a random half of the rooms, 初级 all the others: it fits exactly
        senior = sum(r.seats for r in rooms if rng.random() < 0.5)
        junior = sum(r.seats for r in rooms) - senior
        sites.append(
            (rooms, {"初级": list(range(junior)), "高级": list(range(junior, junior + senior))})
        )
    exact = models.arrangement.split_rooms
    searched = []

    def counted(
        levels: list[str],
        candidates: dict[str, list[int]],
        rooms: list[RoomSpec],
        previous: dict[int, tuple[str, int]],
    ) -> dict[str, str]:
        searched.append(1)
        return exact(levels, candidates, rooms, previous)

    models.arrangement.split_rooms = counted
    start = time.perf_counter()
    short = sum(sum(arrange_site(spec, c, r, {}).short.values()) for r, c in sites)
    elapsed = time.perf_counter() - start
    seats = sum(len(c["初级"]) + len(c["高级"]) for _, c in sites)
    print(
        f"exact split at {n:,} tight 2024-3 sites ({seats:,} candidates, 4-30 rooms each): "
        f"{elapsed:.2f} s, {short} without a seat ({len(searched)} sites searched exactly)"
    )
    # again, every candidate already seated in room-name order (初级 first, 高级 after them):
    # the split must now also keep the most of those seats
    given = []
    for rooms, c in sites:
        places = [(r.name, seat) for r in rooms for seat in range(1, r.seats + 1)]
        given.append(dict(zip(c["初级"] + c["高级"], places, strict=True)))
    searched.clear()
    start = time.perf_counter()
    plans = [arrange_site(spec, c, r, p) for (r, c), p in zip(sites, given, strict=True)]
    elapsed = time.perf_counter() - start
    short = sum(sum(plan.short.values()) for plan in plans)
    kept = sum(
        sum(plan.seats.get(rid) == place for rid, place in p.items())
        for plan, p in zip(plans, given, strict=True)
    )
    print(
        f"same sites, every seat already given in room order: {elapsed:.2f} s, {short} without "
        f"a seat, {kept:,} seats kept ({len(searched)} sites searched exactly)"
    )


if __name__ == "__main__":
    main()
