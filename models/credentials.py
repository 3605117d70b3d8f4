"""Two-party-signed e-certificates: Ed25519 keys, certificate batches, W3C VC 2.0 credentials.

The organiser and each school sign the school's certificate batch once, each with its own
key, usually on different machines. A party signs a *batch statement* that commits to every
certificate of the batch: the root of an RFC 9162 (Certificate Transparency) Merkle tree whose
leaves are the RFC 8785 canonical credential documents. Each issued credential then carries
both parties' signatures as two ``DataIntegrityProof`` objects (a proof set), each with the
Merkle path from its own document to the signed root, so it verifies on its own without the
rest of the batch and without revealing other candidates (every leaf holds a random salt).

Why a batch statement rather than two signatures per credential:

- issuing needs no private key: the school's key never leaves the school, and the
  certificates stage only assembles documents from stored signatures;
- a review that changes any entry changes the root, so both batch signatures are void at
  once and issuing refuses until both parties sign again;
- a verifier checking many credentials verifies each batch signature once (memoised): two
  Ed25519 verifications per credential would cap it near 3,500 credentials/s per core.

The proof follows the eddsa-jcs-2022 recipe (signature over SHA-256(canonical proof config)
‖ SHA-256(canonical statement), multibase proofValue), with the batch statement in place of the
document, hence its own cryptosuite name. Everything here is pure: times come in as arguments,
and the only file access is the private-key helpers.
"""

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from models.canonical_json import CanonicalJsonError, canonical_json
from models.domain import SHANGHAI, Level
from models.resident_id import normalise_resident_id

ORGANISER = "organiser"
"""The organiser's party name; every other party is a school, named by its school code."""

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPES = ("VerifiableCredential", "CertificateCredential")
CRYPTOSUITE = "examflow-eddsa-jcs-merkle-2024"
PROOF_PURPOSE = "assertionMethod"
BATCH_STATEMENT_TYPE = "examflow-certificate-batch"
CREDENTIAL_ID_PREFIX = "urn:examflow:cert:"
KEY_ID_PREFIX = "ed25519:"

_LEAF, _NODE = b"\x00", b"\x01"  # RFC 9162 domain separation: a node never passes as a leaf
_SUBJECT_FIELDS = (
    *("name", "idDigest", "idSalt", "ticketNumber", "level", "score"),
    *("certificate", "certificateNumber", "sitting", "school", "schoolName"),
)


class CredentialError(ValueError):
    """Base class: a key, batch or credential that cannot be used, with the reason."""


class KeyFileError(CredentialError):
    """A private-key file that cannot be written or must not be used."""


class SignatureError(CredentialError):
    """A batch signature that is missing, not allowed, or does not verify."""


class VoidSignatureError(SignatureError):
    """A signature over an earlier version of the batch (an entry changed after signing)."""


def describe_party(party: str) -> str:
    """'the organiser' or 'school P1', for messages."""
    return "the organiser" if party == ORGANISER else f"school {party}"


# --- keys -----------------------------------------------------------------------------------


class RegisteredKey(NamedTuple):
    """A public key as registered in the database: whose it is, and the raw key (base64)."""

    party: str
    public_key_b64: str


KeyRegistry = Mapping[str, RegisteredKey]
"""key id -> registered key: the keys a signer or verifier trusts."""


def registry(keys: Iterable[tuple[str, str]]) -> dict[str, RegisteredKey]:
    """A KeyRegistry from (party, public_key_b64) pairs."""
    return {key_id(public): RegisteredKey(party, public) for party, public in keys}


