"""Ed25519 keys: the parties, key ids, public keys and the registry a signer or verifier trusts.

Pure: a key pair is made in memory; writing and reading private-key files is
``adapters.key_files``'s job.
"""

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from models.credentials.errors import CredentialError

ORGANISER = "organiser"
"""The organiser's party name; every other party is a school, named by its school code."""

KEY_ID_PREFIX = "ed25519:"


def describe_party(party: str) -> str:
    """'the organiser' or 'school P1', for messages."""
    return "the organiser" if party == ORGANISER else f"school {party}"


def possessive(party: str) -> str:
    return "the organiser's" if party == ORGANISER else f"the school's ({party})"


class RegisteredKey(NamedTuple):
    """A public key as registered in the database: whose it is, the raw key (base64), and
    when it was revoked (ISO time), if it was: only proofs made before then still count."""

    party: str
    public_key_b64: str
    revoked_at: str | None = None


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


def fingerprint(public_key_b64: str) -> str:
    """SHA-256 of the raw public key, hex in groups of four: what ops read out by phone to
    confirm a school's key (the key id is its first 16 digits)."""
    digest = hashlib.sha256(_raw_public_key(public_key_b64)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 64, 4))


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


def ed25519_ok(public_key_b64: str, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` over ``message`` verifies with the raw public key given."""
    try:
        _public_key(public_key_b64).verify(signature, message)
    except InvalidSignature:
        return False
    return True
