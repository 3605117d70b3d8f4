"""E-certificates: N credentials signed by both parties and issued, against raw Ed25519; verified.

Synthetic schools (batches of 50–950 passing candidates, synthetic ID numbers) are processed
in chunks; for each chunk, in turn:

- **raw**: two Ed25519 signatures per credential (one per party) over a 200-byte message,
  prebuilt before the clock starts: the least that signing every credential by both parties
  would cost;
- **examflow**: per school batch, ``sign_batch`` by the organiser and by the school (each
  builds and canonicalises every credential document and its Merkle tree), then
  ``issue_credentials`` (builds them again, verifies both batch signatures, adds the two
  proofs) and ``json.dumps`` of every credential: the whole path from batch to file content;
- **verify**: one ``CredentialVerifier`` over every credential parsed from its JSON (each
  batch signature costs one Ed25519 verification, each credential's content is hashed and
  both Merkle paths walked); parsing is timed separately.

Interleaving the chunks spreads load changes on a shared machine over both sides of the ratio.
Afterwards, for information, a sample is verified **cold** (a fresh verifier per credential,
so two Ed25519 verifications each, as ``examflow certificates verify FILE`` does).

    .venv/bin/python benchmarks/certificates.py [--credentials 200000] [--chunks 8]
"""

import argparse
import json
import os
import random
import time
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from examflow.synthetic import make_id_number, make_name
from models.credentials.batch import BatchEntry, CertificateBatch
from models.credentials.keys import ORGANISER, KeyRegistry, public_key_b64, registry
from models.credentials.signing import issue_credentials, sign_batch
from models.credentials.verification import CredentialVerifier, verify_credential
from models.domain import SHANGHAI, Level

LEVELS = list(Level)
VALID_FROM = datetime(2024, 6, 1, tzinfo=SHANGHAI)
SIGNED_AT = datetime(2024, 6, 2, 10, tzinfo=SHANGHAI)


def make_batches(total: int, rng: random.Random) -> list[CertificateBatch]:
    """Schools of 50–950 certificates until ``total``; synthetic names and IDs only."""
    batches: list[CertificateBatch] = []
    made = 0
    while made < total:
        size = min(rng.randint(50, 950), total - made)
        school = f"S{len(batches) + 1:05d}"
        entries = [
            BatchEntry.for_candidate(
                certificate_number=f"2024-1-{made + i + 1:07d}",
                name=make_name(rng),
                ticket_number=f"2401{made + i + 1:08d}",
                level=rng.choice(LEVELS),
                score=rng.randint(60, 100),
                id_number=make_id_number(rng),
                id_salt=f"{rng.getrandbits(128):032x}",
            )
            for i in range(size)
        ]
        batches.append(
            CertificateBatch(
                sitting_code="2024-1",
                certificate="网店运营推广职业技能等级证书",
                school_code=school,
                school_name=f"第{len(batches) + 1}职业技术学院",
                issuer_id="https://exam.example.cn",
                issuer_name="考试组织方",
                valid_from=VALID_FROM,
                entries=tuple(entries),
            )
        )
        made += size
    return batches


Clock = tuple[float, float]  # (wall, CPU) seconds


