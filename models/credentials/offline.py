"""A school's batch signature made offline: the signing request the portal hands out, and the
signature that comes back.

A school whose browser cannot sign (no Ed25519 in its WebCrypto) downloads a *signing request*
from its certificates page: the batch statement, the key id and time that go into the proof
config, and the exact message bytes (``models.credentials.statement``). ``examflow sign
--statement`` signs it with the school's key file, on any computer, without the database, and
writes an *offline signature*, which the school uploads on the same page; the server stores it
only once it verifies against the school's approved key over the batch as it is then, as it
does a signature from the browser.

Before signing, the message is recomputed from the request's own fields: a request whose bytes
are not SHA-256(JCS(proof config)) ‖ SHA-256(JCS(statement)) for its party, key and time, or
whose statement is another sitting's or another school's, is refused, so a tampered file
cannot make a school sign something other than what the request says.

Values only: reading and writing the JSON files is the shells' job.
"""

import base64
import binascii
from datetime import datetime
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, field_validator

from models.credentials.batch import _Frozen
from models.credentials.errors import CredentialError
from models.credentials.keys import ORGANISER, key_id, public_key_b64
from models.credentials.statement import proof_config, signing_input, statement_digest

REQUEST_TYPE: Literal["examflow-signing-request"] = "examflow-signing-request"
SIGNATURE_TYPE: Literal["examflow-batch-signature"] = "examflow-batch-signature"
KEY_ID_PATTERN = r"^ed25519:[0-9a-f]{16}$"
DIGEST_PATTERN = r"^[0-9a-f]{64}$"


def _aware(moment: str) -> str:
    if datetime.fromisoformat(moment).tzinfo is None:
        raise ValueError(f"{moment!r} has no UTC offset")
    return moment


class BatchStatement(_Frozen):
    """The batch statement a party signs (``models.credentials.statement.statement``)."""

    type: Literal["examflow-certificate-batch"]
    sitting: str = Field(min_length=1)
    school: str = Field(min_length=1)
    size: int = Field(ge=1)
    root: str = Field(pattern=DIGEST_PATTERN)

    @property
    def digest(self) -> str:
        return statement_digest(self.sitting, self.school, self.size, bytes.fromhex(self.root))


class SigningRequest(_Frozen):
    """What a school signs offline: its batch statement, with its key and the signing time."""

    type: Literal["examflow-signing-request"] = REQUEST_TYPE
    sitting: str = Field(min_length=1)
    party: str = Field(min_length=1)
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    created: str
    expires: str
    digest: str = Field(pattern=DIGEST_PATTERN)
    statement: BatchStatement
    message_b64: str

    _created_aware = field_validator("created", "expires")(_aware)

    def checked_message(self) -> bytes:
        """The bytes to sign, once they are shown to be exactly what this request says;
        CredentialError saying what does not agree otherwise."""
        if self.party == ORGANISER or self.statement.school != self.party:
            raise CredentialError(
                f"the statement is school {self.statement.school}'s batch, "
                f"not a batch of {self.party}"
            )
        if self.statement.sitting != self.sitting:
            raise CredentialError(
                f"the statement is for sitting {self.statement.sitting}, not {self.sitting}"
            )
        if self.statement.digest != self.digest:
            raise CredentialError("the request's digest is not the digest of its statement")
        try:
            message = base64.b64decode(self.message_b64, validate=True)
        except binascii.Error:
            raise CredentialError("the request's message is not base64") from None
        expected = signing_input(proof_config(self.party, self.key_id, self.created), self.digest)
        if message != expected:
            raise CredentialError(
                "the request's message bytes are not SHA-256(JCS(proof config)) ‖ "
                "SHA-256(JCS(statement)) of its own party, key, time and statement"
            )
        return message


class OfflineSignature(_Frozen):
    """A school's signature over a signing request, as uploaded to the portal."""

    type: Literal["examflow-batch-signature"] = SIGNATURE_TYPE
    sitting: str = Field(min_length=1)
    party: str = Field(min_length=1)
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    created: str
    digest: str = Field(pattern=DIGEST_PATTERN)
    signature_b64: str = Field(min_length=1, max_length=128)

    _created_aware = field_validator("created")(_aware)


def sign_request(
    request: SigningRequest,
    private_key: Ed25519PrivateKey,
    *,
    sitting: str,
    party: str,
    as_of: datetime,
) -> OfflineSignature:
    """``party``'s signature over ``request`` with ``private_key``, refused (CredentialError)
    unless the request is for ``sitting`` and ``party``, names this very key, has not expired
    at ``as_of``, and its message is what its statement says."""
    if request.sitting != sitting:
        raise CredentialError(
            f"the statement is for sitting {request.sitting}, not {sitting}: "
            "download the statement of this sitting"
        )
    if request.party != party:
        raise CredentialError(
            f"the statement is for {request.party}, not {party}: download your own school's"
        )
    message = request.checked_message()
    kid = key_id(public_key_b64(private_key))
    if kid != request.key_id:
        raise CredentialError(
            f"the key file holds key {kid}, but the statement is to be signed with key "
            f"{request.key_id}: choose that key when downloading, or use its key file"
        )
    if as_of > datetime.fromisoformat(request.expires):
        raise CredentialError(
            f"the statement expired at {request.expires}: download a new one and sign it"
        )
    return OfflineSignature(
        sitting=sitting,
        party=party,
        key_id=kid,
        created=request.created,
        digest=request.digest,
        signature_b64=base64.b64encode(private_key.sign(message)).decode("ascii"),
    )
