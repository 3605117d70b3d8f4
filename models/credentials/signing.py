"""Signing a batch, checking batch signatures, and issuing the batch's credentials.

Issuing needs no private key: the school's key never leaves the school, and the
certificates stage only assembles documents from stored signatures. Each issued credential
carries both parties' signatures as two ``DataIntegrityProof`` objects (a proof set), each
with the Merkle path from its own document to the signed root.
"""

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, field_validator

from models.credentials.batch import CertificateBatch, _Frozen, timestamp, unsigned_credentials
from models.credentials.errors import SignatureError, VoidSignatureError
from models.credentials.keys import (
    ORGANISER,
    KeyRegistry,
    describe_party,
    ed25519_ok,
    key_id,
    possessive,
    public_key_b64,
)
from models.credentials.merkle import leaf, root_with_paths
from models.credentials.statement import (
    batch_digest,
    proof_config,
    signing_input,
    statement_digest,
)


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
    created = timestamp(signed_at)
    signature = private_key.sign(signing_input(proof_config(party, kid, created), digest))
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
    message = signing_input(proof_config(party, kid, signature.created), current)
    if not ed25519_ok(registered.public_key_b64, raw_signature, message):
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
            problems.append(failures.get(party) or f"missing {possessive(party)} signature")
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
    leaves = [leaf(document) for document in documents]
    root, paths = root_with_paths(leaves)
    size = len(leaves)
    digest = statement_digest(batch.sitting_code, batch.school_code, size, root)
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


def _check_may_sign(batch: CertificateBatch, party: str) -> None:
    if party != ORGANISER and party != batch.school_code:
        raise SignatureError(
            f"{describe_party(party)} cannot sign the batch of {describe_party(batch.school_code)}:"
            " a school signs only its own batch"
        )


def _proof_head(signature: BatchSignature) -> dict[str, Any]:
    head = proof_config(signature.party, signature.key_id, signature.created)
    del head["@context"]  # the document's own @context stands in for it
    raw = base64.b64decode(signature.signature_b64)
    # Multibase 'u': base64url without padding.
    head["proofValue"] = "u" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return head
