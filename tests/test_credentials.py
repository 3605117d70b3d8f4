"""Two-party-signed e-certificates: canonical JSON, key files, batch signatures, credentials."""

import copy
import json
import os
import stat
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from adapters.key_files import KeyFileError, load_private_key, write_private_key
from models.canonical_json import CanonicalJsonError, canonical_json, es6_number
from models.credentials.batch import BatchEntry, CertificateBatch, id_digest, new_salt
from models.credentials.errors import SignatureError, VoidSignatureError
from models.credentials.keys import (
    ORGANISER,
    KeyRegistry,
    generate_keypair,
    key_id,
    public_key_b64,
    registry,
)
from models.credentials.signing import (
    BatchSignature,
    check_batch_signatures,
    issue_credentials,
    sign_batch,
    verify_batch_signature,
)
from models.credentials.statement import batch_digest
from models.credentials.verification import CredentialVerifier, id_matches, verify_credential
from models.domain import SHANGHAI, Level
from tests.helpers import new_id

VALID_FROM = datetime(2024, 6, 1, tzinfo=SHANGHAI)
SIGNED_AT = datetime(2024, 6, 2, 10, 30, tzinfo=SHANGHAI)

# --- canonical JSON (RFC 8785) ----------------------------------------------------------------


def test_rfc8785_section_3_2_2_example() -> None:
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorts_names_by_utf16_code_units() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    names = list(json.loads(canonical_json(value)))
    # The emoji (a surrogate pair, 0xD83D…) sorts before U+FB33, unlike in code point order.
    assert names == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert canonical_json(value).startswith(b'{"\\r":"Carriage Return","1":"One","\xc2\x80":')


@pytest.mark.parametrize(
    ("bits", "expected"),
    [  # RFC 8785 Appendix B
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert es6_number(value) == expected
    assert canonical_json([value]) == f"[{expected}]".encode()


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        {1: "non-string key"},
        2**53 + 1,
        "lone \ud800 surrogate",
        {"lone \udc00 key": 1, "é": 2},
        {1, 2},
        b"bytes",
    ],
)
def test_canonical_json_refuses_what_jcs_cannot_represent(value: object) -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json(value)


def test_canonical_json_small_cases() -> None:
    assert canonical_json({"b": [1, 2.0, -0.0, True], "a": {"z": None, "y": "\u2028"}}) == (
        '{"a":{"y":"\u2028","z":null},"b":[1,2,0,true]}'.encode()
    )
    assert canonical_json(("tuple", Level.junior)) == '["tuple","初级"]'.encode()
    assert canonical_json("\x7f\x1f") == b'"\x7f\\u001f"'


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(_json_values)
def test_canonical_json_round_trips_and_is_a_fixed_point(value: object) -> None:
    try:
        encoded = canonical_json(value)
    except CanonicalJsonError:  # only lone surrogates, which st.text() can produce
        return
    # A JSON number is a double (RFC 8785): digits beyond 2**53 parse as one, as in JavaScript.
    parsed = json.loads(encoded, parse_int=_int_or_double)
    assert canonical_json(parsed) == encoded
    assert parsed == value


def _int_or_double(text: str) -> int | float:
    number = int(text)
    return number if abs(number) <= 2**53 else float(number)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_es6_number_round_trips(value: float) -> None:
    assert float(es6_number(value)) == value


# --- key files ------------------------------------------------------------------------------


def test_private_key_file_is_written_0600_and_never_overwritten(tmp_path: Path) -> None:
    pem, public = generate_keypair()
    path = tmp_path / "organiser.pem"
    old_umask = os.umask(0)  # even with a permissive umask the file must come out 0600
    try:
        write_private_key(path, pem)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_private_key(path, generate_keypair()[0])
    assert path.read_bytes() == pem
    assert key_id(public).startswith("ed25519:") and len(key_id(public)) == 24
    loaded = load_private_key(path)
    assert registry([(ORGANISER, public)]).keys() == {key_id(public)}
    assert loaded.sign(b"x") == load_private_key(path).sign(b"x")


def test_private_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "P1.pem"
    write_private_key(path, generate_keypair()[0])
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"mode 0644.*chmod 600"):
        load_private_key(path)
    path.chmod(0o600)
    load_private_key(path)


def test_non_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    write_private_key(path, b"not a key")
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        load_private_key(path)
    with pytest.raises(KeyFileError, match="no such key file"):
        load_private_key(tmp_path / "missing.pem")


# --- ID digests -----------------------------------------------------------------------------


