"""The revocation list of a sitting: a W3C Bitstring Status List v1.0 credential.

Each issued credential names one bit of its sitting's list (``credentialStatus``, a
``BitstringStatusListEntry``); the bit is 1 while the credential is revoked. The list is a
``BitstringStatusListCredential`` whose ``encodedList`` is the multibase base64url ('u', no
padding) of the GZIP-compressed bitstring, at least 131,072 bits (16 KiB) long, bit 0 being
the most significant bit of the first byte (§2.1, §3.2 of the spec). The organiser signs it
with an ``eddsa-jcs-2022`` DataIntegrityProof (signature over SHA-256(JCS(proof config)) ‖
SHA-256(JCS(document)), proofValue multibase base58btc 'z'), so any Data Integrity verifier
can check it. Pure: keys and times come in as arguments.
"""

import base64
import binascii
import gzip
import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.canonical_json import CanonicalJsonError, canonical_json
from models.credentials.batch import REVOCATION, VC_CONTEXT, timestamp
from models.credentials.errors import CredentialError, SignatureError
from models.credentials.keys import (
    ORGANISER,
    KeyRegistry,
    describe_party,
    ed25519_ok,
    key_id,
    public_key_b64,
)

MIN_BITS = 131_072  # the spec's minimum list length: herd privacy for the holders
LIST_CRYPTOSUITE = "eddsa-jcs-2022"
LIST_TYPES = ("VerifiableCredential", "BitstringStatusListCredential")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def list_length(highest: int | None, minimum: int = MIN_BITS) -> int:
    """The bits of a list whose highest index in use is ``highest``: ``minimum`` (the W3C
    minimum), doubled until it covers ``highest``."""
    size = minimum
    while highest is not None and highest >= size:
        size *= 2
    return size


def encode_list(revoked: Iterable[int], length: int = MIN_BITS) -> str:
    """'u' + base64url(GZIP(bitstring)) with the bits at ``revoked`` set: ``length`` bits
    (at least MIN_BITS; more if a revoked index needs them), a whole number of bytes."""
    indexes = sorted(set(revoked))
    if indexes and indexes[0] < 0:
        raise CredentialError(f"status index {indexes[0]} is negative")
    needed = indexes[-1] + 1 if indexes else 0
    size = (max(MIN_BITS, length, needed) + 7) // 8 * 8
    bits = bytearray(size // 8)
    for index in indexes:
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_list(encoded: str) -> bytes:
    """The bitstring of an ``encodedList``; CredentialError if it is not one."""
    if not encoded.startswith("u"):
        raise CredentialError("encodedList is not multibase base64url (prefix 'u')")
    body = encoded[1:]
    try:
        return gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, OSError, EOFError) as exc:
        raise CredentialError(f"encodedList is not a GZIP bitstring: {exc}") from None


def bit_is_set(bitstring: bytes, index: int) -> bool:
    if not 0 <= index < len(bitstring) * 8:
        raise CredentialError(f"status index {index} is outside the list ({len(bitstring) * 8})")
    return bool(bitstring[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(
    url: str,
    issuer_id: str,
    issuer_name: str,
    valid_from: datetime,
    revoked: Iterable[int],
    length: int = MIN_BITS,
) -> dict[str, Any]:
    """The unsigned list credential published at ``url`` (its ``id``), ``length`` bits long
    at least (it must cover every index its credentials name)."""
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": list(LIST_TYPES),
        "issuer": {"id": issuer_id, "name": issuer_name},
        "validFrom": timestamp(valid_from),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": REVOCATION,
            "encodedList": encode_list(revoked, length),
        },
    }


