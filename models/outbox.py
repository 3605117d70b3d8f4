"""The outbox: every message examflow means to send, queued once under a unique key and
delivered by ``notifications.sender``.

The key says how often a message may go: an *announcement* (a window opens, the results, a
review's outcome) once per (sitting, stage, checkpoint, recipient), whatever day a re-run
happens; any other message (a reminder, an escalation, the go/no-go) once per checkpoint day.
Which templates are announcements is :data:`ANNOUNCEMENT_TEMPLATES`, and nowhere else.

A row is ``pending`` until a server accepted it (``sent``) or refused it for good
(``failed``); :func:`mark_sent`, :func:`mark_failed` and :func:`record_attempt` are those
transitions. A delivery sends only rows it has *claimed* (:func:`claim_pending`): a lease on
the row, an owner and an expiry, taken by one statement that skips rows another live owner
holds (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: a guarded UPDATE, its writes being
serialised), so deliveries running at once never send the same row; a lease whose owner died
is taken over once it has expired. Lease times come in as arguments (no clock here).
Queueing the same drafts again inserts nothing and returns only the rows that have not gone
out yet, so a re-run re-delivers what did not go out and never re-sends what did.
"""

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from email.headerregistry import HeaderRegistry
from email.utils import getaddresses
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, field_validator, model_validator
from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Row,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel

KEY_SEPARATOR = "|"
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(rf'{_TOKEN}/{_TOKEN}(?: ?; ?{_TOKEN}=(?:{_TOKEN}|"[^"\\\r\n]*"))*')


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; read back as an aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give an aware datetime (stored as UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxContent(SQLModel):
    """A message as its caller describes it: the fields a draft and an outbox row share."""

    sitting_code: str = Field(index=True)
    stage: str
    checkpoint: str
    day: date
    recipient_ref: str
    to_addr: str
    cc_addr: str | None = None
    subject: str
    text_body: str
    html_body: str
    attachment_name: str | None = None
    attachment_type: str | None = None
    attachment: bytes | None = None


class OutboxMessageBase(OutboxContent):
    key: str
    message_id: str
    status: OutboxStatus = Field(default=OutboxStatus.pending, index=True)
    attempts: int = 0
    last_error: str | None = None
    queued_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxMessage(OutboxMessageBase, table=True):
    __table_args__ = (UniqueConstraint("key", name="uq_outboxmessage_key"),)

    id: int | None = Field(default=None, primary_key=True)
    lease_owner: str | None = None
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


ONCE = "once"
"""The day part of an announcement's key: the same on every day."""

ANNOUNCEMENT_TEMPLATES = frozenset({"window_open", "publicity_results", "review_resolved"})
"""Templates that announce something: sent once per recipient per sitting, stage and
checkpoint, whatever day a re-run happens. Every other template (reminders, the stall
escalation, the go/no-go) may go again on another day, once a day."""


def is_announcement(template: str) -> bool:
    """Whether a message rendered from ``template`` goes once, not once a day."""
    return template in ANNOUNCEMENT_TEMPLATES


def outbox_key(
    sitting: str,
    stage: str,
    checkpoint: str,
    day: date,
    recipient_ref: str,
    *,
    once: bool = False,
) -> str:
    """The unique key of a message: ``sitting|stage|checkpoint|day|recipient``, with the day
    part ``once`` for an announcement (the same key on every day)."""
    day_part = ONCE if once else day.isoformat()
    parts = (str(sitting), str(stage), str(checkpoint), day_part, str(recipient_ref))
    for part in parts:
        if not part or KEY_SEPARATOR in part or "\r" in part or "\n" in part:
            raise ValueError(
                f"outbox key part {part!r} must be non-empty, without {KEY_SEPARATOR!r} or CR/LF"
            )
    return KEY_SEPARATOR.join(parts)


_HEADERS = HeaderRegistry()
# The everyday case, a bare dot-atom addr-spec (what the register holds): accepted without the
# full RFC 5322 parser, which costs ~0.1 ms an address at national fan-out scale.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


def check_single_address(value: str, field: str = "address") -> str:
    """``value`` if it is exactly one well-formed address (display name allowed), else ValueError.

    Refuses CR/LF (header injection), lists, groups, missing local part or domain, and
    non-ASCII addr-specs (those need SMTPUTF8 on every hop; a display name may be Chinese).
    """
    if "\r" in value or "\n" in value:
        raise ValueError(f"{field} must not contain CR or LF")
    value = value.strip()
    if not value:
        raise ValueError(f"{field} is empty")
    if _PLAIN_ADDRESS.fullmatch(value):
        return value
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise ValueError(f"{field} must be exactly one address")
    try:
        header: Any = _HEADERS("To", value)
    except Exception as exc:  # the header parser raises several types on garbage
        raise ValueError(f"{field} is not a well-formed address") from exc
    addresses = header.addresses
    if header.defects or len(addresses) != 1 or len(header.groups) != 1:
        raise ValueError(f"{field} must be exactly one well-formed address")
    if header.groups[0].display_name is not None:
        raise ValueError(f"{field} must not be a group")
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError(f"{field} needs a local part and a domain")
    if address.addr_spec != pairs[0][1]:
        raise ValueError(f"{field} is ambiguous")
    if not address.addr_spec.isascii():
        raise ValueError(f"{field} must have an ASCII address (the display name may be Chinese)")
    return value


def message_domain(mail_from: str) -> str:
    """The domain of the sender's address, for Message-IDs (``examflow`` when there is none)."""
    _name, addr = getaddresses([mail_from])[0] if mail_from else ("", "")
    local, at, domain = addr.rpartition("@")
    domain = domain.strip()
    if not (local and at and domain) or not _safe_domain(domain):
        return "examflow"
    return domain


def _safe_domain(domain: str) -> bool:
    return domain.isascii() and not any(c in domain for c in ' \t\r\n<>@()[],;:\\"')


class MessageDraft(OutboxContent):
    """Everything a caller provides for one message; the outbox adds the rest when queueing.

    ``once`` marks an announcement (see :func:`is_announcement`): its key has no day, so it
    is queued once whatever the day. ``key`` may be left empty: it is then built with
    :func:`outbox_key`; when given it must equal that.
    """

    model_config = ConfigDict(frozen=True)  # type: ignore[assignment]

    key: str = ""
    once: bool = False

    @field_validator("to_addr")
    @classmethod
    def _to_is_one_address(cls, value: str) -> str:
        return check_single_address(value, "to_addr")

    @field_validator("cc_addr")
    @classmethod
    def _cc_is_one_address(cls, value: str | None) -> str | None:
        return None if value is None else check_single_address(value, "cc_addr")

    @field_validator("subject")
    @classmethod
    def _subject_is_one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("subject must not contain CR or LF")
        if not value.strip():
            raise ValueError("subject is empty")
        return value

    @field_validator("attachment_name", "attachment_type")
    @classmethod
    def _attachment_header_is_one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value or not value.strip()):
            raise ValueError("attachment name and type must be non-empty, without CR or LF")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "MessageDraft":
        expected = outbox_key(
            self.sitting_code,
            self.stage,
            self.checkpoint,
            self.day,
            self.recipient_ref,
            once=self.once,
        )
        if not self.key:
            object.__setattr__(self, "key", expected)
        elif self.key != expected:
            raise ValueError(f"key {self.key!r} is not outbox_key(...) = {expected!r}")
        given = (
            self.attachment is not None,
            bool(self.attachment_name),
            bool(self.attachment_type),
        )
        if any(given) and not all(given):
            raise ValueError("attachment, attachment_name and attachment_type go together")
        if self.attachment_type is not None and not _CONTENT_TYPE.fullmatch(self.attachment_type):
            raise ValueError(
                "attachment_type must look like 'text/calendar' or 'text/calendar; method=PUBLISH'"
            )
        return self


_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


_KEYS_PER_QUERY = 1000


def _key_chunks(keys: Iterable[str]) -> list[list[str]]:
    ordered = sorted(keys)
    return [ordered[i : i + _KEYS_PER_QUERY] for i in range(0, len(ordered), _KEYS_PER_QUERY)]


def _insert_ignoring_conflicts(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["key"])
    if dialect == "postgresql":
        return postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["key"])
    return insert(_TABLE)