def generate_keypair() -> tuple[bytes, str]:
    """A new key pair: (PKCS#8 PEM private key, raw public key in standard base64)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, public_key_b64(private_key)


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key of ``private_key`` in standard base64."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode("ascii")


def key_id(public_key_b64: str) -> str:
    """'ed25519:' + the first 16 hex digits of SHA-256 of the raw public key.

    Short enough to read out; a collision cannot forge anything, because signatures are
    always checked against the full registered key, never against the id.
    """
    raw = _raw_public_key(public_key_b64)
    return KEY_ID_PREFIX + hashlib.sha256(raw).hexdigest()[:16]


def write_private_key(path: str | os.PathLike[str], pem: bytes) -> None:
    """Create ``path`` holding ``pem``, readable by its owner only (0600); never overwrite.

    O_EXCL makes creation and the mode one step, so the key is never briefly world-readable
    and an existing key (perhaps the only copy) is never replaced.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists: refusing to overwrite a key file") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(path).unlink(missing_ok=True)  # no half-written key left behind
        raise


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; refused if group or others may read or write it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    with os.fdopen(fd, "rb") as file:
        # fstat the open file, not the path: the file checked is the file read.
        mode = os.fstat(file.fileno()).st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(
                f"{path} is accessible to group or others (mode {mode:04o}): a private key must "
                f"be readable by its owner only; run: chmod 600 {path}"
            )
        pem = file.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _raw_public_key(public_key_b64: str) -> bytes:
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except binascii.Error:
        raise CredentialError(f"public key {public_key_b64!r} is not base64") from None
    if len(raw) != 32:
        raise CredentialError(f"an Ed25519 public key has 32 bytes, this one has {len(raw)}")
    return raw


@lru_cache(maxsize=4096)
def _public_key(public_key_b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_raw_public_key(public_key_b64))


# --- ID numbers -----------------------------------------------------------------------------


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


def id_matches(credential: Mapping[str, Any], id_number: str) -> bool:
    """Whether ``id_number`` is the ID whose digest the credential carries."""
    subject = credential.get("credentialSubject")
    if not isinstance(subject, Mapping):
        return False
    salt, digest = subject.get("idSalt"), subject.get("idDigest")
    if not isinstance(salt, str) or not isinstance(digest, str):
        return False
    return hmac.compare_digest(id_digest(id_number, salt), digest)


# --- the batch ------------------------------------------------------------------------------


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


class BatchSignature(_Frozen):
    """One party's signature over one version of a batch (store all five fields).

    ``created`` is kept as the exact string that was signed: a database that drops time
    zones or microseconds must not be able to change what the signature covers.
    """

    party: str = Field(min_length=1)
    key_id: str = Field(pattern=r"^ed25519:[0-9a-f]{16}$")
    batch_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature_b64: str = Field(min_length=1)
    created: str

    @field_validator("created")
    @classmethod
    def _timestamp_with_offset(cls, created: str) -> str:
        if datetime.fromisoformat(created).tzinfo is None:
            raise ValueError(f"created {created!r} has no UTC offset")
        return created

    @property
    def signed_at(self) -> datetime:
        return datetime.fromisoformat(self.created)


def credential_id(certificate_number: str) -> str:
    return CREDENTIAL_ID_PREFIX + certificate_number