def base58btc(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, rest = divmod(number, 58)
        digits = _B58[rest] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def base58btc_decode(text: str) -> bytes:
    number = 0
    for char in text:
        position = _B58.find(char)
        if position < 0:
            raise CredentialError(f"{char!r} is not a base58btc digit")
        number = number * 58 + position
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _list_proof_config(document: dict[str, Any], kid: str, created: str) -> dict[str, Any]:
    return {
        "@context": document.get("@context"),
        "type": "DataIntegrityProof",
        "cryptosuite": LIST_CRYPTOSUITE,
        "created": created,
        "verificationMethod": kid,
        "proofPurpose": "assertionMethod",
    }


def _hash_data(config: dict[str, Any], unsecured: dict[str, Any]) -> bytes:
    return (
        hashlib.sha256(canonical_json(config)).digest()
        + hashlib.sha256(canonical_json(unsecured)).digest()
    )


def sign_status_list(
    document: dict[str, Any],
    private_key: Ed25519PrivateKey,
    signed_at: datetime,
    trusted_keys: KeyRegistry,
) -> dict[str, Any]:
    """``document`` with the organiser's eddsa-jcs-2022 proof; refused for any other key."""
    kid = key_id(public_key_b64(private_key))
    registered = trusted_keys.get(kid)
    if registered is None or registered.party != ORGANISER:
        owner = "not registered" if registered is None else describe_party(registered.party)
        raise SignatureError(f"key {kid} is {owner}: only the organiser signs a status list")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = _list_proof_config(unsecured, kid, timestamp(signed_at))
    signature = private_key.sign(_hash_data(config, unsecured))
    proof = {k: v for k, v in config.items() if k != "@context"}
    proof["proofValue"] = "z" + base58btc(signature)
    return unsecured | {"proof": proof}


def status_list_problems(document: object, trusted_keys: KeyRegistry) -> list[str]:
    """Why ``document`` is not a list credential signed by the organiser (empty: it is)."""
    if not isinstance(document, dict):
        return ["the status list is not a JSON object"]
    proof = document.get("proof")
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict) or not isinstance(subject.get("encodedList"), str):
        return ["the status list has no encodedList"]
    if not isinstance(proof, dict) or proof.get("cryptosuite") != LIST_CRYPTOSUITE:
        return [f"the status list has no {LIST_CRYPTOSUITE} proof"]
    kid, created, value = (proof.get(k) for k in ("verificationMethod", "created", "proofValue"))
    registered = trusted_keys.get(kid) if isinstance(kid, str) else None
    if not isinstance(kid, str) or registered is None or registered.party != ORGANISER:
        return [f"the status list is signed by key {kid}, not a registered organiser key"]
    if not isinstance(created, str) or not isinstance(value, str) or not value.startswith("z"):
        return ["the status list's proof is malformed"]
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    try:
        message = _hash_data(_list_proof_config(unsecured, kid, created), unsecured)
        signature = base58btc_decode(value[1:])
    except (CanonicalJsonError, CredentialError):
        return ["the status list's proof is malformed"]
    if not ed25519_ok(registered.public_key_b64, signature, message):
        return ["the status list's signature does not verify"]
    return []


def revoked_by_list(credential: Mapping[str, Any], document: object, keys: KeyRegistry) -> bool:
    """Whether the organiser-signed list ``document`` sets ``credential``'s revocation bit;
    CredentialError when the list is not the one the credential names, is not signed by a key
    in ``keys``, or the credential has no status entry."""
    entry = credential.get("credentialStatus")
    if not isinstance(entry, Mapping) or entry.get("statusPurpose") != REVOCATION:
        raise CredentialError("the credential has no revocation status entry")
    index, url = entry.get("statusListIndex"), entry.get("statusListCredential")
    if not isinstance(index, str) or not index.isdigit() or not isinstance(url, str):
        raise CredentialError("the credential's status entry has no index or list address")
    if problems := status_list_problems(document, keys):
        raise CredentialError("; ".join(problems))
    assert isinstance(document, dict)
    if document.get("id") != url:
        raise CredentialError(f"the status list is {document.get('id')}, not {url}")
    return bit_is_set(decode_list(document["credentialSubject"]["encodedList"]), int(index))
