"""The public verification page under load, against a bare endpoint returning the same JSON.

A fresh examflow home holds N issued credentials (a synthetic batch signed by both parties,
written straight into the table). Two servers run as separate processes, one uvicorn worker
each: the portal (``examflow portal serve``) and a bare Starlette app whose one endpoint runs
the same query (the credential by number) and returns the stored JSON. A bounded load
(locust's FastHttpUser, headless, in a process of its own; C users back to back with no
pause, D seconds per target after an unmeasured warm-up, random certificate numbers, each
request from its own X-Forwarded-For address, as phones would be, so the per-address limit
does not bite) measures, in one run:

- bare: GET /bare/<number> (the page's lookup, one SELECT, the stored text);
- json: GET /verify/<number>.json (lookup, memoised verification, ETag, Cache-Control);
- page: GET /verify/<number> (the HTML page: lookup, revocation lookup, template, CSRF cookie).

Targets: json and page throughput ≥ 0.5 of bare; p95 < 100 ms.

Each line also gives the CPU time the server process spent per request (from /proc, on
Linux) and the load generator's own CPU a request, both over the measured seconds only: on
a small machine the client's share bounds every target alike, and the servers' CPU a
request is the cost the ratio is about. Latencies are locust's own (request sent to body
read, in the generator's process), kept unrounded.

    .venv/bin/python benchmarks/verify_page.py [--credentials 2000] [--concurrency 20]
        [--seconds 10] [--warmup 2]
"""

