"""Benchmark: room arrangement at national scale, and one site's full materials.

1. 200,000 candidates over 1,500 sites arranged into rooms, seats and slots (first run:
   every seat and ticket number new; second run: nothing moves). Target: < 5 s.
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


if __name__ == "__main__":
    main()