def test_salted_id_digest_matches_the_id_and_no_other() -> None:
    id_number, other = new_id(), new_id()
    salt = new_salt()
    digest = id_digest(id_number, salt)
    assert digest != id_digest(id_number, new_salt())  # the salt makes digests unlinkable
    document = {"credentialSubject": {"idDigest": digest, "idSalt": salt}}
    assert id_matches(document, id_number)
    # What a verifier types from the card may have a lower-case x or full-width digits.
    assert id_matches(document, " " + id_number.lower().replace("1", "１") + " ")
    assert not id_matches(document, other)
    assert id_number not in json.dumps(document)


# --- batches and signatures -----------------------------------------------------------------


class Parties:
    """Registered keys: the organiser, schools P1 and P2, and an unregistered key."""

    def __init__(self) -> None:
        self.keys = {party: Ed25519PrivateKey.generate() for party in (ORGANISER, "P1", "P2")}
        self.stranger = Ed25519PrivateKey.generate()
        self.trusted: KeyRegistry = registry(
            (party, _public(key)) for party, key in self.keys.items()
        )

    def sign(self, batch: CertificateBatch, party: str) -> BatchSignature:
        return sign_batch(batch, party, self.keys[party], SIGNED_AT, self.trusted)

    def both(self, batch: CertificateBatch) -> list[BatchSignature]:
        return [self.sign(batch, ORGANISER), self.sign(batch, batch.school_code)]


def _public(key: Ed25519PrivateKey) -> str:
    return public_key_b64(key)


@pytest.fixture(scope="module")
def parties() -> Parties:
    return Parties()


def make_batch(school: str = "P1", size: int = 5, **changes: Any) -> CertificateBatch:
    entries = [
        BatchEntry.for_candidate(
            certificate_number=f"2024-1-{school}-{i:05d}",
            name=["张三", "李四", "王五"][i % 3],
            ticket_number=f"24011{i:05d}",
            level=[Level.junior, Level.intermediate][i % 2],
            score=60 + i,
            id_number=new_id(),
            id_salt=f"{i:032x}",  # fixed salts keep the batch reproducible
        )
        for i in range(size)
    ]
    fields: dict[str, Any] = {
        "sitting_code": "2024-1",
        "certificate": "网店运营推广职业技能等级证书",
        "school_code": school,
        "school_name": f"{school} 职业技术学院",
        "issuer_id": "https://exam.example.cn",
        "issuer_name": "考试组织方",
        "valid_from": VALID_FROM,
        "entries": entries,
    }
    return CertificateBatch(**(fields | changes))


def with_score(batch: CertificateBatch, index: int, score: int) -> CertificateBatch:
    """The batch after a review changed one candidate's score."""
    entries = list(batch.entries)
    entries[index] = entries[index].model_copy(update={"score": score})
    return batch.model_copy(update={"entries": tuple(entries)})


def test_batch_keeps_entries_in_certificate_number_order_and_refuses_duplicates() -> None:
    batch = make_batch()
    shuffled = make_batch(entries=list(reversed(batch.entries)))
    assert shuffled.entries == batch.entries
    assert batch_digest(shuffled) == batch_digest(batch)
    with pytest.raises(ValueError, match="appears twice"):
        make_batch(entries=[*batch.entries, batch.entries[0]])
    with pytest.raises(ValueError, match="names the organiser"):
        make_batch(school_code=ORGANISER)
    with pytest.raises(ValueError, match="timezone"):
        make_batch(valid_from=datetime(2024, 6, 1))
    assert batch.levels == (Level.junior, Level.intermediate)


def test_school_cannot_sign_for_another_school(parties: Parties) -> None:
    batch = make_batch("P1")
    with pytest.raises(SignatureError, match="school P2 cannot sign the batch of school P1"):
        parties.sign(batch, "P2")
    # Nor with its own key while claiming to be P1 or the organiser.
    for claimed in ("P1", ORGANISER):
        with pytest.raises(SignatureError, match="registered to school P2"):
            sign_batch(batch, claimed, parties.keys["P2"], SIGNED_AT, parties.trusted)
    with pytest.raises(SignatureError, match="not registered"):
        sign_batch(batch, "P1", parties.stranger, SIGNED_AT, parties.trusted)