class Timer:
    """Accumulated wall-clock and process CPU seconds per label: on a shared machine the CPU
    figures show what the code costs, the wall figures what a user would wait."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @staticmethod
    def now() -> Clock:
        return time.perf_counter(), time.process_time()

    def add(self, label: str, started: Clock) -> Clock:
        now = self.now()
        self.wall[label] = self.wall.get(label, 0.0) + now[0] - started[0]
        self.cpu[label] = self.cpu.get(label, 0.0) + now[1] - started[1]
        return now


def raw_signs(keys: list[Ed25519PrivateKey], count: int, timer: Timer) -> None:
    messages = [os.urandom(200) for _ in range(count)]
    organiser, school = keys[0], keys[1]
    started = timer.now()
    for message in messages:
        organiser.sign(message)
        school.sign(message)
    timer.add("raw", started)


def examflow_issue(
    batches: list[CertificateBatch],
    keys: dict[str, Ed25519PrivateKey],
    trusted: KeyRegistry,
    timer: Timer,
) -> list[bytes]:
    files: list[bytes] = []
    for batch in batches:
        started = timer.now()
        signatures = [
            sign_batch(batch, ORGANISER, keys[ORGANISER], SIGNED_AT, trusted),
            sign_batch(batch, batch.school_code, keys[batch.school_code], SIGNED_AT, trusted),
        ]
        started = timer.add("sign", started)
        documents = issue_credentials(batch, signatures, trusted)
        started = timer.add("issue", started)
        files.extend(json.dumps(d, ensure_ascii=False).encode("utf-8") for d in documents)
        timer.add("json", started)
    return files


def verify_all(files: list[bytes], verifier: CredentialVerifier, timer: Timer) -> None:
    started = timer.now()
    documents = [json.loads(file) for file in files]
    started = timer.add("parse", started)
    for document in documents:
        if not verifier.verify(document).ok:
            raise SystemExit(f"a credential did not verify: {verifier.verify(document)}")
    timer.add("verify", started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--credentials", type=int, default=200_000)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--cold-sample", type=int, default=2_000)
    args = parser.parse_args()

    rng = random.Random(2024)
    setup_started = time.perf_counter()
    batches = make_batches(args.credentials, rng)
    parties = [ORGANISER, *(batch.school_code for batch in batches)]
    keys = {party: Ed25519PrivateKey.generate() for party in parties}
    trusted = registry((party, public_key_b64(key)) for party, key in keys.items())
    print(
        f"{args.credentials:,} credentials in {len(batches)} school batches "
        f"(setup {time.perf_counter() - setup_started:.1f} s, not timed)"
    )

    timer = Timer()
    verifier = CredentialVerifier(trusted)
    raw_keys = [keys[ORGANISER], keys[parties[1]]]
    sample: list[bytes] = []
    for chunk in range(args.chunks):
        part = batches[chunk :: args.chunks]
        raw_signs(raw_keys, sum(len(batch.entries) for batch in part), timer)
        files = examflow_issue(part, keys, trusted, timer)
        verify_all(files, verifier, timer)
        sample.extend(rng.sample(files, min(len(files), args.cold_sample // args.chunks)))
        del files

    cold = Timer()
    started = cold.now()
    for file in sample:
        if not verify_credential(json.loads(file), trusted).ok:
            raise SystemExit("a sampled credential did not verify")
    cold.add("cold", started)
    report(args.credentials, timer, len(batches), len(sample), cold)


def report(n: int, timer: Timer, batch_count: int, sampled: int, cold: Timer) -> None:
    def line(label: str, labels: list[str], count: int) -> None:
        wall = sum(timer.wall[name] for name in labels)
        cpu = sum(timer.cpu[name] for name in labels)
        rates = f"{wall:7.2f} s {count / wall:9,.0f}/s   CPU {cpu:7.2f} s {count / cpu:9,.0f}/s"
        print(f"{label:<38} {rates}")

    examflow = ["sign", "issue", "json"]
    line("raw Ed25519, 2 signs per credential", ["raw"], n)
    line("examflow sign + issue + json.dumps", examflow, n)
    print(
        "  of which "
        + ", ".join(f"{name} {timer.wall[name]:.2f} s" for name in examflow)
        + f" ({2 * batch_count} Ed25519 signatures in all)"
    )
    for clock, name in ((timer.wall, "wall"), (timer.cpu, "CPU")):
        ratio = sum(clock[label] for label in examflow) / clock["raw"]
        verdict = "met" if ratio <= 3 else "MISSED"
        print(f"ratio examflow/raw ({name}): {ratio:.2f}  (target <= 3: {verdict})")
    line("verify, one verifier", ["verify"], n)
    line("verify incl. json.loads", ["verify", "parse"], n)
    for clock, name in ((timer.wall, "wall"), (timer.cpu, "CPU")):
        rate = n / clock["verify"]
        verdict = "met" if rate >= 5000 else "MISSED"
        print(
            f"verification rate ({name}): {rate:,.0f} credentials/s  (target >= 5,000/s: {verdict})"
        )
    print(
        f"verify cold, a fresh verifier per credential (2 Ed25519 verifications each, "
        f"json.loads included), {sampled:,} sampled: {sampled / cold.wall['cold']:,.0f}/s wall, "
        f"{sampled / cold.cpu['cold']:,.0f}/s CPU (for information)"
    )


if __name__ == "__main__":
    main()
