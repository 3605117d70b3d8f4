"""Verifying a credential on its own: content shape, both proofs, their keys and parties.

A credential verifies without the rest of its batch: each proof carries the Merkle path from
the document to the signed root. A verifier checking many credentials verifies each batch
signature once (memoised): two Ed25519 verifications per credential would cap it near 3,500
credentials/s per core.
"""

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.canonical_json import CanonicalJsonError
from models.credentials.batch import (
    CREDENTIAL_TYPES,
    VC_CONTEXT,
    credential_id,
    id_digest,
)
from models.credentials.errors import CredentialError
from models.credentials.keys import (
    ORGANISER,
    KeyRegistry,
    RegisteredKey,
    describe_party,
    ed25519_ok,
    possessive,
)
from models.credentials.merkle import leaf, root_from_proof
from models.credentials.statement import (
    CRYPTOSUITE,
    PROOF_PURPOSE,
    signing_input,
    statement_digest,
)

_SUBJECT_FIELDS = (
    *("name", "idDigest", "idSalt", "ticketNumber", "level", "score"),
    *("certificate", "certificateNumber", "sitting", "school", "schoolName"),
)


def id_matches(credential: Mapping[str, Any], id_number: str) -> bool:
    """Whether ``id_number`` is the ID whose digest the credential carries."""
    subject = credential.get("credentialSubject")
    if not isinstance(subject, Mapping):
        return False
    salt, digest = subject.get("idSalt"), subject.get("idDigest")
    if not isinstance(salt, str) or not isinstance(digest, str):
        return False
    return hmac.compare_digest(id_digest(id_number, salt), digest)


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
            leaf_hash = leaf(unsigned)
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
                number, proof, leaf_hash, sitting, school_code, document.get("@context"), roots
            )
            if party is not None:
                claimed.add(party)
            if problem is not None:
                problems.append(problem)
            elif party in signed_by:
                problems.append(
                    f"proof {number} repeats {possessive(party)} signature: two proofs by one "
                    "party count once"
                )
            elif party is not None:
                signed_by.append(party)
        for party in (ORGANISER, school_code or "?"):
            if party not in claimed:
                problems.append(f"missing {possessive(party)} signature")
        return VerificationReport(not problems, problems, signed_by)

    def _check_proof(
        self,
        number: int,
        proof: object,
        leaf_hash: bytes,
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
        if registered.revoked_at is not None and _not_before(proof.get("created"), registered):
            return party, (
                f"proof {number} by {describe_party(party)} was made with key {kid}, revoked "
                f"{registered.revoked_at}, on or after its revocation"
            )
        if party != ORGANISER and party != school_code:
            return party, (
                f"proof {number} is by {describe_party(party)}, but this credential is from "
                f"{describe_party(school_code or '?')}: a school signs only its own certificates"
            )
        signature = _proof_value(proof)
        size, root = _root_of(proof.get("merkleProof"), leaf_hash, roots)
        if signature is None or root is None or not isinstance(sitting, str):
            return party, f"proof {number} by {describe_party(party)} is malformed"
        config = {k: v for k, v in proof.items() if k not in ("proofValue", "merkleProof")}
        config["@context"] = context
        try:
            message = signing_input(config, statement_digest(sitting, school_code, size, root))
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
            known = self._memo[memo_key] = ed25519_ok(public_key_b64, signature, message)
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


def _not_before(created: object, key: RegisteredKey) -> bool:
    """Whether a proof's ``created`` is at or after ``key``'s revocation (or unreadable)."""
    assert key.revoked_at is not None
    try:
        made = datetime.fromisoformat(created) if isinstance(created, str) else None
        revoked = datetime.fromisoformat(key.revoked_at)
    except ValueError:
        return True
    return made is None or made.tzinfo is None or made >= revoked


def _proof_value(proof: dict[str, Any]) -> bytes | None:
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("u"):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[1:] + "=" * (-len(value[1:]) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


def _root_of(merkle: object, leaf_hash: bytes, roots: _Roots) -> tuple[int, bytes | None]:
    """merkle.root_from_proof, remembering results in ``roots``: both proofs of a credential
    normally carry the same Merkle path, which then is walked once."""
    for seen, result in roots:
        if seen == merkle:
            return result
    result = root_from_proof(merkle, leaf_hash)
    roots.append((merkle, result))
    return result