def test_one_signature_is_not_enough(parties: Parties) -> None:
    batch = make_batch()
    organiser = parties.sign(batch, ORGANISER)
    with pytest.raises(SignatureError, match=r"missing the school's \(P1\) signature"):
        issue_credentials(batch, [organiser], parties.trusted)
    with pytest.raises(SignatureError, match="missing the organiser's signature"):
        issue_credentials(batch, [parties.sign(batch, "P1")], parties.trusted)
    # Two signatures by the same party count once.
    with pytest.raises(SignatureError, match="missing the school's"):
        issue_credentials(batch, [organiser, organiser], parties.trusted)
    assert len(issue_credentials(batch, parties.both(batch), parties.trusted)) == 5


def test_review_after_signing_voids_both_signatures(parties: Parties) -> None:
    batch = make_batch()
    signatures = parties.both(batch)
    reviewed = with_score(batch, 2, 99)
    assert batch_digest(reviewed) != batch_digest(batch)
    for signature in signatures:
        verify_batch_signature(batch, signature, parties.trusted)
        with pytest.raises(VoidSignatureError, match="changed after it was signed"):
            verify_batch_signature(reviewed, signature, parties.trusted)
    check = check_batch_signatures(reviewed, signatures, parties.trusted)
    assert not check.complete and len(check.problems) == 2
    with pytest.raises(SignatureError, match="void"):
        issue_credentials(reviewed, signatures, parties.trusted)
    # Signing again (old signatures still stored alongside) makes it issuable.
    resigned = [*signatures, *parties.both(reviewed)]
    documents = issue_credentials(reviewed, resigned, parties.trusted)
    assert documents[2]["credentialSubject"]["score"] == 99
    assert verify_credential(documents[2], parties.trusted).ok


def test_signature_is_bound_to_party_key_and_time(parties: Parties) -> None:
    batch = make_batch()
    signature = parties.sign(batch, ORGANISER)
    assert signature.signed_at == SIGNED_AT and signature.created == "2024-06-02T10:30:00+08:00"
    forged = [
        signature.model_copy(update={"created": "2024-06-03T10:30:00+08:00"}),
        signature.model_copy(update={"key_id": key_id(_public(parties.keys["P1"]))}),
        signature.model_copy(update={"signature_b64": parties.sign(batch, "P1").signature_b64}),
    ]
    for bad in forged:
        with pytest.raises(SignatureError):
            verify_batch_signature(batch, bad, parties.trusted)


# --- credentials ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issued(parties: Parties) -> list[dict[str, Any]]:
    batch = make_batch(size=7)
    return issue_credentials(batch, parties.both(batch), parties.trusted)


