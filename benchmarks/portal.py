"""The school portal under load (locust, headless, bounded in time), against a bare Starlette
endpoint that runs the same queries, measured in one run.

A fresh database (SQLite in a temporary examflow home, or ``--database-url`` for PostgreSQL)
holds the notice's calendar, S synthetic schools (3/4 of them sites) and C registrations in
2024-1; every school taking part gets a session (as if signed in from a link). Two servers
run as separate processes on 127.0.0.1 with W uvicorn workers each, the portal's clock fixed
inside 2024-1's registration window:

- portal: ``examflow portal serve`` — GET /schools/<code>/sittings/2024-1 (session, the
  seven stages and what the school owes, its registrations, site lists, results, reviews,
  rendered by jinja2) and POST …/registration (a 300-row file, the CLI's rules, all or
  nothing, audited, answered with the page);
- bare: a Starlette app whose one endpoint makes the sitting page's calls (the session
  lookup, then the page's own query helpers over the same models) and answers plain text.

Phases, each D seconds after a short unmeasured warm-up (locust's FastHttpUser, one
load-generator process on the same machine):

1. bare: R schools reading the bare endpoint back to back (no pause);
2. page: R schools reading their sitting page back to back — throughput ratio page/bare;
3. mixed: R schools reading their page (a pause of 1–3 s between reads, as a person does)
   while U schools each upload a fresh 300-row registration file (a pause of 1–3 s) —
   p95 of the page and of an upload under that load.

Targets: page/bare throughput ≥ 0.5; p95 of the page < 300 ms; of an upload < 2 s; no error.

    .venv/bin/python benchmarks/portal.py [--schools 2000] [--candidates 20000]
        [--readers 200] [--uploaders 20] [--rows 300] [--seconds 60] [--workers 3]
        [--database-url postgresql+psycopg://…]
"""

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where its own name would hide
# the portal package: import from the repository root instead.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

AS_OF = "2024-04-20T10:00:00"  # inside 2024-1's registration window
SITTING = "2024-1"
PAGE = "/schools/{code}/sittings/2024-1"
BARE = "/bare/{code}/2024-1"
COOKIE = "examflow_session"
MAX_PAGE_P95_MS = 300
MAX_UPLOAD_P95_MS = 2000
MIN_RATIO = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the database ---------------------------------------------------------------------------


