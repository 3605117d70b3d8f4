"""The key registry as the portal publishes it (``/keys.json``): what a third party needs to
check a credential's proofs and a revocation list's without examflow's database.

Each entry names the key by the id the proofs give as ``verificationMethod``, its party (the
organiser, or a school code), the raw public key (standard base64) and, for a revoked key, when
it was revoked: only proofs made before then still count. Pending keys are not listed: they
have signed nothing that counts. Why a party's key is theirs (ops confirm fingerprints by
phone) is out of band, as with any published key; the list itself is what the verifier trusts.
"""

from collections.abc import Mapping
from typing import Any

from models.credentials.errors import CredentialError
from models.credentials.keys import KeyRegistry, RegisteredKey, key_id

KEYS_TYPE = "ExamflowKeyRegistry"


def published_keys(keys: KeyRegistry) -> dict[str, Any]:
    """The registry as a JSON document, keys in id order."""
    return {
        "type": KEYS_TYPE,
        "keys": [
            {
                "id": kid,
                "party": key.party,
                "publicKeyBase64": key.public_key_b64,
                "revokedAt": key.revoked_at,
            }
            for kid, key in sorted(keys.items())
        ],
    }


def registry_from_published(document: object) -> dict[str, RegisteredKey]:
    """The registry in a published document; CredentialError saying what is wrong with it. A
    key's id must be the one its public key gives (a list cannot lend one key another's id)."""
    if not isinstance(document, Mapping) or document.get("type") != KEYS_TYPE:
        raise CredentialError(f"not a published key list (no type {KEYS_TYPE})")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise CredentialError("the key list has no keys")
    keys: dict[str, RegisteredKey] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise CredentialError(f"key {number}: not an object")
        kid, party, public, revoked = (
            entry.get(k) for k in ("id", "party", "publicKeyBase64", "revokedAt")
        )
        if not all(isinstance(v, str) and v for v in (kid, party, public)):
            raise CredentialError(f"key {number}: id, party and publicKeyBase64 are required")
        if revoked is not None and not isinstance(revoked, str):
            raise CredentialError(f"key {number}: revokedAt is not a time")
        assert isinstance(kid, str) and isinstance(party, str) and isinstance(public, str)
        try:
            derived = key_id(public)
        except CredentialError as exc:
            raise CredentialError(f"key {number} ({kid}): {exc}") from None
        if derived != kid:
            raise CredentialError(f"key {number}: its public key's id is {derived}, not {kid}")
        keys[kid] = RegisteredKey(party, public, revoked)
    return keys