import argparse
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_credentials(count: int) -> tuple[list[dict[str, object]], list[tuple[str, str]]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from examflow.synthetic import make_id_number, make_name
    from models.credentials.batch import BatchEntry, CertificateBatch, new_salt
    from models.credentials.keys import ORGANISER, public_key_b64, registry
    from models.credentials.signing import issue_credentials, sign_batch
    from models.domain import SHANGHAI, Level

    rng = random.Random(11)
    keys = {ORGANISER: Ed25519PrivateKey.generate(), "P3": Ed25519PrivateKey.generate()}
    parties = [(party, public_key_b64(key)) for party, key in keys.items()]
    entries = tuple(
        BatchEntry.for_candidate(
            certificate_number=f"WD2024110{i:05d}",
            name=make_name(rng),
            ticket_number=f"2024110{i:05d}",
            level=list(Level)[i % 2],
            score=60 + i % 40,
            id_number=make_id_number(rng, "11"),
            id_salt=new_salt(),
            status_index=i,
        )
        for i in range(count)
    )
    batch = CertificateBatch(
        sitting_code="2024-1",
        certificate="网店运营推广职业技能等级证书",
        school_code="P3",
        school_name="四号职业技术学院",
        issuer_id="https://www.hotmatrix.cn",
        issuer_name="北京鸿科经纬科技有限公司",
        valid_from=datetime(2024, 6, 1, tzinfo=SHANGHAI),
        entries=entries,
        status_list_url="https://www.hotmatrix.cn/status/2024-1/revocation",
    )
    trusted = registry(parties)
    at = datetime(2024, 6, 1, 10, tzinfo=SHANGHAI)
    signatures = [sign_batch(batch, party, key, at, trusted) for party, key in keys.items()]
    return issue_credentials(batch, signatures, trusted), parties


def prepare_home(home: Path, count: int) -> list[str]:
    os.environ["EXAMFLOW_HOME"] = str(home)
    from examflow.db import session_scope

    with session_scope():
        pass  # creates and migrates the database
    documents, parties = make_credentials(count)
    from models.credentials.keys import key_id

    conn = sqlite3.connect(home / "examflow.db")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.executemany(
        "INSERT INTO partykey (key_id, party, public_key_b64, created_at, status) "
        "VALUES (?, ?, ?, '2024-06-01 00:00:00', 'approved')",
        [(key_id(public), party, public) for party, public in parties],
    )
    rows = []
    for i, document in enumerate(documents, 1):
        number = document["credentialSubject"]["certificateNumber"]  # type: ignore[index]
        text = json.dumps(document, ensure_ascii=False, sort_keys=True)
        rows.append(("2024-1", "P3", i, number, "d" * 64, text, "2024-06-01 02:00:00", i - 1))
    conn.executemany(
        "INSERT INTO issuedcertificate (sitting_code, school_code, registration_id, "
        "certificate_number, batch_digest, credential_json, issued_at, status_index) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()
    return [r[3] for r in rows]


def bare_app() -> object:
    """The bare endpoint: the page's own lookup (``issued_credential``, the credential by
    number), the stored JSON as it is."""
    from sqlmodel import Session
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from examflow.db import engine_for
    from examflow.settings import get_settings
    from models.certificates import issued_credential

    engine = engine_for(get_settings().resolved_database_url())

    def bare(request: Request) -> Response:
        with Session(engine) as session:
            issued = issued_credential(session, request.path_params["number"])
        if issued is None:
            return Response(status_code=404)
        return Response(issued.text, media_type="application/json")

    return Starlette(routes=[Route("/bare/{number}", bare)])


def start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (0 where /proc is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load (its own process: locust patches the standard library with gevent) ----------


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """C users back to back on one target; the measured window's latencies, throughput and
    the CPU the serving process and this one spent in it."""
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    numbers: list[str] = spec["numbers"]
    path: str = spec["path"]
    rng = random.Random(3)
    latencies: list[float] = []  # ms, as locust measured them, unrounded
    counter = {"user": 0}

    class Reader(FastHttpUser):
        wait_time = constant(0)

        def on_start(self) -> None:
            counter["user"] += 1
            self.n = counter["user"] % 256

        @task
        def read(self) -> None:
            address = f"10.{self.n}.{rng.randrange(256)}.{rng.randrange(256)}"
            self.client.get(
                path.format(number=rng.choice(numbers)),
                headers={"X-Forwarded-For": address},
                name=spec["name"],
            )

    def record(response_time: float, **_: object) -> None:
        latencies.append(response_time)

    concurrency, seconds, warmup = spec["concurrency"], spec["seconds"], spec["warmup"]
    Reader.fixed_count = concurrency
    env = Environment(user_classes=[Reader], host=spec["url"])
    env.events.request.add_listener(record)
    runner = env.create_local_runner()
    runner.start(concurrency, spawn_rate=100)
    gevent.sleep(warmup + concurrency / 100)  # spawned, then warmed up: not measured
    env.stats.reset_all()
    latencies.clear()
    server, client = cpu_seconds(spec["pid"]), time.process_time()
    began = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - began
    server, client = cpu_seconds(spec["pid"]) - server, time.process_time() - client
    measured = sorted(latencies)  # no greenlet ran since the window closed
    failures = env.stats.get(spec["name"], "GET").num_failures
    errors = sorted({f"{e.name}: {e.error}"[:160] for e in env.stats.errors.values()})[:3]
    runner.quit()
    count = len(measured) or 1
    return {
        "requests": len(measured),
        "rps": (len(measured) - failures) / elapsed,  # answered
        "p50_ms": measured[len(measured) // 2] if measured else 0.0,
        "p95_ms": measured[int(len(measured) * 0.95)] if measured else 0.0,
        "errors": failures,
        "server_cpu_ms": server * 1000 / count,
        "client_cpu_ms": client * 1000 / count,
        "first_errors": errors,
    }


def measure(
    name: str, url: str, pid: int, numbers: list[str], args: argparse.Namespace, env: dict[str, str]
) -> dict[str, Any]:
    """The load on ``url`` from a locust process of its own, with the CPU the serving process
    ``pid`` and the load generator spent in the measured seconds."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    spec = {
        "name": name,
        "url": f"{scheme}://{host}",
        "path": slash + path,
        "pid": pid,
        "numbers": numbers,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "warmup": args.warmup,
    }
    with tempfile.TemporaryDirectory(prefix="verify-load-") as folder:
        spec_file = Path(folder) / "spec.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        subprocess.run(
            [sys.executable, __file__, "--load", str(spec_file)],
            env=env,
            check=True,
            timeout=args.warmup + args.seconds + 120,  # bounded even if locust hangs
        )
        return dict(json.loads(spec_file.with_suffix(".out").read_text(encoding="utf-8")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load generator's process
        spec = json.loads(Path(args.load).read_text(encoding="utf-8"))
        Path(args.load).with_suffix(".out").write_text(json.dumps(run_load(spec)))
        return
    if args.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=args.serve_bare, log_level="warning")  # type: ignore[arg-type]
        return
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as folder:
        home = Path(folder)
        numbers = prepare_home(home, args.credentials)
        env = dict(os.environ, EXAMFLOW_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        portal_port, bare_port = free_port(), free_port()
        examflow = str(ROOT / ".venv" / "bin" / "examflow")
        portal = start([examflow, "portal", "serve", "--port", str(portal_port)], portal_port, env)
        bare = start([sys.executable, __file__, "--serve-bare", str(bare_port)], bare_port, env)
        try:
            targets = {
                "bare": (f"http://127.0.0.1:{bare_port}/bare/{{number}}", bare.pid),
                "json": (f"http://127.0.0.1:{portal_port}/verify/{{number}}.json", portal.pid),
                "page": (f"http://127.0.0.1:{portal_port}/verify/{{number}}", portal.pid),
            }
            results = {
                name: measure(name, url, pid, numbers, args, env)
                for name, (url, pid) in targets.items()
            }
        finally:
            for process in (portal, bare):
                process.terminate()
                process.wait(timeout=10)
    load = os.getloadavg()
    print(
        f"{args.credentials} credentials, {args.concurrency} concurrent users (locust "
        f"FastHttpUser, back to back), {args.seconds:g} s per target after {args.warmup:g} s "
        f"unmeasured, one uvicorn worker per server, {os.cpu_count()} CPUs shared with the "
        f"load generator; load average after {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    for name, r in results.items():
        print(
            f"{name:5} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms"
            f"  errors {r['errors']:.0f}  ({r['requests']:.0f} requests)"
        )
        for error in r.get("first_errors", []):
            print(f"      {error}")
        print(
            f"      CPU a request: server {r['server_cpu_ms']:.2f} ms, "
            f"load generator {r['client_cpu_ms']:.2f} ms"
        )
    bare_rps = results["bare"]["rps"]
    for name in ("json", "page"):
        ratio = results[name]["rps"] / bare_rps
        verdict = "ok" if ratio >= 0.5 and results[name]["p95_ms"] < 100 else "MISSED"
        print(f"{name}/bare throughput {ratio:.2f} (target ≥ 0.5), p95 target < 100 ms: {verdict}")
        if results[name]["server_cpu_ms"] > 0:
            cost = results["bare"]["server_cpu_ms"] / results[name]["server_cpu_ms"]
            print(
                f"{name}/bare by server CPU a request (the throughput one core allows) {cost:.2f}"
            )


if __name__ == "__main__":
    main()