def seed(n_schools: int, n_candidates: int, readers: int, uploaders: int) -> dict[str, Any]:
    """Calendar, schools, agreements and registrations; a session per school taking part.
    Returns what the load generator needs: readers' and uploaders' (code, cookie, csrf)."""
    from adapters.tabular import read_table
    from examflow.db import session_scope
    from examflow.synthetic import SCHOOL_HEADER, make_registrations, make_schools
    from models.domain import Level, in_shanghai
    from models.portal_access import PortalSession, issue_link, open_session, valid_link
    from models.registration import REGISTRATION_COLUMNS, register_file
    from models.schools import SCHOOL_COLUMNS, agree_to_host, import_schools
    from models.sitting_calendar import parse_calendar
    from models.sittings import get_sitting, store_calendar

    as_of = in_shanghai(datetime.fromisoformat(AS_OF))
    schools = make_schools(n_schools, n_schools * 3 // 4, seats=400, pilot_scale=5000)
    rows = make_registrations(schools, n_candidates, [Level.junior, Level.intermediate])
    school_csv = "\n".join(",".join(r) for r in [SCHOOL_HEADER, *(s.row() for s in schools)])
    reg_csv = "\n".join(
        ",".join(r) for r in [["学校代码", "姓名", "身份证号", "级别", "考点代码"], *rows]
    )
    calendar = parse_calendar((ROOT / "calendars" / "2024-h1.toml").read_text(encoding="utf-8"))
    with session_scope() as session:
        store_calendar(session, calendar, "bench", as_of)
        import_schools(
            session, read_table(school_csv.encode(), "schools.csv", SCHOOL_COLUMNS), as_of
        )
        spec = get_sitting(session, SITTING).spec
        for host, guest in sorted({(s.host, s.code) for s in schools if s.host}):
            agree_to_host(session, spec, host, guest, as_of)
    with session_scope() as session:
        register_file(
            session,
            get_sitting(session, SITTING),
            read_table(reg_csv.encode(), "registrations.csv", REGISTRATION_COLUMNS),
            file_name="registrations.csv",
            sha256="bench",
            as_of=as_of,
        )
    rng = random.Random(5)
    sites = [s for s in schools if s.is_site]
    # readers: a random sample of all schools; uploaders: sites (their rows need no host),
    # one fresh school per upload, so each upload adds 300 candidates to a school of ~C/S
    reading = rng.sample(schools, readers)
    upload_pool = [s for s in sites if s not in reading]
    signed: dict[str, dict[str, str]] = {}
    with session_scope() as session:
        for school in reading + upload_pool:
            contact = f"affairs@{school.code.lower()}.example.edu.cn"
            token = issue_link(
                session,
                school.code,
                contact,
                as_of,
                expires_at=as_of.replace(year=2025),
                single_use=False,
            )
            link = valid_link(session, token, as_of)
            assert link is not None
            cookie = open_session(session, link, as_of)
            signed[school.code] = {"code": school.code, "cookie": cookie}
        session.flush()
        from sqlmodel import select

        from models.portal_access import token_hash

        by_hash = {row.token_hash: row.csrf_token for row in session.exec(select(PortalSession))}
    for entry in signed.values():
        entry["csrf"] = by_hash[token_hash(entry["cookie"])]
    return {
        "readers": [signed[s.code] for s in reading],
        "uploaders": [signed[s.code] for s in upload_pool],
        "prefix": {s.code: s.prefix for s in schools},
    }


# -- the bare endpoint ----------------------------------------------------------------------


def bare_app() -> object:
    """The sitting page's calls without the framework: the session lookup (as the portal's
    signed_in), then the page's own ``page_context`` (portal.routes.sitting, so the queries
    are the same by construction), answered as plain text."""
    from collections.abc import Sized

    from sqlmodel import Session
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from examflow.db import engine_for
    from examflow.settings import get_settings
    from models.domain import in_shanghai
    from models.portal_access import session_for
    from models.schools import School
    from models.sittings import get_sitting
    from portal.auth import SignedIn
    from portal.routes.sitting import page_context

    engine = engine_for(get_settings().resolved_database_url())
    as_of = in_shanghai(datetime.fromisoformat(AS_OF))

    def bare(request: Request) -> Response:
        token = request.cookies.get(COOKIE, "")
        with Session(engine, expire_on_commit=False) as session:
            row = session_for(session, token, as_of)
            school = session.get(School, row.school_code) if row else None
            if row is None or school is None or school.code != request.path_params["code"]:
                return Response(status_code=404)
            code, name = school.code, school.name
            user = SignedIn(
                code,
                name,
                school.is_site,
                row.contact,
                row.csrf_token,
                school.is_pilot,
                school.province,
            )
            sitting = get_sitting(session, request.path_params["sitting"])
            page = page_context(session, sitting, user, as_of)
            session.commit()
        lines = [f"{name} ({code}) {sitting.code}"]
        lines += [f"{v.label} {v.state_label} {len(v.owed)}" for v in page["stages"]]
        lines += [f"{r.name} {r.masked_id} {r.level} {r.site_code}" for r in page["registrations"]]
        lines += [f"{key}={len(value)}" for key, value in page.items() if isinstance(value, Sized)]
        return PlainTextResponse("\n".join(lines))

    return Starlette(routes=[Route("/bare/{code}/{sitting}", bare)])


# -- the servers ----------------------------------------------------------------------------


def start(
    command: list[str], port: int, env: dict[str, str], log: Path
) -> "subprocess.Popen[bytes]":
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=ROOT,
        start_new_session=True,  # its workers in its own process group, stopped with it
    )
    deadline = time.monotonic() + 240  # a loaded 2-core machine starts workers slowly
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    stop(process)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{command} did not start:\n{tail}")