def test_credential_is_a_vc2_document_with_two_proofs(issued: list[dict[str, Any]]) -> None:
    document = issued[0]
    assert document["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert document["id"] == "urn:examflow:cert:2024-1-P1-00000"
    assert document["type"] == ["VerifiableCredential", "CertificateCredential"]
    assert document["validFrom"] == "2024-06-01T00:00:00+08:00"
    subject = document["credentialSubject"]
    assert subject["name"] == "张三" and subject["score"] == 60 and subject["level"] == "初级"
    assert [proof["party"] for proof in document["proof"]] == [ORGANISER, "P1"]
    assert {proof["proofPurpose"] for proof in document["proof"]} == {"assertionMethod"}


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_every_credential_of_any_batch_size_verifies(parties: Parties, size: int) -> None:
    batch = make_batch(size=size)
    documents = issue_credentials(batch, parties.both(batch), parties.trusted)
    verifier = CredentialVerifier(parties.trusted)
    for document in documents:
        # What a verifier reads is the JSON file, not the dict.
        report = verifier.verify(json.loads(json.dumps(document, ensure_ascii=False)))
        assert report.ok, report
        assert report.signed_by == [ORGANISER, "P1"]
    assert issue_credentials(batch, parties.both(batch), parties.trusted) == documents


Tamper = Callable[[dict[str, Any]], None]


def _set_score(d: dict[str, Any]) -> None:
    d["credentialSubject"]["score"] = 100


def _set_name(d: dict[str, Any]) -> None:
    d["credentialSubject"]["name"] = "赵六"


def _add_field(d: dict[str, Any]) -> None:
    d["credentialSubject"]["honours"] = "优秀"


def _move_valid_from(d: dict[str, Any]) -> None:
    d["validFrom"] = "2023-06-01T00:00:00+08:00"


def _swap_merkle_index(d: dict[str, Any]) -> None:
    for proof in d["proof"]:
        proof["merkleProof"]["index"] = 1


@pytest.mark.parametrize(
    "tamper", [_set_score, _set_name, _add_field, _move_valid_from, _swap_merkle_index]
)
def test_tampered_credential_fails_verification(
    parties: Parties, issued: list[dict[str, Any]], tamper: Tamper
) -> None:
    document = copy.deepcopy(issued[3])
    tamper(document)
    report = verify_credential(document, parties.trusted)
    assert not report.ok
    assert report.problems == [
        f"signature by {who} (key {key_id(_public(parties.keys[party]))}) does not match the "
        "content: a field was changed after signing"
        for who, party in (("the organiser", ORGANISER), ("school P1", "P1"))
    ]


def test_missing_proof_names_the_missing_party(
    parties: Parties, issued: list[dict[str, Any]]
) -> None:
    school_only = copy.deepcopy(issued[1])
    del school_only["proof"][0]
    assert verify_credential(school_only, parties.trusted).problems == [
        "missing the organiser's signature"
    ]
    organiser_only = copy.deepcopy(issued[1])
    organiser_only["proof"] = organiser_only["proof"][0]  # a lone proof may be an object
    assert verify_credential(organiser_only, parties.trusted).problems == [
        "missing the school's (P1) signature"
    ]
    bare = copy.deepcopy(issued[1])
    del bare["proof"]
    assert verify_credential(bare, parties.trusted).problems == ["credential has no proof"]


def test_same_party_twice_does_not_count_as_both(
    parties: Parties, issued: list[dict[str, Any]]
) -> None:
    document = copy.deepcopy(issued[1])
    document["proof"][1] = copy.deepcopy(document["proof"][0])
    assert verify_credential(document, parties.trusted).problems == [
        "proof 2 repeats the organiser's signature: two proofs by one party count once",
        "missing the school's (P1) signature",
    ]


def test_unknown_key_fails(parties: Parties, issued: list[dict[str, Any]]) -> None:
    without_p1 = {k: v for k, v in parties.trusted.items() if v.party != "P1"}
    report = verify_credential(issued[0], without_p1)
    school_key = key_id(_public(parties.keys["P1"]))
    assert report.problems == [f"proof 2 by key {school_key} is not a registered key"]


def test_school_key_cannot_pass_as_the_organiser(
    parties: Parties, issued: list[dict[str, Any]]
) -> None:
    document = copy.deepcopy(issued[0])
    document["proof"][1]["party"] = ORGANISER
    school_key = key_id(_public(parties.keys["P1"]))
    assert verify_credential(document, parties.trusted).problems == [
        f"proof 2 claims to be by the organiser, but key {school_key} is registered to school P1",
        "missing the school's (P1) signature",
    ]


def test_another_schools_proof_does_not_count(
    parties: Parties, issued: list[dict[str, Any]]
) -> None:
    p2_batch = make_batch("P2")
    p2_document = issue_credentials(p2_batch, parties.both(p2_batch), parties.trusted)[0]
    document = copy.deepcopy(issued[0])
    document["proof"][1] = p2_document["proof"][1]
    assert verify_credential(document, parties.trusted).problems == [
        "proof 2 is by school P2, but this credential is from school P1: a school signs only "
        "its own certificates",
        "missing the school's (P1) signature",
    ]


def test_altered_proof_and_validity_window(parties: Parties, issued: list[dict[str, Any]]) -> None:
    document = copy.deepcopy(issued[0])
    document["proof"][0]["created"] = "2024-06-09T10:30:00+08:00"
    assert (
        verify_credential(document, parties.trusted)
        .problems[0]
        .startswith("signature by the organiser")
    )
    document["proof"][0]["proofValue"] = "not multibase"
    assert verify_credential(document, parties.trusted).problems == [
        "proof 1 by the organiser is malformed"
    ]
    early = datetime(2024, 5, 31, 23, 59, tzinfo=SHANGHAI)
    assert verify_credential(issued[0], parties.trusted, as_of=early).problems == [
        "not valid before 2024-06-01T00:00:00+08:00"
    ]
    assert verify_credential(issued[0], parties.trusted, as_of=VALID_FROM).ok
    assert verify_credential([], parties.trusted).problems == [
        "the credential is not a JSON object"
    ]


def test_canonical_json_large_integers_are_doubles_or_refused() -> None:
    assert canonical_json(2**60) == b"1152921504606847000"  # as ECMAScript prints 2 ** 60
    assert canonical_json(2**70) == b"1.1805916207174113e+21"
    for inexact in (2**53 + 1, 10**30, 10**400):
        with pytest.raises(CanonicalJsonError, match="not exactly representable"):
            canonical_json(inexact)
