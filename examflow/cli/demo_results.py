"""The end of the demo's sitting: scores, a late review, two-party signing (one school lags)."""

import zlib
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from examflow.db import session_scope
from examflow.settings import get_settings
from models.attendance import Attendance
from models.certificates import build_batches, register_key, sign
from models.credentials.keys import ORGANISER, generate_keypair
from models.scores import ReviewItem, ReviewRequest, file_review, import_scores, resolve_review
from models.sittings import get_sitting
from models.table import Table

REVIEWING_SCHOOL_INDEX = 0  # the first school with results files a review, resolved late


def record_scores(sitting: str, when: datetime) -> None:
    """Every present candidate gets a score (40–100, fixed per ticket)."""
    with session_scope() as session:
        present = session.exec(
            select(Attendance.ticket_number).where(
                Attendance.sitting_code == sitting, col(Attendance.present).is_(True)
            )
        ).all()
        rows = [
            (
                i + 2,
                {
                    "ticket_number": t,
                    "id_number": "",
                    "score": str(40 + zlib.crc32(t.encode()) % 61),
                },
            )
            for i, t in enumerate(sorted(present))
        ]
        import_scores(session, get_sitting(session, sitting), Table(rows=rows, warnings=[]), when)


def file_demo_review(sitting: str, when: datetime) -> None:
    """One school asks for a review of its first failing candidate (once)."""
    with session_scope() as session:
        if session.exec(select(ReviewRequest).where(ReviewRequest.sitting_code == sitting)).first():
            return
        from models.publicity import results_by_school

        by_school = results_by_school(session, sitting)
        for school, rows in sorted(by_school.items()):
            failing = [r for r in rows if r["result"] == "不合格"]
            if failing:
                table = Table(
                    rows=[
                        (
                            2,
                            {
                                "ticket_number": str(failing[0]["ticket_number"]),
                                "id_number": "",
                                "reason": "复核",
                            },
                        )
                    ],
                    warnings=[],
                )
                file_review(session, get_sitting(session, sitting), school, table, when)
                return


def resolve_demo_reviews(sitting: str, when: datetime) -> list[str]:
    """Ops resolve every open review: the score stands."""
    with session_scope() as session:
        row = get_sitting(session, sitting)
        open_ids = sorted(
            {
                rid
                for rid in session.exec(
                    select(ReviewItem.request_id).where(col(ReviewItem.resolved_at).is_(None))
                )
            }
        )
        for request_id in open_ids:
            resolve_review(session, row, request_id, None, when)
    return [f"review {i}" for i in open_ids]


class Signers:
    """Demo keys, made once per demo run and registered (the private keys stay in memory)."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}

    def key(self, party: str, when: datetime) -> Any:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        if party not in self.keys:
            pem, public = generate_keypair()
            with session_scope() as session:
                register_key(session, party, public, when)
            self.keys[party] = load_pem_private_key(pem, password=None)
        return self.keys[party]

    def sign_all(self, sitting: str, when: datetime, except_schools: tuple[str, ...] = ()) -> None:
        with session_scope() as session:
            schools = sorted(build_batches(session, get_sitting(session, sitting), None))
        for party in [ORGANISER, *schools]:
            if party in except_schools:
                continue
            key = self.key(party, when)
            with session_scope() as session:
                sitting_row = get_sitting(session, sitting)
                sign(session, sitting_row, party, key, when, get_settings().public_url)

    def laggard(self, sitting: str) -> str:
        with session_scope() as session:
            schools = sorted(build_batches(session, get_sitting(session, sitting), None))
        return schools[-1]
