"""E-certificates (电子版证书): batches per school, two-party signatures, issuance, paper requests.

A school's batch holds its passing candidates after publicity. Both the organiser and the
school sign it (``models.credentials``); a review that changes the batch voids both
signatures. Only with both valid signatures, and the publicity window passed, are the
credentials issued — once: re-runs reproduce the same documents and store nothing new.

Certificate numbers are ``WD`` + the ticket number (unique nationwide, stable).

Keys: ops make keys with ``keys new`` (approved at once); a school may enrol a key from its
browser, which stays *pending* until ops approve it; a *revoked* key signs nothing more, and
its signatures on batches not yet issued are void (credentials already issued keep proofs
made before the revocation).

Revocation: every credential names a bit of its sitting's revocation list (a W3C Bitstring
Status List, ``models.credentials.status_list``), drawn at random (``StatusIndexAllocator``).
The index is assigned once per version of a candidate's entry: a review that changes an
issued entry gives the corrected credential a new index, and issuing it revokes the old one
(*superseded*). Ops revoke and unrevoke by number; the organiser signs the published list.

Where a sitting's list is published is part of every credential of the sitting (its
``credentialStatus``), hence of what both parties sign: the shells pass their public address
(``EXAMFLOW_PUBLIC_URL``) in, and the first signature or list of a sitting fixes the list's
address to ``<public address>/status/<sitting>/revocation`` (``StatusListAddress``), which
every later batch of the sitting keeps, whatever the setting says by then: a changed setting
must not void the signatures already made. Rules called without an address (the stages'
conditions) use the fixed one.
"""

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import UniqueConstraint, bindparam, or_
from sqlalchemy import func as sa_func
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from models.canonical_json import canonical_json
from models.condition import ORGANISER, Condition, Missing, Owed, PartyKind
from models.credentials.batch import BatchEntry, CertificateBatch, new_salt, timestamp
from models.credentials.errors import SignatureError, VoidSignatureError
from models.credentials.keys import RegisteredKey, key_id
from models.credentials.offline import BatchStatement, OfflineSignature, SigningRequest
from models.credentials.signing import (
    BatchSignature,
    check_batch_signatures,
    issue_credentials,
    sign_batch,
    verify_batch_signature,
)
from models.credentials.statement import (
    batch_digest,
    batch_root,
    proof_config,
    signing_input,
    statement,
    statement_digest,
)
from models.credentials.status_list import (
    MIN_BITS,
    list_length,
    sign_status_list,
    status_list_credential,
)
from models.domain import Level, StageCode, in_utc
from models.publicity import owned_by, result_owner
from models.registration import Registration
from models.schools import School
from models.scores import Score
from models.sittings import Sitting

ISSUER_ID = "https://www.hotmatrix.cn"
LEGACY_STATUS_LIST_BASE = ISSUER_ID
"""Where credentials issued before the public address was used say their list is (migration
0010 fixes it for the sittings that have signatures or credentials already), and what a rule
without an address uses for a sitting whose list has none fixed yet: no signature depends on
it then."""
SUPERSEDED_REASON = (
    "复核后成绩已更正，由重新签发的证书取代（superseded by a corrected certificate）"
)
NO_LONGER_PASSED_REASON = "复核后成绩未达合格标准，证书撤销（no longer passed after a review）"
HOLDER_CHECKS_PER_HOUR = 10  # ID checks against one certificate, from anyone
HOLDER_CHECKS_PER_CLIENT_PER_HOUR = 30  # ID checks from one client address, any certificate
SIGNATURE_CLOCK_SKEW = timedelta(minutes=5)
STATEMENT_LIFETIME = timedelta(hours=2)


class KeyStatus(StrEnum):
    approved = "approved"
    pending = "pending"  # enrolled from a school's browser, not yet confirmed by ops
    revoked = "revoked"


class PartyKeyBase(SQLModel):
    key_id: str = Field(primary_key=True)
    party: str = Field(index=True, description="'organiser' or a school code")
    public_key_b64: str = Field(unique=True)
    created_at: datetime
    status: str = Field(
        default=KeyStatus.approved.value,
        sa_column_kwargs={"server_default": KeyStatus.approved.value},
    )
    approved_at: datetime | None = None
    revoked_at: datetime | None = None


class PartyKey(PartyKeyBase, table=True):
    pass


class CertificateNumberBase(SQLModel):
    registration_id: int = Field(foreign_key="registration.id", unique=True)
    certificate_number: str = Field(unique=True)
    id_salt: str
    status_index: int | None = Field(default=None, unique=True, index=True)  # revocation bit
    entry_hash: str | None = None  # the entry's content when the index was last checked


