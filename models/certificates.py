"""E-certificates (电子版证书): batches per school, two-party signatures, issuance, paper requests.

A school's batch holds its passing candidates after publicity. Both the organiser and the
school sign it (``models.credentials``); a review that changes the batch voids both
signatures. Only with both valid signatures, and the publicity window passed, are the
credentials issued — once: re-runs reproduce the same documents and store nothing new.

Certificate numbers are ``WD`` + the ticket number (unique nationwide, stable).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from models.condition import ORGANISER, Condition, Missing, Owed, PartyKind
from models.credentials.batch import BatchEntry, CertificateBatch, new_salt
from models.credentials.errors import SignatureError
from models.credentials.keys import RegisteredKey, key_id
from models.credentials.signing import (
    BatchSignature,
    check_batch_signatures,
    issue_credentials,
    sign_batch,
)
from models.credentials.statement import batch_digest
from models.domain import Level, StageCode, in_utc
from models.publicity import result_owner
from models.registration import Registration
from models.schools import School
from models.scores import Score
from models.sittings import Sitting

ISSUER_ID = "https://www.hotmatrix.cn"


class PartyKeyBase(SQLModel):
    key_id: str = Field(primary_key=True)
    party: str = Field(index=True, description="'organiser' or a school code")
    public_key_b64: str = Field(unique=True)
    created_at: datetime


class PartyKey(PartyKeyBase, table=True):
    pass


class CertificateNumberBase(SQLModel):
    registration_id: int = Field(foreign_key="registration.id", unique=True)
    certificate_number: str = Field(unique=True)
    id_salt: str


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


class IssuedCertificate(IssuedCertificateBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class PaperRequestBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code")
    school_code: str = Field(foreign_key="school.code")
    requested_at: datetime


class PaperRequest(PaperRequestBase, table=True):
    __table_args__ = (UniqueConstraint("sitting_code", "school_code"),)
    id: int | None = Field(default=None, primary_key=True)


class CertificateError(ValueError):
    pass


def register_key(session: Session, party: str, public_key_b64: str, as_of: datetime) -> str:
    if party != ORGANISER and session.get(School, party) is None:
        raise CertificateError(f"{party!r} is neither 'organiser' nor a school in the register")
    kid = key_id(public_key_b64)
    session.add(
        PartyKey(key_id=kid, party=party, public_key_b64=public_key_b64, created_at=in_utc(as_of))
    )
    session.flush()
    return kid


def trusted_keys(session: Session) -> dict[str, RegisteredKey]:
    return {
        k.key_id: RegisteredKey(k.party, k.public_key_b64) for k in session.exec(select(PartyKey))
    }


def _passing(
    session: Session, sitting_code: str
) -> dict[str, list[tuple[int, str, str, str, str, int]]]:
    """Per school: (registration, name, id number, ticket, level, score) of passing candidates."""
    rows = session.execute(
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
        .where(col(Score.sitting_code) == sitting_code, col(Score.passed).is_(True))
    ).all()
    by_school: dict[str, list[tuple[int, str, str, str, str, int]]] = {}
    for rid, name, id_number, ticket, level, score, school, site in rows:
        by_school.setdefault(result_owner(school, site), []).append(
            (rid, name, id_number, ticket, level, score)
        )
    return by_school


def _numbers(
    session: Session, candidates: list[tuple[int, str, str, str, str, int]]
) -> dict[int, tuple[str, str]]:
    """Certificate number and salt per registration, assigned once and then kept."""
    ids = [c[0] for c in candidates]
    known = {
        n.registration_id: (n.certificate_number, n.id_salt)
        for n in session.exec(
            select(CertificateNumber).where(col(CertificateNumber.registration_id).in_(ids))
        )
    }
    for rid, _, _, ticket, _, _ in candidates:
        if rid not in known:
            number, salt = f"WD{ticket}", new_salt()
            session.add(
                CertificateNumber(registration_id=rid, certificate_number=number, id_salt=salt)
            )
            known[rid] = (number, salt)
    session.flush()
    return known


def build_batches(
    session: Session,
    sitting: Sitting,
    passing: dict[str, list[tuple[int, str, str, str, str, int]]] | None = None,
) -> dict[str, CertificateBatch]:
    """Each school's current batch (passing candidates as of now; ``passing`` if the caller
    has already read them)."""
    window = sitting.spec.window(StageCode.certificates)
    assert window.opens_at is not None
    names = dict(session.exec(select(School.code, School.name)).all())
    batches = {}
    if passing is None:
        passing = _passing(session, sitting.code)
    for school, candidates in sorted(passing.items()):
        numbers = _numbers(session, candidates)
        entries = [
            BatchEntry.for_candidate(
                certificate_number=numbers[rid][0],
                name=name,
                ticket_number=ticket,
                level=Level(level),
                score=score,
                id_number=id_number,
                id_salt=numbers[rid][1],
            )
            for rid, name, id_number, ticket, level, score in candidates
        ]
        batches[school] = CertificateBatch(
            sitting_code=sitting.code,
            certificate=sitting.certificate,
            school_code=school,
            school_name=names.get(school, school),
            issuer_id=ISSUER_ID,
            issuer_name=sitting.organiser or "培训评价组织",
            valid_from=window.opens_at,
            entries=tuple(entries),
        )
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
    session: Session, sitting: Sitting, party: str, private_key: object, as_of: datetime
) -> list[tuple[str, str]]:
    """Sign the party's batches (the organiser: every school's; a school: its own).

    Refused before the publicity window has passed. A review resolved later that changes
    the batch voids the signature (it covers the batch's digest).
    Returns (school, batch digest) per signature made.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(private_key, Ed25519PrivateKey)
    publicity = sitting.spec.window(StageCode.publicity)
    if not publicity.has_closed(as_of):
        closes = publicity.closes_at.isoformat(timespec="seconds")
        raise CertificateError(f"batches are signed after publicity, which closes {closes}")
    batches = build_batches(session, sitting)
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
    waiting: dict[str, list[str]] = field(default_factory=dict)  # school -> problems


def issue(session: Session, sitting: Sitting, as_of: datetime) -> IssueReport:
    """Issue every school's credentials that both parties have signed (idempotent)."""
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
    for school, batch in build_batches(session, sitting).items():
        signatures = _signatures(session, sitting.code, school)
        check = check_batch_signatures(batch, signatures, keys)
        if not check.complete:
            report.waiting[school] = list(check.problems) or ["not signed yet"]
            continue
        digest = batch_digest(batch)
        numbers = {e.certificate_number: e for e in batch.entries}
        regs = dict(
            session.exec(
                select(
                    CertificateNumber.certificate_number, CertificateNumber.registration_id
                ).where(col(CertificateNumber.certificate_number).in_(list(numbers)))
            ).all()
        )
        if all(existing.get(rid, (None, ""))[1] == digest for rid in regs.values()):
            report.unchanged += len(regs)  # issued from this very batch: nothing to build
            continue
        for document in issue_credentials(batch, signatures, keys):
            number = document["credentialSubject"]["certificateNumber"]
            rid = regs[number]
            row_id, issued_digest = existing.get(rid, (None, ""))
            if issued_digest == digest:
                report.unchanged += 1
                continue
            text = json.dumps(document, ensure_ascii=False, sort_keys=True)
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
                    )
                )
            else:
                current.batch_digest, current.credential_json = digest, text
                current.issued_at = in_utc(as_of)
                session.add(current)
            report.issued += 1
    session.flush()
    return report


def certificates_condition(session: Session, sitting: Sitting, as_of: datetime) -> Condition:
    """Every passing candidate of every school holds an e-certificate of the current batch."""
    missing: list[Missing] = []
    issued = dict(  # ids and digests only: the credentials themselves are large
        session.exec(
            select(IssuedCertificate.registration_id, IssuedCertificate.batch_digest).where(
                IssuedCertificate.sitting_code == sitting.code
            )
        ).all()
    )
    keys = trusted_keys(session)
    passing = _passing(session, sitting.code)
    for school, batch in build_batches(session, sitting, passing).items():
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


def request_paper(session: Session, sitting: Sitting, school: str, as_of: datetime) -> bool:
    if session.get(School, school) is None:
        raise CertificateError(f"unknown school {school!r}")
    if session.exec(
        select(PaperRequest).where(
            PaperRequest.sitting_code == sitting.code, PaperRequest.school_code == school
        )
    ).first():
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
