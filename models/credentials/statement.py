"""The batch statement: exactly which bytes each party signs.

A party signs a batch once. What it signs is

    SHA-256(JCS(proof config)) ‖ SHA-256(JCS(statement))

(the eddsa-jcs-2022 recipe, with the statement in place of the document), where JCS is RFC
8785 canonical JSON;

- the *proof config* is ``{"@context": [VC context], "type": "DataIntegrityProof",
  "cryptosuite": "examflow-eddsa-jcs-merkle-2024", "created": <ISO time, Asia/Shanghai, to
  the second>, "verificationMethod": <key id>, "proofPurpose": "assertionMethod", "party":
  <"organiser" or the school code>}``, which binds party, key, time and purpose;
- the *statement* is ``{"type": "examflow-certificate-batch", "sitting": <code>, "school":
  <code>, "size": <number of certificates>, "root": <hex Merkle root>}``, the root of the RFC
  9162 tree whose leaves are the batch's canonical credential documents without proofs
  (``models.credentials.merkle``).

Any change to any entry or batch field changes the root, hence the digest, which is what
voids earlier signatures.
"""

import hashlib
from typing import Any

from models.canonical_json import canonical_json
from models.credentials.batch import VC_CONTEXT, CertificateBatch, unsigned_credentials
from models.credentials.merkle import leaf, root

CRYPTOSUITE = "examflow-eddsa-jcs-merkle-2024"
PROOF_PURPOSE = "assertionMethod"
BATCH_STATEMENT_TYPE = "examflow-certificate-batch"


def batch_digest(batch: CertificateBatch) -> str:
    """SHA-256 (hex) of the canonical batch statement: what a batch signature is over.

    Any change to any entry or batch field changes it, which is what voids old signatures.
    """
    return statement_digest(batch.sitting_code, batch.school_code, *batch_root(batch))


def batch_root(batch: CertificateBatch) -> tuple[int, bytes]:
    """(number of certificates, RFC 9162 Merkle root of their canonical documents)."""
    leaves = [leaf(document) for document in unsigned_credentials(batch)]
    return len(leaves), root(leaves)


def statement(sitting: str, school: str | None, size: int, root: bytes) -> dict[str, Any]:
    """The batch statement itself (its JCS form's SHA-256 is the batch digest)."""
    return {
        "type": BATCH_STATEMENT_TYPE,
        "sitting": sitting,
        "school": school,
        "size": size,
        "root": root.hex(),
    }


def statement_digest(sitting: str, school: str | None, size: int, root: bytes) -> str:
    return hashlib.sha256(canonical_json(statement(sitting, school, size, root))).hexdigest()


def proof_config(party: str, kid: str, created: str) -> dict[str, Any]:
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


def signing_input(config: dict[str, Any], digest_hex: str) -> bytes:
    return hashlib.sha256(canonical_json(config)).digest() + bytes.fromhex(digest_hex)