def queue_messages(
    session: Session, drafts: Sequence[MessageDraft], *, queued_at: datetime, mail_domain: str
) -> list[int]:
    """Queue ``drafts``; return the ids of all their rows that are still pending, ascending.

    Drafts whose key is already in the outbox are not inserted again (whatever their
    status, and whatever day an announcement was first queued); of several drafts with the
    same key, the first counts. The existing keys are read by key, a thousand a query, and
    the new rows inserted in bulk (a concurrent insert of the same key is ignored, not an
    error). Each new row gets a stable Message-ID ``<hex@mail_domain>``. The caller commits.
    """
    if queued_at.tzinfo is None:
        raise ValueError("queued_at must be an aware datetime")
    if not mail_domain or not _safe_domain(mail_domain):
        raise ValueError(f"mail_domain {mail_domain!r} is not a plain domain")
    if not drafts:
        return []
    unique: dict[str, MessageDraft] = {}
    for draft in drafts:
        unique.setdefault(draft.key, draft)
    chunks = _key_chunks(unique)
    conn = session.connection()
    t = _TABLE.c
    existing: set[str] = set()
    for chunk in chunks:
        existing.update(conn.execute(select(t.key).where(t.key.in_(chunk))).scalars())
    when = queued_at.astimezone(UTC)
    new_rows = [
        {
            **draft.model_dump(exclude={"once"}),
            "message_id": f"<{uuid.uuid4().hex}@{mail_domain}>",
            "status": OutboxStatus.pending,
            "attempts": 0,
            "last_error": None,
            "queued_at": when,
            "sent_at": None,
        }
        for key, draft in unique.items()
        if key not in existing
    ]
    if new_rows:
        conn.execute(_insert_ignoring_conflicts(session), new_rows)
    pending: list[int] = []
    for chunk in chunks:
        query = select(t.id).where(t.key.in_(chunk), t.status == OutboxStatus.pending)
        pending.extend(conn.execute(query).scalars())
    return sorted(pending)


def outbox_counts(
    session: Session, sitting_code: str, stage: str | None = None
) -> dict[OutboxStatus, int]:
    """How many messages of a sitting (optionally one stage) are pending, sent and failed."""
    t = _TABLE.c
    query = select(t.status, func.count()).where(t.sitting_code == sitting_code)
    if stage is not None:
        query = query.where(t.stage == stage)
    counts = dict.fromkeys(OutboxStatus, 0)
    for status, count in session.connection().execute(query.group_by(t.status)):
        counts[OutboxStatus(status)] = count
    return counts


# --- status transitions: pending -> sent | failed; each one Core statement, the caller commits


_MARK_SENT = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(
        status=OutboxStatus.sent,
        sent_at=bindparam("sent_at", type_=UTCDateTime()),
        attempts=_TABLE.c.attempts + 1,
        last_error=bindparam("note"),
        lease_owner=None,
        lease_expires_at=None,
    )
)
_MARK_FAILED = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(
        status=OutboxStatus.failed,
        attempts=_TABLE.c.attempts + 1,
        last_error=bindparam("error"),
        lease_owner=None,
        lease_expires_at=None,
    )
)
_RECORD_ATTEMPT = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(attempts=_TABLE.c.attempts + 1, last_error=bindparam("error"))
)
_NOTE_PENDING = (
    update(_TABLE)
    .where(_TABLE.c.id.in_(bindparam("ids", expanding=True)))
    .where(_TABLE.c.status == OutboxStatus.pending)
    .values(last_error=bindparam("error"))
)


def mark_sent(conn: Connection, row_id: int, *, sent_at: datetime, note: str | None) -> None:
    """pending -> sent: a server accepted the message at ``sent_at`` (only then: undelivered
    mail is never marked sent). Counts the attempt; ``note`` says if some recipients (a copy,
    say) were refused, else None."""
    conn.execute(_MARK_SENT, {"row_id": row_id, "sent_at": sent_at, "note": note})


def mark_failed(conn: Connection, row_id: int, error: str) -> None:
    """pending -> failed: refused for good (or cannot be built); counts the attempt."""
    conn.execute(_MARK_FAILED, {"row_id": row_id, "error": error})


def record_attempt(conn: Connection, row_id: int, error: str) -> None:
    """A failed attempt that may succeed later: the row stays pending, with the error."""
    conn.execute(_RECORD_ATTEMPT, {"row_id": row_id, "error": error})


