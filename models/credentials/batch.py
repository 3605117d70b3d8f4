"""A school's certificate batch: its entries and the W3C VC 2.0 documents both parties certify.

The documents are plain data, a pure function of stored fields: rebuilding a batch gives the
same documents, byte for byte, so the same digest (``models.credentials.statement``).
"""

import hashlib
import secrets
from datetime import datetime
from itertools import pairwise
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from models.credentials.errors import CredentialError
from models.credentials.keys import ORGANISER
from models.domain import SHANGHAI, Level
from models.resident_id import normalise_resident_id

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPES = ("VerifiableCredential", "CertificateCredential")
CREDENTIAL_ID_PREFIX = "urn:examflow:cert:"
STATUS_ENTRY_TYPE = "BitstringStatusListEntry"  # W3C Bitstring Status List v1.0
REVOCATION = "revocation"


def timestamp(moment: datetime) -> str:
    """ISO 8601 in Asia/Shanghai to the second: one spelling per instant, as signed."""
    if moment.tzinfo is None:
        raise CredentialError(f"{moment} has no time zone: give an aware date-time")
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def new_salt() -> str:
    """A fresh per-certificate salt: 128 random bits as 32 hex digits. Store it once."""
    return secrets.token_hex(16)


def id_digest(id_number: str, salt: str) -> str:
    """hex(SHA-256(UTF-8(salt + normalised ID number))): what a credential shows of the ID.

    A verifier shown the ID card recomputes it with the credential's ``idSalt``; the salt
    stops one person's digests from being linked across certificates or looked up in a table.
    """
    normalised = normalise_resident_id(id_number)
    return hashlib.sha256((salt + normalised).encode("utf-8")).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BatchEntry(_Frozen):
    """One passing candidate's certificate, as both parties sign it."""

    certificate_number: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    name: str = Field(min_length=1)
    ticket_number: str = Field(min_length=1)
    level: Level
    score: int | float
    id_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    id_salt: str = Field(pattern=r"^[0-9a-f]{32}$")
    status_index: int | None = Field(default=None, ge=0)  # its bit in the revocation list

    @field_validator("score")
    @classmethod
    def _finite_and_not_negative(cls, score: float) -> float:
        if not 0 <= score < float("inf"):
            raise ValueError(f"score must be a finite number ≥ 0, got {score}")
        return score

    @classmethod
    def for_candidate(
        cls,
        *,
        certificate_number: str,
        name: str,
        ticket_number: str,
        level: Level,
        score: float,
        id_number: str,
        id_salt: str,
        status_index: int | None = None,
    ) -> "BatchEntry":
        """An entry from the plain ID number, which is digested here and not kept."""
        return cls(
            certificate_number=certificate_number,
            name=name,
            ticket_number=ticket_number,
            level=level,
            score=score,
            id_digest=id_digest(id_number, id_salt),
            id_salt=id_salt,
            status_index=status_index,
        )


class CertificateBatch(_Frozen):
    """One school's certificates for one sitting (all levels), as the two parties sign it.

    Must be a pure function of stored data, so that rebuilding it gives the same digest:
    certificate numbers and salts are assigned once and stored, and ``valid_from`` is a fixed
    date (the certificates window's opening, say), not the moment of issuing. Entries are kept
    in certificate-number order whatever order they come in.
    """

    sitting_code: str = Field(min_length=1)
    certificate: str = Field(min_length=1)
    school_code: str = Field(min_length=1)
    school_name: str = Field(min_length=1)
    issuer_id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")  # a URL or URN
    issuer_name: str = Field(min_length=1)
    valid_from: AwareDatetime
    entries: tuple[BatchEntry, ...] = Field(min_length=1)
    status_list_url: str | None = None  # the revocation list's URL, if entries have indexes

    @field_validator("school_code")
    @classmethod
    def _not_the_organiser(cls, code: str) -> str:
        if code == ORGANISER:
            raise ValueError(f"{ORGANISER!r} names the organiser, not a school")
        return code

    @field_validator("entries")
    @classmethod
    def _sorted_and_unique(cls, entries: tuple[BatchEntry, ...]) -> tuple[BatchEntry, ...]:
        ordered = tuple(sorted(entries, key=lambda entry: entry.certificate_number))
        for before, after in pairwise(ordered):
            if before.certificate_number == after.certificate_number:
                raise ValueError(f"certificate number {after.certificate_number} appears twice")
        return ordered

    @property
    def levels(self) -> tuple[Level, ...]:
        return tuple(level for level in Level if any(e.level == level for e in self.entries))


def credential_id(certificate_number: str) -> str:
    return CREDENTIAL_ID_PREFIX + certificate_number


def status_entry(status_list_url: str, index: int) -> dict[str, str]:
    """A ``BitstringStatusListEntry`` (W3C Bitstring Status List v1.0, §2.1): the credential's
    bit ``index`` in the revocation list published at ``status_list_url``."""
    return {
        "id": f"{status_list_url}#{index}",
        "type": STATUS_ENTRY_TYPE,
        "statusPurpose": REVOCATION,
        "statusListIndex": str(index),
        "statusListCredential": status_list_url,
    }


def unsigned_credentials(batch: CertificateBatch) -> list[dict[str, Any]]:
    """The batch's credential documents without proofs, in certificate-number order.

    Plain dicts built field by field: this runs once per certificate per signing party. An
    entry with a status index carries a ``credentialStatus`` (signed like every other field).
    """
    valid_from = timestamp(batch.valid_from)
    sitting, certificate = batch.sitting_code, batch.certificate
    school, school_name = batch.school_code, batch.school_name
    issuer_id, issuer_name = batch.issuer_id, batch.issuer_name
    documents = [
        {
            "@context": [VC_CONTEXT],
            "id": CREDENTIAL_ID_PREFIX + entry.certificate_number,
            "type": list(CREDENTIAL_TYPES),
            "issuer": {"id": issuer_id, "name": issuer_name},
            "validFrom": valid_from,
            "credentialSubject": {
                "name": entry.name,
                "idDigest": entry.id_digest,
                "idSalt": entry.id_salt,
                "ticketNumber": entry.ticket_number,
                "level": entry.level.value,
                "score": entry.score,
                "certificate": certificate,
                "certificateNumber": entry.certificate_number,
                "sitting": sitting,
                "school": school,
                "schoolName": school_name,
            },
        }
        for entry in batch.entries
    ]
    if batch.status_list_url is not None:
        for document, entry in zip(documents, batch.entries, strict=True):
            if entry.status_index is not None:
                document["credentialStatus"] = status_entry(
                    batch.status_list_url, entry.status_index
                )
    return documents