def unsigned_credentials(batch: CertificateBatch) -> list[dict[str, Any]]:
    """The batch's credential documents without proofs, in certificate-number order.

    Plain dicts built field by field: this runs once per certificate per signing party.
    """
    valid_from = _timestamp(batch.valid_from)
    sitting, certificate = batch.sitting_code, batch.certificate
    school, school_name = batch.school_code, batch.school_name
    issuer_id, issuer_name = batch.issuer_id, batch.issuer_name
    return [
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


def batch_digest(batch: CertificateBatch) -> str:
    """SHA-256 (hex) of the canonical batch statement: what a batch signature is over.

    Any change to any entry or batch field changes it, which is what voids old signatures.
    """
    leaves = [_leaf(document) for document in unsigned_credentials(batch)]
    return _statement_digest(batch.sitting_code, batch.school_code, len(leaves), _root(leaves))


def sign_batch(
    batch: CertificateBatch,
    party: str,
    private_key: Ed25519PrivateKey,
    signed_at: datetime,
    trusted_keys: KeyRegistry,
) -> BatchSignature:
    """``party``'s signature over ``batch``, refused unless the key is registered to ``party``
    and ``party`` is the organiser or the batch's own school."""
    _check_may_sign(batch, party)
    public = public_key_b64(private_key)
    kid = key_id(public)
    registered = trusted_keys.get(kid)
    if registered is None or registered.public_key_b64 != public:
        raise SignatureError(f"key {kid} is not registered: register its public key first")
    if registered.party != party:
        raise SignatureError(
            f"key {kid} is registered to {describe_party(registered.party)}, "
            f"so it cannot sign as {describe_party(party)}"
        )
    digest = batch_digest(batch)
    created = _timestamp(signed_at)
    signature = private_key.sign(_signing_input(_proof_config(party, kid, created), digest))
    return BatchSignature(
        party=party,
        key_id=kid,
        batch_digest=digest,
        signature_b64=base64.b64encode(signature).decode("ascii"),
        created=created,
    )


def verify_batch_signature(
    batch: CertificateBatch,
    signature: BatchSignature,
    trusted_keys: KeyRegistry,
    *,
    digest: str | None = None,
) -> None:
    """Raise SignatureError saying why ``signature`` is not a valid signature of ``batch``
    (VoidSignatureError if the batch changed since); ``digest`` if already computed."""
    party, kid = signature.party, signature.key_id
    _check_may_sign(batch, party)
    registered = trusted_keys.get(kid)
    if registered is None:
        raise SignatureError(f"the signature by {describe_party(party)} uses unknown key {kid}")
    if registered.party != party:
        raise SignatureError(
            f"the signature claims to be by {describe_party(party)}, "
            f"but key {kid} is registered to {describe_party(registered.party)}"
        )
    current = digest if digest is not None else batch_digest(batch)
    if signature.batch_digest != current:
        raise VoidSignatureError(
            f"the signature by {describe_party(party)} ({signature.created}) is void: the batch "
            "changed after it was signed (a review changed an entry?); it must be signed again"
        )
    try:
        raw_signature = base64.b64decode(signature.signature_b64, validate=True)
    except binascii.Error:
        raise SignatureError(f"the signature by {describe_party(party)} is not base64") from None
    message = _signing_input(_proof_config(party, kid, signature.created), current)
    if not _ed25519_ok(registered.public_key_b64, raw_signature, message):
        raise SignatureError(
            f"the signature by {describe_party(party)} (key {kid}) does not verify: "
            "it was not made with this key over this batch"
        )


@dataclass(frozen=True)
class SignatureCheck:
    """Which parties have validly signed a batch, and what is wrong with the rest."""

    school_code: str
    valid: dict[str, BatchSignature]
    problems: list[str]

    @property
    def complete(self) -> bool:
        """Both the organiser and the school have a valid signature: issuing may go ahead."""
        return ORGANISER in self.valid and self.school_code in self.valid


def check_batch_signatures(
    batch: CertificateBatch,
    signatures: Iterable[BatchSignature],
    trusted_keys: KeyRegistry,
    *,
    digest: str | None = None,
) -> SignatureCheck:
    """Sort ``signatures`` (say, every one stored for this batch, old ones included) into
    one valid signature per party and a list of problems: void, unknown key, missing…"""
    current = digest if digest is not None else batch_digest(batch)
    valid: dict[str, BatchSignature] = {}
    failures: dict[str, str] = {}
    problems: list[str] = []
    for signature in signatures:
        try:
            verify_batch_signature(batch, signature, trusted_keys, digest=current)
        except SignatureError as exc:
            if signature.party in (ORGANISER, batch.school_code):
                failures[signature.party] = str(exc)
            else:
                problems.append(str(exc))
        else:
            valid.setdefault(signature.party, signature)
    for party in (ORGANISER, batch.school_code):
        if party not in valid:
            problems.append(failures.get(party) or f"missing {_possessive(party)} signature")
    return SignatureCheck(batch.school_code, valid, problems)


def issue_credentials(
    batch: CertificateBatch,
    signatures: Iterable[BatchSignature],
    trusted_keys: KeyRegistry,
) -> list[dict[str, Any]]:
    """The batch's credentials, each with the organiser's and the school's proof.

    Raises SignatureError listing every problem unless both parties have validly signed this
    exact batch. Needs no private key. Deterministic: the same batch and signatures give the
    same documents, so re-issuing a certificate reproduces it byte for byte.
    """
    documents = unsigned_credentials(batch)
    leaves = [_leaf(document) for document in documents]
    paths: list[list[str]] = [[] for _ in leaves]
    root = _merkle(leaves, 0, len(leaves), paths)
    size = len(leaves)
    digest = _statement_digest(batch.sitting_code, batch.school_code, size, root)
    check = check_batch_signatures(batch, signatures, trusted_keys, digest=digest)
    if not check.complete:
        raise SignatureError("cannot issue: " + "; ".join(check.problems))
    signers = [check.valid[ORGANISER], check.valid[batch.school_code]]
    # Everything in a proof but the Merkle path is the same for the whole batch.
    proof_heads = [_proof_head(signature) for signature in signers]
    for index, (document, path) in enumerate(zip(documents, paths, strict=True)):
        document["proof"] = [
            head | {"merkleProof": {"size": size, "index": index, "path": path.copy()}}
            for head in proof_heads
        ]
    return documents


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationReport:
    """The verdict on one credential: ok, or every problem found, in plain English."""

    ok: bool
    problems: list[str]
    signed_by: list[str] = field(default_factory=list)  # parties whose proofs verified

    def __str__(self) -> str:
        if self.ok:
            return "valid: signed by " + " and ".join(map(describe_party, self.signed_by))
        return "NOT valid:\n" + "\n".join(f"- {problem}" for problem in self.problems)


def verify_credential(
    document: object, trusted_keys: KeyRegistry, *, as_of: datetime | None = None
) -> VerificationReport:
    """Check one credential: content shape, both proofs, their keys and parties."""
    return CredentialVerifier(trusted_keys).verify(document, as_of=as_of)


_Roots = list[tuple[object, tuple[int, bytes | None]]]  # (merkleProof, (size, root)) seen


class CredentialVerifier:
    """Verifies credentials against a key registry, remembering Ed25519 results.

    Every credential of a batch carries the same two batch signatures, so checking many
    credentials costs one Ed25519 verification per batch and party; each credential's own
    content is still hashed and its Merkle path walked to the signed root.
    """

    _MEMO_LIMIT = 65536

    def __init__(self, trusted_keys: KeyRegistry) -> None:
        self._trusted = trusted_keys
        self._memo: dict[tuple[str, bytes, bytes], bool] = {}

    def verify(self, document: object, *, as_of: datetime | None = None) -> VerificationReport:
        if not isinstance(document, dict):
            return VerificationReport(False, ["the credential is not a JSON object"])
        problems = _content_problems(document, as_of)
        proofs = document.get("proof")
        if proofs is None or proofs == []:
            return VerificationReport(False, [*problems, "credential has no proof"])
        if isinstance(proofs, dict):  # a single proof may be given as an object
            proofs = [proofs]
        if not isinstance(proofs, list):
            return VerificationReport(False, [*problems, "proof is not a list of proofs"])
        unsigned = {key: value for key, value in document.items() if key != "proof"}
        try:
            leaf = _leaf(unsigned)
        except CanonicalJsonError as exc:
            return VerificationReport(
                False, [*problems, f"the credential is not valid JSON: {exc}"]
            )
        subject = document.get("credentialSubject")
        school = subject.get("school") if isinstance(subject, dict) else None
        sitting = subject.get("sitting") if isinstance(subject, dict) else None
        school_code = school if isinstance(school, str) else None
        claimed: set[str] = set()
        roots: _Roots = []
        signed_by: list[str] = []
        for number, proof in enumerate(proofs, 1):
            party, problem = self._check_proof(
                number, proof, leaf, sitting, school_code, document.get("@context"), roots
            )
            if party is not None:
                claimed.add(party)
            if problem is not None:
                problems.append(problem)
            elif party in signed_by:
                problems.append(
                    f"proof {number} repeats {_possessive(party)} signature: two proofs by one "
                    "party count once"
                )
            elif party is not None:
                signed_by.append(party)
        for party in (ORGANISER, school_code or "?"):
            if party not in claimed:
                problems.append(f"missing {_possessive(party)} signature")
        return VerificationReport(not problems, problems, signed_by)

    def _check_proof(
        self,
        number: int,
        proof: object,
        leaf: bytes,
        sitting: object,
        school_code: str | None,
        context: object,
        roots: _Roots,
    ) -> tuple[str | None, str | None]:
        """(the party the proof stands for, None) if it verifies, else (party, the problem)."""
        if not isinstance(proof, dict):
            return None, f"proof {number} is not an object"
        kid, party = proof.get("verificationMethod"), proof.get("party")
        if not isinstance(party, str):
            return None, f"proof {number} does not say which party made it"
        if (
            proof.get("type") != "DataIntegrityProof"
            or proof.get("cryptosuite") != CRYPTOSUITE
            or proof.get("proofPurpose") != PROOF_PURPOSE
        ):
            return party, (
                f"proof {number} is not a DataIntegrityProof of cryptosuite {CRYPTOSUITE} "
                f"for {PROOF_PURPOSE}"
            )
        registered = self._trusted.get(kid) if isinstance(kid, str) else None
        if registered is None:
            return party, f"proof {number} by key {kid} is not a registered key"
        if registered.party != party:
            return party, (
                f"proof {number} claims to be by {describe_party(party)}, but key {kid} is "
                f"registered to {describe_party(registered.party)}"
            )
        if party != ORGANISER and party != school_code:
            return party, (
                f"proof {number} is by {describe_party(party)}, but this credential is from "
                f"{describe_party(school_code or '?')}: a school signs only its own certificates"
            )
        signature = _proof_value(proof)
        size, root = _root_of(proof.get("merkleProof"), leaf, roots)
        if signature is None or root is None or not isinstance(sitting, str):
            return party, f"proof {number} by {describe_party(party)} is malformed"
        config = {k: v for k, v in proof.items() if k not in ("proofValue", "merkleProof")}
        config["@context"] = context
        try:
            message = _signing_input(config, _statement_digest(sitting, school_code, size, root))
        except CanonicalJsonError:
            return party, f"proof {number} by {describe_party(party)} is malformed"
        if not self._ed25519_ok(registered.public_key_b64, signature, message):
            return party, (
                f"signature by {describe_party(party)} (key {kid}) does not match the content: "
                "a field was changed after signing"
            )
        return party, None

    def _ed25519_ok(self, public_key_b64: str, signature: bytes, message: bytes) -> bool:
        memo_key = (public_key_b64, signature, message)
        known = self._memo.get(memo_key)
        if known is None:
            if len(self._memo) >= self._MEMO_LIMIT:
                self._memo.clear()
            known = self._memo[memo_key] = _ed25519_ok(public_key_b64, signature, message)
        return known


def _content_problems(document: dict[str, Any], as_of: datetime | None) -> list[str]:
    """What makes ``document`` not an examflow certificate credential, proofs aside."""
    problems = []
    context = document.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_CONTEXT:
        problems.append(f"@context does not start with {VC_CONTEXT}")
    types = document.get("type")
    if not isinstance(types, list) or not all(t in types for t in CREDENTIAL_TYPES):
        problems.append(f"type is not {list(CREDENTIAL_TYPES)}")
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        return [*problems, "credentialSubject is missing"]
    missing = [name for name in _SUBJECT_FIELDS if name not in subject]
    if missing:
        problems.append(f"credentialSubject lacks {', '.join(missing)}")
    number = subject.get("certificateNumber")
    if isinstance(number, str) and document.get("id") != credential_id(number):
        problems.append(f"id {document.get('id')!r} is not {credential_id(number)!r}")
    if as_of is not None:
        if as_of.tzinfo is None:
            raise CredentialError(f"as_of {as_of} has no time zone: give an aware date-time")
        problems.extend(_validity_problems(document.get("validFrom"), as_of))
    return problems


def _validity_problems(valid_from: object, as_of: datetime) -> list[str]:
    try:
        starts = datetime.fromisoformat(valid_from) if isinstance(valid_from, str) else None
    except ValueError:
        starts = None
    if starts is None or starts.tzinfo is None:
        return [f"validFrom {valid_from!r} is not a date-time with a UTC offset"]
    if as_of < starts:
        return [f"not valid before {valid_from}"]
    return []


# --- signing input, Merkle tree, encodings --------------------------------------------------


def _check_may_sign(batch: CertificateBatch, party: str) -> None:
    if party != ORGANISER and party != batch.school_code:
        raise SignatureError(
            f"{describe_party(party)} cannot sign the batch of {describe_party(batch.school_code)}:"
            " a school signs only its own batch"
        )


def _possessive(party: str) -> str:
    return "the organiser's" if party == ORGANISER else f"the school's ({party})"


def _timestamp(moment: datetime) -> str:
    """ISO 8601 in Asia/Shanghai to the second: one spelling per instant, as signed."""
    if moment.tzinfo is None:
        raise CredentialError(f"{moment} has no time zone: give an aware date-time")
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _proof_config(party: str, kid: str, created: str) -> dict[str, Any]:
    """The proof minus proofValue and merkleProof, with the document's @context (as in
    eddsa-jcs-2022): signing it binds party, key, time and purpose to the signature."""
    return {
        "@context": [VC_CONTEXT],
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": kid,
        "proofPurpose": PROOF_PURPOSE,
        "party": party,
    }


def _proof_head(signature: BatchSignature) -> dict[str, Any]:
    head = _proof_config(signature.party, signature.key_id, signature.created)
    del head["@context"]  # the document's own @context stands in for it
    raw = base64.b64decode(signature.signature_b64)
    # Multibase 'u': base64url without padding.
    head["proofValue"] = "u" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return head


def _proof_value(proof: dict[str, Any]) -> bytes | None:
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("u"):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[1:] + "=" * (-len(value[1:]) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


def _signing_input(config: dict[str, Any], digest_hex: str) -> bytes:
    return hashlib.sha256(canonical_json(config)).digest() + bytes.fromhex(digest_hex)


def _statement_digest(sitting: str, school: str | None, size: int, root: bytes) -> str:
    statement = {
        "type": BATCH_STATEMENT_TYPE,
        "sitting": sitting,
        "school": school,
        "size": size,
        "root": root.hex(),
    }
    return hashlib.sha256(canonical_json(statement)).hexdigest()


def _ed25519_ok(public_key_b64: str, signature: bytes, message: bytes) -> bool:
    try:
        _public_key(public_key_b64).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _leaf(document: dict[str, Any]) -> bytes:
    return hashlib.sha256(_LEAF + canonical_json(document)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two below ``size`` (≥ 2): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def _root(leaves: Sequence[bytes]) -> bytes:
    return _merkle(leaves, 0, len(leaves), None)


def _merkle(leaves: Sequence[bytes], start: int, stop: int, paths: list[list[str]] | None) -> bytes:
    """RFC 9162 MTH of leaves[start:stop]; appends each leaf's audit path (hex, leaf level
    first) to ``paths`` when given."""
    if stop - start == 1:
        return leaves[start]
    middle = start + _split(stop - start)
    left = _merkle(leaves, start, middle, paths)
    right = _merkle(leaves, middle, stop, paths)
    if paths is not None:
        right_hex, left_hex = right.hex(), left.hex()
        for index in range(start, middle):
            paths[index].append(right_hex)
        for index in range(middle, stop):
            paths[index].append(left_hex)
    return _node(left, right)


def _root_of(merkle: object, leaf: bytes, roots: _Roots) -> tuple[int, bytes | None]:
    """_merkle_root_from, remembering results in ``roots``: both proofs of a credential
    normally carry the same Merkle path, which then is walked once."""
    for seen, result in roots:
        if seen == merkle:
            return result
    result = _merkle_root_from(merkle, leaf)
    roots.append((merkle, result))
    return result


def _merkle_root_from(merkle: object, leaf: bytes) -> tuple[int, bytes | None]:
    """(tree size, root) from a proof's merkleProof and the document's leaf hash (RFC 9162
    §2.1.3.2); root None if the merkleProof is malformed."""
    if not isinstance(merkle, dict):
        return 0, None
    size, index, path = merkle.get("size"), merkle.get("index"), merkle.get("path")
    if (
        not isinstance(size, int)
        or not isinstance(index, int)
        or not isinstance(path, list)
        or not 0 <= index < size
    ):
        return 0, None
    try:
        hashes = [bytes.fromhex(item) for item in path]
    except (TypeError, ValueError):
        return size, None
    return size, _root_from_path(leaf, index, size, hashes)


def _root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    position, last, result = index, size - 1, leaf
    for sibling in path:
        if last == 0 or len(sibling) != 32:
            return None
        if position & 1 or position == last:
            result = _node(sibling, result)
            while not position & 1 and position:
                position, last = position >> 1, last >> 1
        else:
            result = _node(result, sibling)
        position, last = position >> 1, last >> 1
    return result if last == 0 else None
