"""The public verification page under load, against a bare endpoint returning the same JSON.

A fresh examflow home holds N issued credentials (a synthetic batch signed by both parties,
written straight into the table). Two servers run as separate processes, one uvicorn worker
each: the portal (``examflow portal serve``) and a bare Starlette app whose one endpoint runs
the same query (the credential by number) and returns the stored JSON. A bounded asyncio load
(httpx, C concurrent clients, D seconds per target, random certificate numbers, each request
from its own X-Forwarded-For address, as phones would be, so the per-address limit does not
bite) measures, in one run:

- bare: GET /bare/<number> (the page's lookup, one SELECT, the stored text);
- json: GET /verify/<number>.json (lookup, memoised verification, ETag, Cache-Control);
- page: GET /verify/<number> (the HTML page: lookup, revocation lookup, template, CSRF cookie).

Targets: json and page throughput ≥ 0.5 of bare; p95 < 100 ms.

Each line also gives the CPU time the server process spent per request (from /proc, on
Linux) and the load generator's own CPU a request: on a small machine the client's share
bounds every target alike, and the servers' CPU a request is the cost the ratio is about.

    .venv/bin/python benchmarks/verify_page.py [--credentials N] [--concurrency C] [--seconds D]
"""

import argparse
import asyncio
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

import httpx

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


def measure(
    url: str, pid: int, numbers: list[str], concurrency: int, seconds: float
) -> dict[str, float]:
    """The load on ``url``, with the CPU the serving process ``pid`` and this one spent."""
    server, client = cpu_seconds(pid), time.process_time()
    result = asyncio.run(load(url, numbers, concurrency, seconds))
    requests = result["requests"] or 1
    result["server_cpu_ms"] = (cpu_seconds(pid) - server) * 1000 / requests
    result["client_cpu_ms"] = (time.process_time() - client) * 1000 / requests
    return result


async def load(url: str, numbers: list[str], concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    rng = random.Random(3)
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker(n: int) -> None:
            nonlocal errors
            while time.monotonic() < stop:
                number = rng.choice(numbers)
                headers = {"X-Forwarded-For": f"10.{n}.{rng.randrange(256)}.{rng.randrange(256)}"}
                began = time.perf_counter()
                answer = await client.get(url.format(number=number), headers=headers)
                latencies.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    errors += 1

        began = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
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
            for url, _ in targets.values():  # warm both servers (imports, memo) untimed
                asyncio.run(load(url, numbers, args.concurrency, 1.5))
            results = {
                name: measure(url, pid, numbers, args.concurrency, args.seconds)
                for name, (url, pid) in targets.items()
            }
        finally:
            for process in (portal, bare):
                process.terminate()
                process.wait(timeout=10)
    print(
        f"{args.credentials} credentials, {args.concurrency} concurrent clients, "
        f"{args.seconds:g} s per target, one uvicorn worker per server"
    )
    for name, r in results.items():
        print(
            f"{name:5} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms"
            f"  errors {r['errors']:.0f}  ({r['requests']:.0f} requests)"
        )
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
