"""Benchmark: 2,000 schools and 200,000 registrations in one CSV, imported and validated.

Prints wall time and peak RSS of examflow's import (every rule checked, one transaction) and
its ratio to two raw baselines measured in the same run, both csv reader + sqlite3 executemany
of the same rows with no checks: into a bare 5-column table, and into examflow's own
registration table (its unique (sitting, ID) key and foreign keys, which alone cost more than
the bare baseline). Each side runs in a fresh child process so that its peak RSS is its own.
Target: ratio <= 3, RSS < 1 GB.

    .venv/bin/python benchmarks/registration.py [--candidates 200000] [--schools 2000]
"""

import argparse
import csv
import multiprocessing as mp
import os
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = "2024-04-20T10:00:00+08:00"


def prepare(workdir: Path, n_schools: int, n_candidates: int) -> Path:
    from examflow.synthetic import (
        REGISTRATION_HEADER,
        SCHOOL_HEADER,
        make_registrations,
        make_schools,
        write_csv,
    )
    from models.domain import Level

    schools = make_schools(n_schools, n_schools * 3 // 4, seats=400, pilot_scale=5000)
    write_csv(workdir / "schools.csv", SCHOOL_HEADER, [s.row() for s in schools])
    rows = make_registrations(schools, n_candidates, [Level.junior, Level.intermediate])
    write_csv(workdir / "registrations.csv", REGISTRATION_HEADER, rows)
    agreements = sorted({(s.host, s.code) for s in schools if s.host})
    with (workdir / "agreements.csv").open("w", newline="") as f:
        csv.writer(f).writerows(agreements)
    return workdir / "registrations.csv"


def examflow_child(workdir: str, queue: "mp.Queue[dict[str, float]]") -> None:
    os.environ["EXAMFLOW_HOME"] = str(Path(workdir) / "var")
    from adapters.tabular import read_table
    from examflow.db import session_scope
    from models.registration import REGISTRATION_COLUMNS, register_file
    from models.schools import SCHOOL_COLUMNS, agree_to_host, import_schools
    from models.sitting_calendar import parse_calendar
    from models.sittings import get_sitting, store_calendar

    as_of = datetime.fromisoformat(AS_OF)
    calendar = parse_calendar((ROOT / "calendars" / "2024-h1.toml").read_text(encoding="utf-8"))
    school_bytes = (Path(workdir) / "schools.csv").read_bytes()
    with session_scope() as session:
        store_calendar(session, calendar, "bench", as_of)
        import_schools(session, read_table(school_bytes, "schools.csv", SCHOOL_COLUMNS), as_of)
        spec = get_sitting(session, "2024-1").spec
        with (Path(workdir) / "agreements.csv").open() as f:
            for host, guest in csv.reader(f):
                agree_to_host(session, spec, host, guest, as_of)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    data = (Path(workdir) / "registrations.csv").read_bytes()
    table = read_table(data, "registrations.csv", REGISTRATION_COLUMNS)
    with session_scope() as session:
        summary = register_file(
            session,
            get_sitting(session, "2024-1"),
            table,
            file_name="registrations.csv",
            sha256="bench",
            as_of=as_of,
        )
    elapsed = time.perf_counter() - start
    queue.put(
        {
            "seconds": elapsed,
            "stored": summary.stored,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_mb": rss_before / 1024,
        }
    )


def baseline_child(workdir: str, queue: "mp.Queue[dict[str, float]]") -> None:
    path = Path(workdir) / "baseline.db"
    start = time.perf_counter()
    with (Path(workdir) / "registrations.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        rows = list(reader)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE reg (school TEXT, name TEXT, id_number TEXT, level TEXT, site TEXT)")
    db.executemany("INSERT INTO reg VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    elapsed = time.perf_counter() - start
    db.close()
    queue.put(
        {
            "seconds": elapsed,
            "stored": len(rows),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def same_table_child(workdir: str, queue: "mp.Queue[dict[str, float]]") -> None:
    """The same rows, no checks, into examflow's own registration table (its unique key and
    foreign keys included): what storing the rows costs before examflow adds anything."""
    os.environ["EXAMFLOW_HOME"] = str(Path(workdir) / "var-same-table")
    from adapters.tabular import read_table
    from examflow.db import get_engine, session_scope
    from models.registration import ImportBatch
    from models.schools import SCHOOL_COLUMNS, import_schools
    from models.sitting_calendar import parse_calendar
    from models.sittings import store_calendar

    as_of = datetime.fromisoformat(AS_OF)
    calendar = parse_calendar((ROOT / "calendars" / "2024-h1.toml").read_text(encoding="utf-8"))
    with session_scope() as session:
        store_calendar(session, calendar, "bench", as_of)
        school_bytes = (Path(workdir) / "schools.csv").read_bytes()
        import_schools(session, read_table(school_bytes, "schools.csv", SCHOOL_COLUMNS), as_of)
        batch = ImportBatch(
            sitting_code="2024-1",
            kind="registration",
            file_name="b",
            sha256="b",
            rows=0,
            imported_at=as_of,
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    path = get_engine().url.database
    get_engine().dispose()
    assert path is not None
    start = time.perf_counter()
    with (Path(workdir) / "registrations.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        rows = [
            (
                "2024-1",
                school or None,
                site or school,
                name,
                id_number,
                level,
                "北京市",
                38000,
                "advance",
                batch_id,
                "2024-04-20 02:00:00.000000",
            )
            for school, name, id_number, level, site in reader
        ]
    db = sqlite3.connect(path)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "cache_size=-65536",
    ):
        db.execute(f"PRAGMA {pragma}")
    db.executemany(
        "INSERT INTO registration (sitting_code, school_code, site_code, name, id_number, level,"
        " province, fee_fen, fee_basis, batch_id, registered_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.commit()
    elapsed = time.perf_counter() - start
    db.close()
    queue.put({"seconds": elapsed, "stored": len(rows)})


def in_child(target: object, workdir: Path) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue: mp.Queue[dict[str, float]] = ctx.Queue()
    proc = ctx.Process(target=target, args=(str(workdir), queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join(timeout=60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=200_000)
    parser.add_argument("--schools", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="examflow-bench-") as tmp:
        workdir = Path(tmp)
        path = prepare(workdir, args.schools, args.candidates)
        size_mb = path.stat().st_size / 1e6
        base = in_child(baseline_child, workdir)
        same_table = in_child(same_table_child, workdir)
        ours = in_child(examflow_child, workdir)
    assert ours["stored"] == base["stored"] == args.candidates, (ours, base)
    ratio = ours["seconds"] / base["seconds"]
    print(
        f"registration import: {args.schools} schools, {args.candidates} rows, {size_mb:.1f} MB CSV"
    )
    print(f"  raw baseline (csv + sqlite3 executemany, no checks): {base['seconds']:.2f} s")
    print(
        f"  examflow (read, validate every rule, store in one transaction): {ours['seconds']:.2f} s"
        f", {args.candidates / ours['seconds']:,.0f} rows/s"
    )
    print(f"  peak RSS: examflow {ours['rss_mb']:.0f} MB, baseline {base['rss_mb']:.0f} MB")
    print(
        f"  same rows, no checks, into examflow's own table (unique key, foreign keys): "
        f"{same_table['seconds']:.2f} s"
    )
    print(f"  ratio examflow/baseline: {ratio:.2f} (target <= 3)")
    print(
        f"  ratio examflow/same-table baseline: {ours['seconds'] / same_table['seconds']:.2f} "
        "(what examflow's checks and bookkeeping add over storing the rows)"
    )
    same = ours["seconds"] / same_table["seconds"]
    print(
        f"  target ratio <= 3 and RSS < 1 GB: against the same table "
        f"{'met' if same <= 3 and ours['rss_mb'] < 1024 else 'NOT met'}; "
        f"against the bare table {'met' if ratio <= 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