def stop(process: "subprocess.Popen[bytes]") -> None:
    """Stop a server and its workers at once: requests still queued from a saturated phase
    would otherwise go on using the CPU the next phase measures."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


# -- the load (its own process: locust patches the standard library with gevent) ----------


def upload_body(code: str, prefix: str, rows: int, csrf: str, rng: random.Random) -> bytes:
    from examflow.synthetic import make_id_number, make_name

    lines = ["学校代码,姓名,身份证号,级别,考点代码"]
    for i in range(rows):
        level = "初级" if i % 2 else "中级"
        lines.append(f"{code},{make_name(rng)},{make_id_number(rng, prefix)},{level},")
    file = ("\n".join(lines) + "\n").encode()
    b = "----examflowbench"
    return (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="reg.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + file
        + f"\r\n--{b}--\r\n".encode()
    )


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    import gevent
    from locust import FastHttpUser, between, constant, task
    from locust.env import Environment

    readers: list[dict[str, str]] = spec["readers"]
    uploaders: list[dict[str, str]] = spec["uploaders"]
    prefix: dict[str, str] = spec["prefix"]
    rows: int = spec["rows"]
    counter = {"reader": 0, "upload": 0}
    rng = random.Random(9)

    def next_reader() -> dict[str, str]:
        counter["reader"] += 1
        return readers[counter["reader"] % len(readers)]

    class BareReader(FastHttpUser):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.school = next_reader()

        @task
        def read(self) -> None:
            self.client.get(
                BARE.format(code=self.school["code"]),
                headers={"Cookie": f"{COOKIE}={self.school['cookie']}"},
                name="bare",
            )

    class PageReader(FastHttpUser):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.school = next_reader()

        @task
        def read(self) -> None:
            self.client.get(
                PAGE.format(code=self.school["code"]),
                headers={"Cookie": f"{COOKIE}={self.school['cookie']}"},
                name="page",
            )

    class PausingReader(PageReader):
        wait_time = between(1, 3)

    class Uploader(FastHttpUser):
        wait_time = between(1, 3)

        @task
        def upload(self) -> None:
            counter["upload"] += 1
            school = uploaders[counter["upload"] % len(uploaders)]
            body = upload_body(school["code"], prefix[school["code"]], rows, school["csrf"], rng)
            with self.client.post(
                PAGE.format(code=school["code"]) + "/registration",
                data=body,
                headers={
                    "Cookie": f"{COOKIE}={school['cookie']}",
                    "Content-Type": "multipart/form-data; boundary=----examflowbench",
                },
                name="upload",
                catch_response=True,
            ) as answer:
                # the page's notice for a stored file (its registrations table says 已报名 too)
                stored = f"：已报名 {rows} 名考生".encode()
                if answer.status_code != 200 or stored not in (answer.content or b""):
                    answer.failure(f"{answer.status_code}: the file was not stored whole")

    def phase(
        host: str, classes: dict[type[FastHttpUser], int], seconds: float, warmup: float
    ) -> dict[str, dict[str, float]]:
        for user_class, count in classes.items():
            user_class.fixed_count = count
        env = Environment(user_classes=list(classes), host=host)
        runner = env.create_local_runner()
        total = sum(classes.values())
        runner.start(total, spawn_rate=100)
        gevent.sleep(warmup + total / 100)  # spawned, then warmed up: not measured
        env.stats.reset_all()
        began = time.monotonic()
        gevent.sleep(seconds)
        elapsed = time.monotonic() - began
        stats = {}
        for (name, _method), entry in env.stats.entries.items():
            stats[name] = {
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "rps": (entry.num_requests - entry.num_failures) / elapsed,  # answered
                "p50_ms": entry.get_response_time_percentile(0.5) or 0,
                "p95_ms": entry.get_response_time_percentile(0.95) or 0,
                "first_errors": sorted(
                    {f"{e.name}: {e.error}"[:160] for e in env.stats.errors.values()}
                )[:3],
            }
        runner.quit()
        return stats

    n, u, d, w = spec["readers_n"], spec["uploaders_n"], spec["seconds"], spec["warmup"]
    users: dict[str, dict[type[FastHttpUser], int]] = {
        "bare": {BareReader: n},
        "page": {PageReader: n},
        "mixed": {PausingReader: n, Uploader: u},
    }
    return phase(spec["url"], users[spec["phase"]], d, w)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(
        f"{args.schools} schools, {args.candidates} registrations, portal clock {AS_OF}; "
        f"{args.readers} readers, {args.uploaders} uploaders of {args.rows}-row files; "
        f"{args.seconds:g} s per phase; {args.workers} uvicorn worker(s) per server; "
        f"{os.cpu_count()} CPUs shared with the load generator; load average after "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    for phase, stats in results.items():
        for name, r in stats.items():
            print(
                f"{phase:5} {name:6} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.0f} ms"
                f"  p95 {r['p95_ms']:6.0f} ms  errors {r['failures']:.0f}"
                f"  ({r['requests']:.0f} requests)"
            )
            for error in r.get("first_errors", []):
                print(f"      {error}")
    ratio = results["page"]["page"]["rps"] / max(results["bare"]["bare"]["rps"], 1e-9)
    page_p95 = results["mixed"]["page"]["p95_ms"]
    upload_p95 = results["mixed"].get("upload", {}).get("p95_ms", float("inf"))
    errors = sum(r["failures"] for stats in results.values() for r in stats.values())

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"page/bare throughput {ratio:.2f} (target ≥ {MIN_RATIO}): {verdict(ratio >= MIN_RATIO)}")
    print(
        f"page p95 under the mixed load {page_p95:.0f} ms (target < {MAX_PAGE_P95_MS}): "
        f"{verdict(page_p95 < MAX_PAGE_P95_MS)}"
    )
    print(
        f"upload p95 {upload_p95:.0f} ms (target < {MAX_UPLOAD_P95_MS}): "
        f"{verdict(upload_p95 < MAX_UPLOAD_P95_MS)}"
    )
    print(f"errors {errors:.0f} (target 0): {verdict(errors == 0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=20000)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--uploaders", type=int, default=20)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=5)
    # one more worker than cores: a worker waiting on a commit (an upload) leaves its core idle
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--database-url", help="PostgreSQL (an empty database); else SQLite")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load generator's process
        spec = json.loads(Path(args.load).read_text(encoding="utf-8"))
        Path(args.load).with_suffix(".out").write_text(json.dumps(run_load(spec)))
        return
    if args.serve_bare:
        import uvicorn

        uvicorn.run(
            "benchmarks.portal:bare_app",
            factory=True,
            host="127.0.0.1",
            port=args.serve_bare,
            workers=args.workers,
            log_level="warning",
        )
        return
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as folder:
        home = Path(folder)
        os.environ["EXAMFLOW_HOME"] = str(home)
        os.environ.pop("PREFECT_API_URL", None)  # no events: nothing to send them to
        if args.database_url:
            os.environ["EXAMFLOW_DATABASE_URL"] = args.database_url
        else:
            os.environ.pop("EXAMFLOW_DATABASE_URL", None)
        began = time.monotonic()
        people = seed(args.schools, args.candidates, args.readers, args.uploaders)
        print(f"seeded in {time.monotonic() - began:.0f} s", flush=True)
        env = dict(
            os.environ,
            EXAMFLOW_PORTAL_AS_OF=AS_OF,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            PYTHONPATH=str(ROOT),
        )
        workers = ["--workers", str(args.workers)]
        results: dict[str, Any] = {}
        for phase in ("bare", "page", "mixed"):
            # each phase against a freshly started server, alone on the machine's CPUs
            port = free_port()
            command = (
                [sys.executable, __file__, "--serve-bare", str(port), *workers]
                if phase == "bare"
                else [
                    str(ROOT / ".venv" / "bin" / "examflow"),
                    *("portal", "serve", "--port", str(port), "--as-of", AS_OF, *workers),
                ]
            )
            log = home / f"{phase}-server.log"
            try:
                server = start(command, port, env, log)
            except RuntimeError as exc:  # once more (a busy machine), saying why
                print(exc, flush=True)
                server = start(command, port, env, log)
            try:
                spec = {
                    **people,
                    "phase": phase,
                    "url": f"http://127.0.0.1:{port}",
                    "rows": args.rows,
                    "readers_n": args.readers,
                    "uploaders_n": args.uploaders,
                    "seconds": args.seconds,
                    "warmup": args.warmup,
                }
                spec_file = home / f"{phase}.json"
                spec_file.write_text(json.dumps(spec), encoding="utf-8")
                load = [sys.executable, __file__, "--load", str(spec_file)]
                subprocess.run(load, env=env, check=True)
                results[phase] = json.loads(spec_file.with_suffix(".out").read_text())
            finally:
                stop(server)
            if any(r["failures"] for r in results[phase].values()):
                print(f"{phase} server log (tail):", *log.read_text().splitlines()[-5:], sep="\n")
            print(f"{phase}: {json.dumps(results[phase])}", flush=True)
    report(results, args)


if __name__ == "__main__":
    main()