def note_still_pending(conn: Connection, row_ids: Sequence[int], error: str) -> None:
    """Say on those of ``row_ids`` that are still pending why (delivery stopped, say)."""
    ids = list(row_ids)
    for start in range(0, len(ids), _KEYS_PER_QUERY):
        conn.execute(_NOTE_PENDING, {"ids": ids[start : start + _KEYS_PER_QUERY], "error": error})


# --- leases: a delivery claims rows before it sends them ------------------------------------


def _free_at(now: datetime) -> Any:
    t = _TABLE.c
    return or_(t.lease_owner.is_(None), t.lease_expires_at <= now)


def claim_pending(
    conn: Connection,
    row_ids: Sequence[int],
    *,
    owner: str,
    now: datetime,
    until: datetime,
    limit: int,
    columns: Sequence[Any] = (),
) -> list[Row[Any]]:
    """Lease to ``owner`` until ``until`` at most ``limit`` of ``row_ids`` that are pending and
    free (no lease, or one expired by ``now``), lowest ids first; return them (``id`` and
    ``columns``), ascending. One statement: on PostgreSQL the rows are picked ``FOR UPDATE SKIP
    LOCKED`` (a row another transaction is claiming is passed over, not waited for); on SQLite
    the statement holds the write lock. Either way the lease is re-checked as the row is
    updated, so two owners never hold the same row. The caller commits."""
    ids = list(row_ids)[:_KEYS_PER_QUERY]
    if not ids or limit < 1:
        return []
    t = _TABLE.c
    pick = (
        select(t.id)
        .where(t.id.in_(ids), t.status == OutboxStatus.pending, _free_at(now))
        .order_by(t.id)
        .limit(limit)
    )
    guarded = (t.status == OutboxStatus.pending, _free_at(now))
    if conn.dialect.name == "postgresql":
        # a materialised CTE: the LIMITed pick runs once (as an IN subquery the planner may
        # run it again per row, taking more than ``limit``)
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        claim = update(_TABLE).where(t.id == picked.c.id, *guarded)
    else:
        claim = update(_TABLE).where(t.id.in_(pick.scalar_subquery()), *guarded)
    claim = claim.values(lease_owner=owner, lease_expires_at=until).returning(t.id, *columns)
    return sorted(conn.execute(claim).all(), key=lambda row: int(row.id))


_RENEW = (
    update(_TABLE)
    .where(_TABLE.c.lease_owner == bindparam("owner"))
    .where(_TABLE.c.status == OutboxStatus.pending)
    .values(lease_expires_at=bindparam("until", type_=UTCDateTime()))
)
_RELEASE = (
    update(_TABLE)
    .where(_TABLE.c.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_expires_at=None)
)


def renew_leases(conn: Connection, owner: str, until: datetime) -> int:
    """Extend every lease ``owner`` holds on a pending row to ``until``; how many."""
    return int(conn.execute(_RENEW, {"owner": owner, "until": until}).rowcount)


def release_leases(conn: Connection, owner: str, row_ids: Sequence[int] | None = None) -> None:
    """Give up ``owner``'s leases (on ``row_ids`` only, if given): the rows are free again."""
    if row_ids is None:
        conn.execute(_RELEASE, {"owner": owner})
        return
    ids = list(row_ids)
    for start in range(0, len(ids), _KEYS_PER_QUERY):
        chunk = ids[start : start + _KEYS_PER_QUERY]
        conn.execute(_RELEASE.where(_TABLE.c.id.in_(chunk)), {"owner": owner})


def still_pending(
    conn: Connection, row_ids: Sequence[int], *, owner: str, now: datetime
) -> tuple[list[int], list[int]]:
    """Of ``row_ids``, those still pending: (free to claim at ``now``, held by another owner's
    live lease), each ascending."""
    t = _TABLE.c
    free: list[int] = []
    held: list[int] = []
    ids = list(row_ids)
    for start in range(0, len(ids), _KEYS_PER_QUERY):
        chunk = ids[start : start + _KEYS_PER_QUERY]
        query = select(t.id, t.lease_owner, t.lease_expires_at).where(
            t.id.in_(chunk), t.status == OutboxStatus.pending
        )
        for row_id, lease_owner, expires in conn.execute(query):
            if lease_owner is None or expires is None or expires <= now:
                free.append(row_id)
            elif lease_owner != owner:
                held.append(row_id)
    return sorted(free), sorted(held)