class CertificateNumber(CertificateNumberBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class SignatureRecordBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    school_code: str
    party: str
    key_id: str
    batch_digest: str
    signature_b64: str
    created: str  # exactly what was signed


class SignatureRecord(SignatureRecordBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class IssuedCertificateBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    school_code: str
    registration_id: int = Field(foreign_key="registration.id", unique=True)
    certificate_number: str = Field(unique=True)
    batch_digest: str
    credential_json: str
    issued_at: datetime
    status_index: int | None = None  # the issued credential's bit in the revocation list


class IssuedCertificate(IssuedCertificateBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class PaperRequestBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code")
    school_code: str = Field(foreign_key="school.code")
    requested_at: datetime


class PaperRequest(PaperRequestBase, table=True):
    __table_args__ = (UniqueConstraint("sitting_code", "school_code"),)
    id: int | None = Field(default=None, primary_key=True)


class CertificateRevocation(SQLModel, table=True):
    """One revocation of one credential version (its status index); unrevoking keeps the row."""

    id: int | None = Field(default=None, primary_key=True)
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    certificate_number: str = Field(index=True)
    status_index: int = Field(index=True)
    reason: str
    revoked_at: datetime
    unrevoked_at: datetime | None = None
    superseded: bool = False  # replaced by a corrected credential: cannot be unrevoked


class StatusListRecord(SQLModel, table=True):
    """The organiser-signed revocation list of a sitting, as published."""

    sitting_code: str = Field(foreign_key="sitting.code", primary_key=True)
    purpose: str = Field(primary_key=True)
    credential_json: str
    signed_at: datetime


class StatusListAddress(SQLModel, table=True):
    """Where a sitting's revocation list is published, as its credentials say: fixed by the
    sitting's first signature (or list), kept for every later batch of the sitting."""

    sitting_code: str = Field(foreign_key="sitting.code", primary_key=True)
    url: str
    fixed_at: datetime


class HolderCheck(SQLModel, table=True):
    """That someone checked an ID number against a certificate, from where and when (the ID
    is not kept; the client address only as a hash): what limits those checks, per
    certificate and per client, across every portal worker."""

    id: int | None = Field(default=None, primary_key=True)
    certificate_number: str = Field(index=True)
    checked_at: datetime
    client_hash: str = Field(default="", index=True, sa_column_kwargs={"server_default": ""})


class CertificateError(ValueError):
    pass


class SigningRefused(CertificateError):
    """A school's signature from the portal that is not stored; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def register_key(
    session: Session,
    party: str,
    public_key_b64: str,
    as_of: datetime,
    status: KeyStatus = KeyStatus.approved,
) -> str:
    """Register a public key: approved (ops made it) or pending (a school's browser did)."""
    if party != ORGANISER and session.get(School, party) is None:
        raise CertificateError(f"{party!r} is neither 'organiser' nor a school in the register")
    kid = key_id(public_key_b64)
    if session.get(PartyKey, kid) is not None:
        raise CertificateError(f"key {kid} is already registered")
    session.add(
        PartyKey(
            key_id=kid,
            party=party,
            public_key_b64=public_key_b64,
            created_at=in_utc(as_of),
            status=status.value,
            approved_at=in_utc(as_of) if status is KeyStatus.approved else None,
        )
    )
    session.flush()
    return kid


def enrol_key(session: Session, school: str, public_key_b64: str, as_of: datetime) -> str:
    """A school's key from its browser: pending until ops approve it."""
    if school == ORGANISER:
        raise CertificateError("the organiser's keys are made by ops (keys new), not enrolled")
    return register_key(session, school, public_key_b64, as_of, KeyStatus.pending)


def _key(session: Session, kid: str) -> PartyKey:
    key = session.get(PartyKey, kid)
    if key is None:
        raise CertificateError(f"no key {kid}")
    return key


def approve_key(session: Session, kid: str, as_of: datetime) -> PartyKey:
    key = _key(session, kid)
    if key.status != KeyStatus.pending:
        raise CertificateError(f"key {kid} is {key.status}, not pending")
    key.status, key.approved_at = KeyStatus.approved.value, in_utc(as_of)
    session.add(key)
    session.flush()
    return key


def revoke_key(session: Session, kid: str, as_of: datetime) -> tuple[PartyKey, int]:
    """Revoke a key; returns it and how many of its signatures, on batches not issued from,
    are now void."""
    key = _key(session, kid)
    if key.status == KeyStatus.revoked:
        raise CertificateError(f"key {kid} is already revoked")
    key.status, key.revoked_at = KeyStatus.revoked.value, in_utc(as_of)
    session.add(key)
    issued = set(session.exec(select(IssuedCertificate.batch_digest).distinct()))
    voided = sum(
        1
        for digest in session.exec(
            select(SignatureRecord.batch_digest).where(SignatureRecord.key_id == kid)
        )
        if digest not in issued
    )
    session.flush()
    return key, voided


def keys_with_status(
    session: Session, status: KeyStatus, party: str | None = None
) -> list[PartyKey]:
    query = select(PartyKey).where(PartyKey.status == status.value)
    if party is not None:
        query = query.where(PartyKey.party == party)
    return list(session.exec(query.order_by(col(PartyKey.created_at))))


def keys_of(session: Session, party: str) -> list[PartyKey]:
    return list(
        session.exec(
            select(PartyKey).where(PartyKey.party == party).order_by(col(PartyKey.created_at))
        )
    )


def trusted_keys(session: Session) -> dict[str, RegisteredKey]:
    """The approved keys: what may sign, and what issuing accepts."""
    return {
        k.key_id: RegisteredKey(k.party, k.public_key_b64)
        for k in session.exec(select(PartyKey).where(PartyKey.status == KeyStatus.approved.value))
    }


# Read whenever the verification page meets a credential it has not verified yet: built
# once, as a statement built per call costs more (its cache key) than running it.
_VERIFICATION_KEYS = sa_select(
    col(PartyKey.key_id),
    col(PartyKey.party),
    col(PartyKey.public_key_b64),
    col(PartyKey.status),
    col(PartyKey.revoked_at),
).where(  # not in_(): its list is expanded at every execution
    or_(
        col(PartyKey.status) == KeyStatus.approved.value,
        col(PartyKey.status) == KeyStatus.revoked.value,
    )
)


def verification_keys(session: Session) -> dict[str, RegisteredKey]:
    """What a credential's proofs are checked against: approved keys, and revoked ones for
    proofs made before their revocation."""
    keys = {}
    for kid, party, public, status, revoked_at in session.connection().execute(_VERIFICATION_KEYS):
        if status == KeyStatus.revoked.value:
            assert revoked_at is not None
            keys[kid] = RegisteredKey(party, public, timestamp(in_utc(revoked_at)))
        else:
            keys[kid] = RegisteredKey(party, public)
    return keys


_PASSING = (
    sa_select(
        col(Registration.id),
        col(Registration.name),
        col(Registration.id_number),
        col(Score.ticket_number),
        col(Registration.level),
        col(Score.score),
        col(Registration.school_code),
        col(Registration.site_code),
    )
    .join(Score, col(Score.registration_id) == col(Registration.id))
    .where(col(Score.sitting_code) == bindparam("sitting"), col(Score.passed).is_(True))
)
# One party's, read on every page of the school portal: built once, as a statement built per
# call costs more (its cache key) than running it.
_PASSING_OF = _PASSING.where(owned_by(bindparam("party")))


def _passing(
    session: Session, sitting_code: str, party: str | None = None
) -> dict[str, list[tuple[int, str, str, str, str, int]]]:
    """Per school (or ``party`` alone, if given): (registration, name, id number, ticket,
    level, score) of passing candidates."""
    rows = (
        session.execute(_PASSING, {"sitting": sitting_code}).all()
        if party is None
        else session.execute(_PASSING_OF, {"sitting": sitting_code, "party": party}).all()
    )
    by_school: dict[str, list[tuple[int, str, str, str, str, int]]] = {}
    for rid, name, id_number, ticket, level, score, school, site in rows:
        by_school.setdefault(result_owner(school, site), []).append(
            (rid, name, id_number, ticket, level, score)
        )
    return by_school


def _numbers(
    session: Session, candidates: list[tuple[int, str, str, str, str, int]]
) -> dict[int, CertificateNumber]:
    """Certificate number and salt per registration, assigned once and then kept."""
    ids = [c[0] for c in candidates]
    known = {
        n.registration_id: n
        for n in session.exec(
            select(CertificateNumber).where(col(CertificateNumber.registration_id).in_(ids))
        )
    }
    for rid, _, _, ticket, _, _ in candidates:
        if rid not in known:
            known[rid] = row = CertificateNumber(
                registration_id=rid, certificate_number=f"WD{ticket}", id_salt=new_salt()
            )
            session.add(row)
    session.flush()
    return known


def status_list_url(public_url: str, sitting_code: str) -> str:
    """The address of ``sitting_code``'s revocation list on the portal at ``public_url``."""
    return f"{public_url.rstrip('/')}/status/{sitting_code}/revocation"


def list_address(session: Session, sitting_code: str, public_url: str | None) -> str:
    """Where the sitting's credentials say its revocation list is: the address fixed for the
    sitting, else the one at ``public_url`` (else the legacy one, for rules that have none)."""
    fixed = session.get(StatusListAddress, sitting_code)
    if fixed is not None:
        return fixed.url
    return status_list_url(public_url or LEGACY_STATUS_LIST_BASE, sitting_code)


def _fix_list_address(session: Session, sitting_code: str, public_url: str, as_of: datetime) -> str:
    """Fix the sitting's list address (if not yet) before the first signature or list that
    depends on it; returns the address fixed (a concurrent first signer's, if it won)."""
    if (fixed := session.get(StatusListAddress, sitting_code)) is not None:
        return fixed.url
    row = {
        "sitting_code": sitting_code,
        "url": status_list_url(public_url, sitting_code),
        "fixed_at": in_utc(as_of),
    }
    table = StatusListAddress.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        session.execute(sqlite.insert(table).values(row).on_conflict_do_nothing())
    elif dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        session.execute(postgresql.insert(table).values(row).on_conflict_do_nothing())
    else:
        session.add(StatusListAddress.model_validate(row))
        session.flush()
    fixed = session.get(StatusListAddress, sitting_code, populate_existing=True)
    assert fixed is not None
    return fixed.url


def _entry_hash(entry: BatchEntry) -> str:
    content = entry.model_dump(mode="json", exclude={"status_index"})
    return hashlib.sha256(canonical_json(content)).hexdigest()


class StatusIndexAllocator:
    """Hands out revocation-list indexes at random (``secrets``), as the W3C Bitstring Status
    List's privacy guidance asks: a credential's position says nothing about its holder or
    when it was issued. Never one used before (by a certificate number, an issued credential
    or a revocation), so a revoked bit stays revoked; unique across all sittings, hence within
    each sitting's list. Drawn from a range at least twice the indexes taken, and at least
    ``minimum`` (the W3C minimum list length), so a draw rarely needs repeating; the range
    doubles as indexes are taken (a sitting's published list covers its highest index)."""

    def __init__(self, session: Session, minimum: int = MIN_BITS) -> None:
        self._session = session
        self._minimum = minimum
        self._taken: set[int] | None = None

    def _used(self) -> set[int]:
        used: set[int] = set()
        for column in (
            CertificateNumber.status_index,
            IssuedCertificate.status_index,
            CertificateRevocation.status_index,
        ):
            used.update(
                i
                for i in self._session.execute(
                    sa_select(col(column)).where(col(column).is_not(None)).distinct()
                ).scalars()
                if i is not None
            )
        return used

    def __call__(self) -> int:
        if self._taken is None:
            self._taken = self._used()
        size = self._minimum
        while 2 * (len(self._taken) + 1) > size:
            size *= 2
        while (index := secrets.randbelow(size)) in self._taken:
            pass
        self._taken.add(index)
        return index


def _with_status_index(
    entry: BatchEntry,
    row: CertificateNumber,
    issued_index: int | None,
    allocate: StatusIndexAllocator,
) -> BatchEntry:
    """``entry`` with its revocation-list index: the stored one, or a new one when the entry
    changed since a credential was issued with the stored one (that credential is superseded)."""
    content = _entry_hash(entry)
    superseding = row.entry_hash != content and issued_index == row.status_index
    if row.status_index is None or superseding:
        row.status_index = allocate()
    if row.entry_hash != content:
        row.entry_hash = content
    return entry.model_copy(update={"status_index": row.status_index})


def build_batches(
    session: Session,
    sitting: Sitting,
    public_url: str | None,
    passing: dict[str, list[tuple[int, str, str, str, str, int]]] | None = None,
) -> dict[str, CertificateBatch]:
    """Each school's current batch (passing candidates as of now; ``passing`` if the caller
    has already read them), its credentials pointing to the sitting's revocation list
    (``list_address``: the fixed address, else the one at ``public_url``)."""
    window = sitting.spec.window(StageCode.certificates)
    list_url = list_address(session, sitting.code, public_url)
    assert window.opens_at is not None
    batches = {}
    if passing is None:
        passing = _passing(session, sitting.code)
    names = dict(
        session.exec(
            select(School.code, School.name).where(col(School.code).in_(list(passing)))
        ).all()
    )
    allocate = StatusIndexAllocator(session)
    for school, candidates in sorted(passing.items()):
        numbers = _numbers(session, candidates)
        issued_index = dict(
            session.exec(
                select(IssuedCertificate.registration_id, IssuedCertificate.status_index).where(
                    col(IssuedCertificate.registration_id).in_(list(numbers))
                )
            ).all()
        )
        entries = []
        for rid, name, id_number, ticket, level, score in candidates:
            row = numbers[rid]
            entry = BatchEntry.for_candidate(
                certificate_number=row.certificate_number,
                name=name,
                ticket_number=ticket,
                level=Level(level),
                score=score,
                id_number=id_number,
                id_salt=row.id_salt,
            )
            entries.append(_with_status_index(entry, row, issued_index.get(rid), allocate))
        batches[school] = CertificateBatch(
            sitting_code=sitting.code,
            certificate=sitting.certificate,
            school_code=school,
            school_name=names.get(school, school),
            issuer_id=ISSUER_ID,
            issuer_name=sitting.organiser or "培训评价组织",
            valid_from=window.opens_at,
            entries=tuple(entries),
            status_list_url=list_url,
        )
    session.flush()
    return batches


def _signatures(session: Session, sitting_code: str, school: str) -> list[BatchSignature]:
    return [
        BatchSignature(
            party=r.party,
            key_id=r.key_id,
            batch_digest=r.batch_digest,
            signature_b64=r.signature_b64,
            created=r.created,
        )
        for r in session.exec(
            select(SignatureRecord).where(
                SignatureRecord.sitting_code == sitting_code, SignatureRecord.school_code == school
            )
        )
    ]


def sign(
    session: Session,
    sitting: Sitting,
    party: str,
    private_key: object,
    as_of: datetime,
    public_url: str,
) -> list[tuple[str, str]]:
    """Sign the party's batches (the organiser: every school's; a school: its own).

    Refused before the publicity window has passed. A review resolved later that changes
    the batch voids the signature (it covers the batch's digest). The first signature of the
    sitting fixes its revocation list's address at ``public_url``.
    Returns (school, batch digest) per signature made.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(private_key, Ed25519PrivateKey)
    publicity = sitting.spec.window(StageCode.publicity)
    if not publicity.has_closed(as_of):
        closes = publicity.closes_at.isoformat(timespec="seconds")
        raise CertificateError(f"batches are signed after publicity, which closes {closes}")
    _fix_list_address(session, sitting.code, public_url, as_of)
    batches = build_batches(session, sitting, public_url)
    if party != ORGANISER:
        if party not in batches:
            raise CertificateError(
                f"{party} has no passing candidates in {sitting.code}, or is not a school"
            )
        batches = {party: batches[party]}
    keys = trusted_keys(session)
    signed = []
    for school, batch in batches.items():
        try:
            signature = sign_batch(batch, party, private_key, as_of, keys)
        except SignatureError as exc:
            raise CertificateError(str(exc)) from exc
        if any(
            s.batch_digest == signature.batch_digest and s.party == party
            for s in _signatures(session, sitting.code, school)
        ):
            continue  # already signed this very batch
        session.add(
            SignatureRecord(sitting_code=sitting.code, school_code=school, **signature.model_dump())
        )
        signed.append((school, signature.batch_digest))
    session.flush()
    return signed


@dataclass
class IssueReport:
    issued: int = 0
    unchanged: int = 0
    superseded: int = 0  # earlier credentials revoked because a corrected one replaced them
    withdrawn: int = 0  # credentials revoked because a review left their holder not passing
    waiting: dict[str, list[str]] = field(default_factory=dict)  # school -> problems


def issue(session: Session, sitting: Sitting, as_of: datetime, public_url: str) -> IssueReport:
    """Issue every school's credentials that both parties have signed (idempotent); their
    revocation list is the sitting's (``list_address``)."""
    report = IssueReport()
    window = sitting.spec.window(StageCode.certificates)
    if not window.has_opened(as_of):
        return report
    keys = trusted_keys(session)
    existing = {  # registration -> (row id, batch digest); not the large credentials
        rid: (row_id, digest)
        for rid, row_id, digest in session.exec(
            select(
                IssuedCertificate.registration_id,
                IssuedCertificate.id,
                IssuedCertificate.batch_digest,
            ).where(IssuedCertificate.sitting_code == sitting.code)
        )
    }
    in_batches: set[int] = set()
    for school, batch in build_batches(session, sitting, public_url).items():
        digest = batch_digest(batch)
        numbers = {e.certificate_number: e for e in batch.entries}
        regs = dict(
            session.exec(
                select(
                    CertificateNumber.certificate_number, CertificateNumber.registration_id
                ).where(col(CertificateNumber.certificate_number).in_(list(numbers)))
            ).all()
        )
        in_batches.update(regs.values())
        if all(existing.get(rid, (None, ""))[1] == digest for rid in regs.values()):
            # issued from this very batch: nothing to build, whatever became of the keys since
            report.unchanged += len(regs)
            continue
        signatures = _signatures(session, sitting.code, school)
        check = check_batch_signatures(batch, signatures, keys, digest=digest)
        if not check.complete:
            report.waiting[school] = list(check.problems) or ["not signed yet"]
            continue
        for document in issue_credentials(batch, signatures, keys):
            number = document["credentialSubject"]["certificateNumber"]
            rid = regs[number]
            row_id, issued_digest = existing.get(rid, (None, ""))
            if issued_digest == digest:
                report.unchanged += 1
                continue
            text = json.dumps(document, ensure_ascii=False, sort_keys=True)
            index = numbers[number].status_index
            current = session.get(IssuedCertificate, row_id) if row_id is not None else None
            if current is None:
                session.add(
                    IssuedCertificate(
                        sitting_code=sitting.code,
                        school_code=school,
                        registration_id=rid,
                        certificate_number=number,
                        batch_digest=digest,
                        credential_json=text,
                        issued_at=in_utc(as_of),
                        status_index=index,
                    )
                )
            else:
                old = current.status_index
                if old is not None and old != index and active_revocation(session, old) is None:
                    _revoke_index(session, current, old, SUPERSEDED_REASON, as_of, True)
                    report.superseded += 1
                current.batch_digest, current.credential_json = digest, text
                current.issued_at, current.status_index = in_utc(as_of), index
                session.add(current)
            report.issued += 1
    report.withdrawn = _revoke_no_longer_passed(session, existing, in_batches, as_of)
    session.flush()
    return report


def _revoke_no_longer_passed(
    session: Session,
    existing: dict[int, tuple[int | None, str]],
    in_batches: set[int],
    as_of: datetime,
) -> int:
    """Revoke the issued credentials whose holders no batch holds any more (a review lowered
    the score below the pass mark); returns how many. Like a superseded one, such a revocation
    is not lifted by `unrevoke`: a later review that passes the holder again issues anew."""
    revoked = 0
    for rid, (row_id, _) in existing.items():
        if rid in in_batches:
            continue
        issued = session.get(IssuedCertificate, row_id) if row_id is not None else None
        index = issued.status_index if issued is not None else None
        if issued is None or index is None or active_revocation(session, index) is not None:
            continue
        _revoke_index(session, issued, index, NO_LONGER_PASSED_REASON, as_of, True)
        revoked += 1
    return revoked


def certificates_condition(
    session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
) -> Condition:
    """Every passing candidate of every school holds an e-certificate of the current batch."""
    missing: list[Missing] = []
    passing = _passing(session, sitting.code, party)
    if not passing:  # before any score (a school's page, every stage): nothing more to read
        return Condition(met=True, missing=missing)
    # ids and digests only: the credentials themselves are large
    issued_query = select(IssuedCertificate.registration_id, IssuedCertificate.batch_digest).where(
        IssuedCertificate.sitting_code == sitting.code
    )
    if party is not None:
        ids = [c[0] for candidates in passing.values() for c in candidates]
        issued_query = issued_query.where(col(IssuedCertificate.registration_id).in_(ids))
    issued = dict(session.exec(issued_query).all())
    keys = trusted_keys(session)
    for school, batch in build_batches(session, sitting, None, passing).items():
        digest = batch_digest(batch)
        lacking = sum(1 for c in passing[school] if issued.get(c[0]) != digest)
        if not lacking:
            continue
        check = check_batch_signatures(batch, _signatures(session, sitting.code, school), keys)
        unsigned = [
            ORGANISER if party == ORGANISER else "school"
            for party in (ORGANISER, school)
            if party not in check.valid
        ]
        missing.append(
            Missing(
                party=school,
                party_kind=PartyKind.school,
                stage=StageCode.certificates,
                item=Owed.unsigned_batch if unsigned else Owed.certificates_not_issued,
                count=lacking,
                detail={"unsigned": unsigned} if unsigned else {},
            )
        )
    return Condition(met=not missing, missing=missing)


def paper_request_of(session: Session, sitting_code: str, school: str) -> PaperRequest | None:
    return session.exec(
        select(PaperRequest).where(
            PaperRequest.sitting_code == sitting_code, PaperRequest.school_code == school
        )
    ).first()


def passing_candidates(session: Session, sitting_code: str, school: str) -> int:
    """How many of ``school``'s candidates passed (its certificates, once issued)."""
    return len(_passing(session, sitting_code, school).get(school, []))


def request_paper(session: Session, sitting: Sitting, school: str, as_of: datetime) -> bool:
    """Record ``school``'s request for paper certificates; False if it had already asked."""
    if session.get(School, school) is None:
        raise CertificateError(f"unknown school {school!r}")
    if paper_request_of(session, sitting.code, school) is not None:
        return False
    session.add(
        PaperRequest(sitting_code=sitting.code, school_code=school, requested_at=in_utc(as_of))
    )
    session.flush()
    return True


def schools_with_certificates(session: Session, sitting_code: str) -> set[str]:
    return set(
        session.exec(
            select(IssuedCertificate.school_code).where(
                IssuedCertificate.sitting_code == sitting_code
            )
        )
    )


# --- revocation -------------------------------------------------------------------------


class IssuedCredential(NamedTuple):
    """An issued credential as stored: its JSON text, and the digest of its batch."""

    text: str
    batch_digest: str


class RevocationInForce(NamedTuple):
    revoked_at: datetime
    reason: str
    superseded: bool


# The verification page's reads, one each per view of a public page (every QR scan): built
# once, as a statement built per call costs more (its cache key) than running it.
_CREDENTIAL_BY_NUMBER = select(
    IssuedCertificate.credential_json, IssuedCertificate.batch_digest
).where(IssuedCertificate.certificate_number == bindparam("number"))
_REVOCATION_IN_FORCE = select(
    CertificateRevocation.revoked_at,
    CertificateRevocation.reason,
    CertificateRevocation.superseded,
).where(
    CertificateRevocation.status_index == bindparam("index"),
    col(CertificateRevocation.unrevoked_at).is_(None),
)


def issued_certificate(session: Session, number: str) -> IssuedCertificate | None:
    return session.exec(
        select(IssuedCertificate).where(IssuedCertificate.certificate_number == number)
    ).first()


def issued_credential(session: Session, number: str) -> IssuedCredential | None:
    """The credential numbered ``number`` as stored (the text served as it is), if issued."""
    row = session.connection().execute(_CREDENTIAL_BY_NUMBER, {"number": number}).first()
    return None if row is None else IssuedCredential(row[0], row[1])


def status_index_of(credential: dict[str, Any]) -> int | None:
    """The credential document's bit in its revocation list (its credentialStatus), if any."""
    entry = credential.get("credentialStatus")
    index = entry.get("statusListIndex") if isinstance(entry, dict) else None
    if not isinstance(index, str) or not index.isdigit():
        return None
    return int(index)


def revocation_in_force(session: Session, status_index: int) -> RevocationInForce | None:
    """When and why the credential version with ``status_index`` was revoked, if it is."""
    row = session.connection().execute(_REVOCATION_IN_FORCE, {"index": status_index}).first()
    return None if row is None else RevocationInForce(row[0], row[1], row[2])


def active_revocation(session: Session, status_index: int) -> CertificateRevocation | None:
    """The revocation in force for one credential version (its status index), if any."""
    return session.exec(
        select(CertificateRevocation).where(
            CertificateRevocation.status_index == status_index,
            col(CertificateRevocation.unrevoked_at).is_(None),
        )
    ).first()


def reissued_at(session: Session, number: str, current_index: int | None) -> datetime | None:
    """When the last earlier version of certificate ``number`` was superseded by a corrected
    one (the version at ``current_index`` being the one issued now); None if never."""
    return session.exec(
        select(sa_func.max(CertificateRevocation.revoked_at)).where(
            CertificateRevocation.certificate_number == number,
            CertificateRevocation.status_index != current_index,
            col(CertificateRevocation.superseded).is_(True),
        )
    ).first()


def revocation_of(session: Session, credential: dict[str, Any]) -> CertificateRevocation | None:
    """The revocation in force for this credential document (by its credentialStatus)."""
    index = status_index_of(credential)
    return None if index is None else active_revocation(session, index)


def _revoke_index(
    session: Session,
    issued: IssuedCertificate,
    index: int,
    reason: str,
    as_of: datetime,
    superseded: bool,
) -> CertificateRevocation:
    row = CertificateRevocation(
        sitting_code=issued.sitting_code,
        certificate_number=issued.certificate_number,
        status_index=index,
        reason=reason,
        revoked_at=in_utc(as_of),
        superseded=superseded,
    )
    session.add(row)
    return row


def revoke(session: Session, number: str, reason: str, as_of: datetime) -> CertificateRevocation:
    """Revoke the issued credential numbered ``number`` (its current version)."""
    if not reason.strip():
        raise CertificateError("give the reason for the revocation")
    issued = issued_certificate(session, number)
    if issued is None:
        raise CertificateError(f"no certificate numbered {number} has been issued")
    if issued.status_index is None:
        raise CertificateError(
            f"{number} was issued without a status entry (before revocation lists): "
            "it cannot be revoked through the list"
        )
    if (already := active_revocation(session, issued.status_index)) is not None:
        raise CertificateError(f"{number} is already revoked ({timestamp(already.revoked_at)})")
    row = _revoke_index(session, issued, issued.status_index, reason.strip(), as_of, False)
    session.flush()
    return row


def unrevoke(session: Session, number: str, as_of: datetime) -> CertificateRevocation:
    issued = issued_certificate(session, number)
    row = None
    if issued is not None and issued.status_index is not None:
        row = active_revocation(session, issued.status_index)
    if row is None or issued is None:
        raise CertificateError(f"{number} is not revoked")
    if row.superseded:  # a review's, not a mistake's: the holder's result decides
        raise CertificateError(f"{number} was revoked by a review ({row.reason}): it stays so")
    row.unrevoked_at = in_utc(as_of)
    session.add(row)
    session.flush()
    return row


def publish_status_list(
    session: Session, sitting: Sitting, private_key: object, as_of: datetime, public_url: str
) -> dict[str, Any]:
    """Sign and store the sitting's revocation list with the organiser's key (as it is now),
    at the sitting's list address (fixed now at ``public_url`` if it was not yet), long enough
    to cover every index its candidates' credentials name."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(private_key, Ed25519PrivateKey)
    revoked = session.exec(
        select(CertificateRevocation.status_index).where(
            CertificateRevocation.sitting_code == sitting.code,
            col(CertificateRevocation.unrevoked_at).is_(None),
        )
    ).all()
    highest = session.execute(
        sa_select(sa_func.max(col(CertificateNumber.status_index)))
        .join(Registration, col(Registration.id) == col(CertificateNumber.registration_id))
        .where(col(Registration.sitting_code) == sitting.code)
    ).scalar()
    issued_highest = session.execute(
        sa_select(sa_func.max(col(IssuedCertificate.status_index))).where(
            col(IssuedCertificate.sitting_code) == sitting.code
        )
    ).scalar()
    document = status_list_credential(
        _fix_list_address(session, sitting.code, public_url, as_of),
        ISSUER_ID,
        sitting.organiser or "培训评价组织",
        as_of,
        revoked,
        list_length(max((i for i in (highest, issued_highest) if i is not None), default=None)),
    )
    try:
        signed = sign_status_list(document, private_key, as_of, trusted_keys(session))
    except SignatureError as exc:
        raise CertificateError(str(exc)) from exc
    record = session.get(StatusListRecord, (sitting.code, "revocation"))
    text = json.dumps(signed, ensure_ascii=False, sort_keys=True)
    if record is None:
        record = StatusListRecord(
            sitting_code=sitting.code,
            purpose="revocation",
            credential_json=text,
            signed_at=in_utc(as_of),
        )
    else:
        record.credential_json, record.signed_at = text, in_utc(as_of)
    session.add(record)
    session.flush()
    return signed


def status_list_outdated(session: Session, sitting_code: str) -> bool:
    """Whether a revocation was made or lifted in the sitting since its list was last signed
    (or none was signed yet while a revocation is in force): the organiser must re-sign it."""
    record = session.get(StatusListRecord, (sitting_code, "revocation"))
    rows = session.exec(
        select(CertificateRevocation.revoked_at, CertificateRevocation.unrevoked_at).where(
            CertificateRevocation.sitting_code == sitting_code
        )
    ).all()
    if record is None:
        return any(unrevoked is None for _, unrevoked in rows)
    signed = in_utc(record.signed_at)
    return any(in_utc(t) > signed for row in rows for t in row if t is not None)


def published_status_list(session: Session, sitting_code: str) -> str | None:
    record = session.get(StatusListRecord, (sitting_code, "revocation"))
    return None if record is None else record.credential_json


class HolderCheckLimit(StrEnum):
    """Which hourly limit refused an ID check."""

    certificate = "certificate"  # HOLDER_CHECKS_PER_HOUR against this certificate
    client = "client"  # HOLDER_CHECKS_PER_CLIENT_PER_HOUR from this client


def _client_hash(client: str) -> str:
    return hashlib.sha256(client.strip().casefold().encode("utf-8")).hexdigest()


def note_holder_check(
    session: Session,
    number: str,
    client: str,
    as_of: datetime,
    per_certificate: int = HOLDER_CHECKS_PER_HOUR,
    per_client: int = HOLDER_CHECKS_PER_CLIENT_PER_HOUR,
) -> HolderCheckLimit | None:
    """Count one ID check against certificate ``number`` from ``client`` (an address, kept
    only as a hash); the limit that refuses it (nothing counted) once the certificate had
    ``per_certificate`` checks, or the client ``per_client``, in the hour before ``as_of``.
    Nothing about the ID is stored.

    Counted in the database, so every portal worker shares the counts (as the sign-in
    requests' limits are). The check is noted before it is counted: on SQLite, where writers
    take turns, the limit is exact under concurrent checks; on PostgreSQL, checks exactly at
    the limit at the same moment may each pass."""
    since = in_utc(as_of) - timedelta(hours=1)
    row = HolderCheck(
        certificate_number=number, checked_at=in_utc(as_of), client_hash=_client_hash(client)
    )
    session.add(row)
    session.flush()
    for limit, column, value, refusal in (
        (per_certificate, HolderCheck.certificate_number, number, HolderCheckLimit.certificate),
        (per_client, HolderCheck.client_hash, row.client_hash, HolderCheckLimit.client),
    ):
        counted = session.execute(
            sa_select(sa_func.count())
            .select_from(HolderCheck)
            .where(col(column) == value, col(HolderCheck.checked_at) > since)
        ).scalar()
        if counted is not None and counted > limit:
            session.delete(row)
            session.flush()
            return refusal
    return None


# --- a school signs in its browser --------------------------------------------------------


@dataclass(frozen=True)
class SigningStatement:
    """What a school's browser is asked to sign: the batch in words, and the exact bytes."""

    batch: CertificateBatch
    statement: dict[str, Any]
    digest: str
    proof_config: dict[str, Any]
    message: bytes  # SHA-256(JCS(proof config)) ‖ SHA-256(JCS(statement)): what is signed


def _after_publicity(sitting: Sitting, as_of: datetime) -> None:
    publicity = sitting.spec.window(StageCode.publicity)
    if not publicity.has_closed(as_of):
        closes = publicity.closes_at.isoformat(timespec="seconds")
        raise SigningRefused(
            "before_publicity", f"batches are signed after publicity, which closes {closes}"
        )


def _school_signing_key(session: Session, school: str, kid: str) -> PartyKey:
    key = session.get(PartyKey, kid)
    if key is None or key.party != school:
        raise SigningRefused("unknown_key", f"{kid} is not a key of school {school}")
    if key.status == KeyStatus.pending:
        raise SigningRefused("pending_key", f"key {kid} is waiting for ops' approval")
    if key.status == KeyStatus.revoked:
        raise SigningRefused("revoked_key", f"key {kid} has been revoked")
    return key


def _school_batch(
    session: Session, sitting: Sitting, school: str, public_url: str
) -> CertificateBatch:
    batch = build_batches(session, sitting, public_url).get(school)
    if batch is None:
        raise SigningRefused("no_batch", f"{school} has no passing candidates in {sitting.code}")
    return batch


def signing_statement(
    session: Session,
    sitting: Sitting,
    school: str,
    kid: str,
    as_of: datetime,
    public_url: str,
    shown_root: str | None = None,
) -> SigningStatement:
    """The statement ``school`` signs with its approved key ``kid`` at ``as_of`` (its batch's
    revocation list at ``public_url`` unless the sitting's is fixed already); refused when
    the batch's root (hex) is no longer ``shown_root``, the one the school was shown."""
    _after_publicity(sitting, as_of)
    _school_signing_key(session, school, kid)
    batch = _school_batch(session, sitting, school, public_url)
    size, root = batch_root(batch)
    if shown_root is not None and shown_root != root.hex():
        raise SigningRefused(
            "stale_root",
            f"the batch changed since it was shown (root {shown_root[:16]}…, now "
            f"{root.hex()[:16]}…): a review changed it; load the page again",
        )
    config = proof_config(school, kid, timestamp(as_of))
    digest = statement_digest(sitting.code, school, size, root)
    return SigningStatement(
        batch,
        statement(sitting.code, school, size, root),
        digest,
        config,
        signing_input(config, digest),
    )


def signing_request(
    session: Session, sitting: Sitting, school: str, kid: str, as_of: datetime, public_url: str
) -> SigningRequest:
    """What ``school`` downloads to sign offline with key ``kid`` (``examflow sign
    --statement``): the statement of ``signing_statement``, valid for STATEMENT_LIFETIME."""
    made = signing_statement(session, sitting, school, kid, as_of, public_url)
    created = made.proof_config["created"]
    return SigningRequest(
        sitting=sitting.code,
        party=school,
        key_id=kid,
        created=created,
        expires=timestamp(datetime.fromisoformat(created) + STATEMENT_LIFETIME),
        digest=made.digest,
        statement=BatchStatement.model_validate(made.statement),
        message_b64=base64.b64encode(made.message).decode("ascii"),
    )


def accept_offline_signature(
    session: Session,
    sitting: Sitting,
    school: str,
    signature: OfflineSignature,
    as_of: datetime,
    public_url: str,
) -> bool:
    """Store a signature file ``school`` made offline, as ``accept_signature`` does one from
    its browser; refused if the file is another sitting's or another party's."""
    if signature.sitting != sitting.code:
        raise SigningRefused(
            "other_sitting", f"the signature is for sitting {signature.sitting}, not {sitting.code}"
        )
    if signature.party != school:
        raise SigningRefused(
            "other_party", f"the signature is {signature.party}'s, not school {school}'s"
        )
    return accept_signature(
        session,
        sitting,
        school,
        signature.key_id,
        signature.created,
        signature.digest,
        signature.signature_b64,
        as_of,
        public_url,
    )


def accept_signature(
    session: Session,
    sitting: Sitting,
    school: str,
    kid: str,
    created: str,
    digest: str,
    signature_b64: str,
    as_of: datetime,
    public_url: str,
) -> bool:
    """Store a school's signature made elsewhere (its browser, or offline with its key file)
    once it verifies against the school's approved key over the batch as it is now; False if
    already stored."""
    _after_publicity(sitting, as_of)
    _school_signing_key(session, school, kid)
    try:
        made = datetime.fromisoformat(created)
    except ValueError:
        made = None
    if made is None or made.tzinfo is None:
        raise SigningRefused("bad_time", f"created {created!r} is not a time with an offset")
    if not as_of - STATEMENT_LIFETIME <= made <= as_of + SIGNATURE_CLOCK_SKEW:
        raise SigningRefused("bad_time", "the statement has expired: load the page again")
    batch = _school_batch(session, sitting, school, public_url)
    try:
        signature = BatchSignature(
            party=school,
            key_id=kid,
            batch_digest=digest,
            signature_b64=signature_b64,
            created=created,
        )
    except ValueError as exc:
        raise SigningRefused("bad_signature", f"not a signature: {exc}") from None
    try:
        verify_batch_signature(batch, signature, trusted_keys(session))
    except VoidSignatureError as exc:
        raise SigningRefused("stale_root", str(exc)) from None
    except SignatureError as exc:
        raise SigningRefused("bad_signature", str(exc)) from None
    if any(
        s.batch_digest == digest and s.party == school
        for s in _signatures(session, sitting.code, school)
    ):
        return False
    if _fix_list_address(session, sitting.code, public_url, as_of) != batch.status_list_url:
        raise SigningRefused("stale_root", "the sitting's revocation list moved: sign again")
    session.add(
        SignatureRecord(sitting_code=sitting.code, school_code=school, **signature.model_dump())
    )
    session.flush()
    return True


def masked_ids(session: Session, sitting_code: str, tickets: list[str]) -> dict[str, str]:
    """Ticket number -> masked ID number of the candidate, for showing what a school signs."""
    from models.resident_id import mask_resident_id

    rows = session.exec(
        select(Score.ticket_number, Registration.id_number)
        .join(Registration, col(Registration.id) == col(Score.registration_id))
        .where(Score.sitting_code == sitting_code, col(Score.ticket_number).in_(tickets))
    ).all()
    return {ticket: mask_resident_id(id_number) for ticket, id_number in rows}


def batch_signers(session: Session, sitting: Sitting, batch: CertificateBatch) -> set[str]:
    """The parties whose stored signatures are valid over ``batch`` as it is now."""
    check = check_batch_signatures(
        batch, _signatures(session, sitting.code, batch.school_code), trusted_keys(session)
    )
    return set(check.valid)
