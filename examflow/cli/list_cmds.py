"""What ops see without SQL: seats, scores, attendance, review requests, keys, certificates.

No ID number is ever shown: a candidate is named by ticket number and name."""

import json

import typer
from sqlmodel import Session, col, select

from examflow.cli.console import fail, out
from examflow.db import session_scope
from models.arrangement import SeatAssignment
from models.attendance import Attendance
from models.certificates import IssuedCertificate, PartyKey
from models.domain import in_shanghai
from models.registration import Registration
from models.scores import ReviewItem, ReviewRequest, Score
from models.sittings import UnknownSittingError, get_sitting

SITE_HELP = "One site (考点代码)."
JSON_HELP = "Print a JSON list."


def _check_sitting(session: Session, sitting: str) -> None:
    try:
        get_sitting(session, sitting)
    except UnknownSittingError as exc:
        fail(str(exc))


def _emit(rows: list[dict[str, object]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    out.print("\t".join(columns), highlight=False)
    for row in rows:
        out.print("\t".join(str(row[c]) for c in columns), highlight=False, markup=False)
    out.print(f"{len(rows)} row(s)")


def seats(
    sitting: str,
    site: str | None = typer.Option(None, help=SITE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The room arrangement: site, room, seat, ticket number, name and level."""
    with session_scope() as session:
        _check_sitting(session, sitting)
        query = (
            select(SeatAssignment, Registration.name)
            .join(Registration, col(Registration.id) == col(SeatAssignment.registration_id))
            .where(SeatAssignment.sitting_code == sitting)
        )
        if site:
            query = query.where(SeatAssignment.site_code == site)
        rows: list[dict[str, object]] = [
            {
                "site": a.site_code,
                "room": a.room,
                "seat": a.seat,
                "ticket_number": a.ticket_number,
                "name": name,
                "level": a.level,
            }
            for a, name in session.exec(query)
        ]
    rows.sort(key=lambda r: (str(r["site"]), str(r["room"]), str(r["seat"]).zfill(6)))
    _emit(rows, as_json, ["site", "room", "seat", "ticket_number", "name", "level"])


def scores_list(
    sitting: str,
    site: str | None = typer.Option(None, help=SITE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Recorded scores: ticket number, name, level, school, site, score, passed."""
    with session_scope() as session:
        _check_sitting(session, sitting)
        query = (
            select(Score, Registration)
            .join(Registration, col(Registration.id) == col(Score.registration_id))
            .where(Score.sitting_code == sitting)
            .order_by(col(Score.ticket_number))
        )
        if site:
            query = query.where(Registration.site_code == site)
        rows: list[dict[str, object]] = [
            {
                "ticket_number": s.ticket_number,
                "name": r.name,
                "level": r.level,
                "school": r.school_code,
                "site": r.site_code,
                "score": s.score,
                "passed": s.passed,
            }
            for s, r in session.exec(query)
        ]
    _emit(rows, as_json, ["ticket_number", "name", "level", "school", "site", "score", "passed"])


def attendance_list(
    sitting: str,
    site: str | None = typer.Option(None, help=SITE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Recorded attendance: ticket number, name, level, site, present."""
    with session_scope() as session:
        _check_sitting(session, sitting)
        query = (
            select(Attendance, SeatAssignment, Registration.name)
            .join(
                SeatAssignment, col(SeatAssignment.ticket_number) == col(Attendance.ticket_number)
            )
            .join(Registration, col(Registration.id) == col(SeatAssignment.registration_id))
            .where(Attendance.sitting_code == sitting)
            .order_by(col(Attendance.ticket_number))
        )
        if site:
            query = query.where(SeatAssignment.site_code == site)
        rows: list[dict[str, object]] = [
            {
                "ticket_number": a.ticket_number,
                "name": name,
                "level": seat.level,
                "site": seat.site_code,
                "present": a.present,
            }
            for a, seat, name in session.exec(query)
        ]
    _emit(rows, as_json, ["ticket_number", "name", "level", "site", "present"])


def review_list(
    sitting: str, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)
) -> None:
    """Review requests: id, school, state (open until every item is resolved), items."""
    with session_scope() as session:
        _check_sitting(session, sitting)
        requests = session.exec(
            select(ReviewRequest)
            .where(ReviewRequest.sitting_code == sitting)
            .order_by(col(ReviewRequest.id))
        ).all()
        rows: list[dict[str, object]] = []
        for request in requests:
            items = session.exec(
                select(ReviewItem)
                .where(ReviewItem.request_id == request.id)
                .order_by(col(ReviewItem.ticket_number))
            ).all()
            resolved = all(i.resolved_at is not None for i in items)
            rows.append(
                {
                    "id": request.id,
                    "school": request.school_code,
                    "filed_at": in_shanghai(request.filed_at).isoformat(timespec="seconds"),
                    "state": "resolved" if resolved else "open",
                    "items": [
                        {
                            "ticket_number": i.ticket_number,
                            "score_before": i.score_before,
                            "score_after": i.score_after,
                        }
                        for i in items
                    ],
                }
            )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        tickets = ", ".join(str(i["ticket_number"]) for i in row["items"])  # type: ignore[attr-defined]
        out.print(f"{row['id']}\t{row['school']}\t{row['state']}\t{tickets}", markup=False)
    out.print(f"{len(rows)} request(s)")


def keys_list(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Registered signing keys: key id, party, public key (base64), registered at."""
    with session_scope() as session:
        rows: list[dict[str, object]] = [
            {
                "key_id": k.key_id,
                "party": k.party,
                "public_key": k.public_key_b64,
                "created_at": in_shanghai(k.created_at).isoformat(timespec="seconds"),
            }
            for k in session.exec(
                select(PartyKey).order_by(col(PartyKey.party), col(PartyKey.created_at))
            )
        ]
    _emit(rows, as_json, ["key_id", "party", "public_key", "created_at"])


def issued_certificates(session: Session, sitting: str) -> list[dict[str, object]]:
    """Issued e-certificates: number, holder's name, level, school, issued at (Shanghai)."""
    query = (
        select(IssuedCertificate, Registration)
        .join(Registration, col(Registration.id) == col(IssuedCertificate.registration_id))
        .where(IssuedCertificate.sitting_code == sitting)
        .order_by(col(IssuedCertificate.certificate_number))
    )
    return [
        {
            "number": c.certificate_number,
            "name": r.name,
            "level": r.level,
            "school": c.school_code,
            "issued_at": in_shanghai(c.issued_at).isoformat(timespec="seconds"),
        }
        for c, r in session.exec(query)
    ]
