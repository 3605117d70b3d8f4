"""examflow keys new|pending|approve|revoke | sign | certificates
verify|revoke|unrevoke|status-list|paper|export|list"""

import base64
import hashlib
import json
from pathlib import Path

import typer
from pydantic import ValidationError
from sqlmodel import select

from adapters.key_files import load_private_key, write_private_key
from examflow.cli.console import AS_OF_HELP, fail, out, parse_as_of
from examflow.db import session_scope
from examflow.settings import get_settings
from models.certificates import (
    CertificateError,
    IssuedCertificate,
    KeyStatus,
    PaperRequest,
    PartyKey,
    approve_key,
    keys_with_status,
    publish_status_list,
    register_key,
    request_paper,
    revocation_of,
    revoke,
    revoke_key,
    sign,
    unrevoke,
    verification_keys,
)
from models.credentials.batch import timestamp
from models.credentials.errors import CredentialError
from models.credentials.keys import ORGANISER, fingerprint, generate_keypair
from models.credentials.offline import SigningRequest, sign_request
from models.credentials.published_keys import registry_from_published
from models.credentials.status_list import revoked_by_list
from models.credentials.verification import verify_credential
from models.sittings import UnknownSittingError, get_sitting

keys_app = typer.Typer(help="Signing keys of the organiser and the schools.", no_args_is_help=True)
certificates_app = typer.Typer(help="E-certificates and paper certificates.", no_args_is_help=True)

PARTY_HELP = "'organiser' or a school code."
MAX_STATEMENT_BYTES = 64 * 1024  # a signing request is under 1 KiB


@keys_app.command("new")
def keys_new(
    party: str = typer.Option(..., "--party", help=PARTY_HELP),
    output: Path | None = typer.Option(None, "-o", "--output", help="Private key file (0600)."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Make an Ed25519 key pair: the private key to a 0600 file, the public key registered."""
    pem, public = generate_keypair()
    try:
        with session_scope() as session:
            kid = register_key(session, party, public, parse_as_of(as_of))
            path = output or get_settings().home / "keys" / f"{party}-{kid.split(':')[1]}.pem"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private_key(path, pem)  # inside the transaction: no file, no registration
    except (CertificateError, CredentialError, FileExistsError) as exc:
        fail(str(exc))
    out.print(f"{kid} registered for {party}; private key: {path} (keep it safe)")
    digest = hashlib.sha256(base64.b64decode(public)).hexdigest()
    out.print(f"fingerprint (SHA-256 of the raw public key): {digest}")


def _describe_key(key: PartyKey) -> str:
    enrolled = timestamp(key.created_at)
    prints = fingerprint(key.public_key_b64)
    return f"{key.key_id}  {key.party}  enrolled {enrolled}\n  fingerprint {prints}"


@keys_app.command("pending")
def keys_pending() -> None:
    """Keys schools enrolled in their browsers, waiting for approval (with fingerprints)."""
    with session_scope() as session:
        pending = keys_with_status(session, KeyStatus.pending)
    for key in pending:
        out.print(_describe_key(key))
    if not pending:
        out.print("no key is waiting for approval")


@keys_app.command("approve")
def keys_approve(
    key_id: str = typer.Argument(..., metavar="KEYID"),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Approve a school's pending key: confirm the fingerprint with the school first."""
    try:
        with session_scope() as session:
            key = approve_key(session, key_id, parse_as_of(as_of))
    except CertificateError as exc:
        fail(str(exc))
    out.print(f"approved {key.key_id} for {key.party}")
    out.print(f"fingerprint {fingerprint(key.public_key_b64)} (the school's page shows the same)")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., metavar="KEYID"),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Revoke a key: it signs nothing more; its signatures on batches not issued are void."""
    try:
        with session_scope() as session:
            key, voided = revoke_key(session, key_id, parse_as_of(as_of))
    except CertificateError as exc:
        fail(str(exc))
    out.print(
        f"revoked {key.key_id} of {key.party}; {voided} signature(s) on batches not issued "
        "are void and must be made again"
    )


STATEMENT_HELP = (
    "A signing request (JSON) downloaded from the school's certificates page (下载签署内容): "
    "sign it offline, without the database, and upload the signature file written by -o "
    "(上传签名)."
)


def sign_command(
    sitting: str,
    party: str = typer.Option(..., "--party", help=PARTY_HELP),
    key: Path = typer.Option(..., "--key", help="The party's private key file."),
    statement: Path | None = typer.Option(None, "--statement", help=STATEMENT_HELP),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="With --statement: the signature file to write."
    ),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Sign the certificate batch of a school (the organiser: every school's) after publicity.

    With --statement, a school signs offline a request downloaded from the portal and writes
    a signature file to upload there (no database needed)."""
    if statement is not None:
        _sign_offline(sitting, party, key, statement, output, as_of)
        return
    if output is not None:
        fail("-o is for the signature file of --statement")
    try:
        private_key = load_private_key(key)
        with session_scope() as session:
            signed = sign(
                session,
                get_sitting(session, sitting),
                party,
                private_key,
                parse_as_of(as_of),
                get_settings().public_url,
            )
    except (CertificateError, CredentialError, UnknownSittingError, OSError) as exc:
        fail(str(exc))
    for school, digest in signed:
        out.print(f"{party} signed {school}'s batch {digest[:16]}…")
    if party == ORGANISER:  # the organiser's key is at hand: publish the current status list
        _publish(sitting, private_key, as_of)
    if not signed:
        out.print("nothing new to sign")
        return
    from examflow.events import ConditionEvent, emit_condition_changed  # stalls clear
    from models.domain import StageCode

    emit_condition_changed(
        ConditionEvent.batch_signed,
        sitting,
        [StageCode.certificates],
        party=party,
        what="signature",
        as_of=parse_as_of(as_of),
    )


def _sign_offline(
    sitting: str, party: str, key: Path, statement: Path, output: Path | None, as_of: str | None
) -> None:
    try:
        private_key = load_private_key(key)
        text = statement.read_bytes()[: MAX_STATEMENT_BYTES + 1]
    except (CredentialError, OSError) as exc:
        fail(str(exc))
    if len(text) > MAX_STATEMENT_BYTES:
        fail(f"{statement} is not a signing request downloaded from the portal (too large)")
    try:
        request = SigningRequest.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"{statement} is not a signing request downloaded from the portal ({problems})")
    try:
        signature = sign_request(
            request, private_key, sitting=sitting, party=party, as_of=parse_as_of(as_of)
        )
    except CredentialError as exc:
        fail(f"{statement}: {exc}")
    path = output or statement.with_name(f"{sitting}-{party}-signature.json")
    try:
        path.write_text(signature.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(str(exc))
    said = request.statement
    out.print(
        f"{party} signed its batch of {said.size} certificate(s) in {sitting} "
        f"(root {said.root[:16]}…, key {signature.key_id}) → {path}"
    )
    out.print(
        f"upload {path.name} on the portal's certificates page (上传签名) before {request.expires}"
    )


def _publish(sitting: str, private_key: object, as_of: str | None) -> None:
    try:
        with session_scope() as session:
            document = publish_status_list(
                session,
                get_sitting(session, sitting),
                private_key,
                parse_as_of(as_of),
                get_settings().public_url,
            )
    except (CertificateError, UnknownSittingError) as exc:
        fail(str(exc))
    out.print(f"revocation list of {sitting} signed and published at {document['id']}")


KEY_FOR_LIST = (
    "The organiser's private key file (default: EXAMFLOW_ORGANISER_KEY_FILE, if set): "
    "re-signs the sitting's revocation list now."
)


@certificates_app.command("status-list")
def status_list(
    sitting: str,
    key: Path = typer.Option(..., "--key", help="The organiser's private key file."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Sign and publish the sitting's revocation list (W3C Bitstring Status List) as it is."""
    try:
        private_key = load_private_key(key)
    except OSError as exc:
        fail(str(exc))
    _publish(sitting, private_key, as_of)


@certificates_app.command("revoke")
def revoke_command(
    number: str,
    reason: str = typer.Option(..., "--reason", help="Why: shown on the verification page."),
    key: Path | None = typer.Option(None, "--key", help=KEY_FOR_LIST),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Revoke an issued e-certificate; with --key, re-sign the published revocation list."""
    try:
        key = key or get_settings().organiser_key_file
        private_key = load_private_key(key) if key is not None else None
        with session_scope() as session:
            row = revoke(session, number, reason, parse_as_of(as_of))
            sitting = row.sitting_code
    except (CertificateError, CredentialError, OSError) as exc:
        fail(str(exc))
    out.print(f"{number} revoked {timestamp(row.revoked_at)}: {row.reason}")
    _after_status_change(sitting, private_key, as_of)


@certificates_app.command("unrevoke")
def unrevoke_command(
    number: str,
    key: Path | None = typer.Option(None, "--key", help=KEY_FOR_LIST),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Lift a revocation made by mistake (a superseded certificate stays revoked)."""
    try:
        key = key or get_settings().organiser_key_file
        private_key = load_private_key(key) if key is not None else None
        with session_scope() as session:
            row = unrevoke(session, number, parse_as_of(as_of))
            sitting = row.sitting_code
    except (CertificateError, CredentialError, OSError) as exc:
        fail(str(exc))
    out.print(f"{number} is valid again (revocation of {timestamp(row.revoked_at)} lifted)")
    _after_status_change(sitting, private_key, as_of)


def _after_status_change(sitting: str, private_key: object, as_of: str | None) -> None:
    if private_key is not None:
        _publish(sitting, private_key, as_of)
    else:
        out.print(
            "the verification page and `certificates verify` show it now; the published list "
            f"changes when the organiser signs it: examflow certificates status-list {sitting} "
            "--key ORGANISER_KEY"
        )


KEYS_HELP = (
    "The portal's published keys, a file or its URL (EXAMFLOW_PUBLIC_URL/keys.json): check "
    "with them and the published revocation list, without this install's database, as "
    "anyone else does."
)
LIST_HELP = (
    "With --keys: the sitting's revocation list, a file or its URL (default: the address "
    "the credential names)."
)
MAX_DOWNLOAD_BYTES = 16 * 2**20


def _json_from(source: str, what: str) -> object:
    """A JSON document from a file or an http(s) URL; fails saying which and why."""
    import httpx

    try:
        if not source.startswith(("http://", "https://")):
            return json.loads(Path(source).read_text(encoding="utf-8"))
        answer = httpx.get(source, timeout=20, follow_redirects=True)
        answer.raise_for_status()
        if len(answer.content) > MAX_DOWNLOAD_BYTES:
            fail(f"{what} at {source} is larger than {MAX_DOWNLOAD_BYTES} bytes")
        return json.loads(answer.content)
    except (OSError, ValueError, httpx.HTTPError) as exc:
        fail(f"{what}: cannot read {source} ({exc})")


@certificates_app.command("verify")
def verify(
    file: Path,
    keys_source: str | None = typer.Option(None, "--keys", help=KEYS_HELP),
    status_list: str | None = typer.Option(None, "--status-list", help=LIST_HELP),
) -> None:
    """Check both proofs and the content of an e-certificate (JSON); exit 1 saying what fails.

    Without --keys, against this install's key registry and revocations; with --keys, as a
    third party: the published keys and the organiser-signed revocation list only.
    """
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{file}: not a readable JSON credential ({exc})")
    if keys_source is not None:
        _verify_published(document, keys_source, status_list)
        return
    if status_list is not None:
        fail("--status-list goes with --keys (without them, this install's revocations count)")
    with session_scope() as session:
        keys = verification_keys(session)
        revoked = revocation_of(session, document) if isinstance(document, dict) else None
        revoked_text = (
            f"REVOKED {timestamp(revoked.revoked_at)}: {revoked.reason}" if revoked else ""
        )
    report = verify_credential(document, keys)
    if not report.ok:
        for problem in report.problems:
            out.print(f"FAIL: {problem}")
        raise typer.Exit(1)
    if revoked_text:
        out.print(
            f"{revoked_text} ({document.get('id')}, signed by {' and '.join(report.signed_by)})"
        )
        raise typer.Exit(1)
    out.print(f"OK: {document.get('id')} signed by " + " and ".join(report.signed_by))


def _verify_published(document: object, keys_source: str, list_source: str | None) -> None:
    try:
        registry = registry_from_published(_json_from(keys_source, "the published keys"))
    except CredentialError as exc:
        fail(f"{keys_source}: {exc}")
    report = verify_credential(document, registry)
    if not report.ok:
        for problem in report.problems:
            out.print(f"FAIL: {problem}")
        raise typer.Exit(1)
    assert isinstance(document, dict)
    signed = f"{document.get('id')} signed by " + " and ".join(report.signed_by)
    entry = document.get("credentialStatus")
    if entry is None:
        out.print(f"OK: {signed} (issued before revocation lists: none to check)")
        return
    named = entry.get("statusListCredential") if isinstance(entry, dict) else None
    source = list_source or (named if isinstance(named, str) else None)
    if source is None:
        fail("the credential names no revocation list: give one with --status-list")
    listed = _json_from(source, "the revocation list")
    try:
        revoked = revoked_by_list(document, listed, registry)
    except CredentialError as exc:
        fail(f"revocation not checked: {source}: {exc}")
    assert isinstance(listed, dict)
    when = listed.get("validFrom")
    if revoked:
        out.print(f"REVOKED in the organiser's revocation list of {when}: {signed}")
        raise typer.Exit(1)
    out.print(f"OK: {signed}; not revoked in the organiser's revocation list of {when}")


@certificates_app.command("paper")
def paper(
    sitting: str, school: str, as_of: str | None = typer.Option(None, help=AS_OF_HELP)
) -> None:
    """Record a school's request for paper certificates (listed for the organiser's print run)."""
    try:
        with session_scope() as session:
            new = request_paper(session, get_sitting(session, sitting), school, parse_as_of(as_of))
    except (CertificateError, UnknownSittingError) as exc:
        fail(str(exc))
    out.print(
        f"{school}: paper certificates requested for {sitting}" + ("" if new else " (already)")
    )


@certificates_app.command("list")
def list_certificates(
    sitting: str,
    as_json: bool = typer.Option(
        False, "--json", help="Every issued certificate: number, name, level, school, issued_at."
    ),
) -> None:
    """Per school: e-certificates issued, and whether paper certificates were requested."""
    if as_json:
        from examflow.cli.list_cmds import issued_certificates

        with session_scope() as session:
            print(json.dumps(issued_certificates(session, sitting), ensure_ascii=False, indent=2))
        return
    with session_scope() as session:
        issued: dict[str, int] = {}
        for cert in session.exec(
            select(IssuedCertificate).where(IssuedCertificate.sitting_code == sitting)
        ):
            issued[cert.school_code] = issued.get(cert.school_code, 0) + 1
        paper_schools = set(
            session.exec(
                select(PaperRequest.school_code).where(PaperRequest.sitting_code == sitting)
            )
        )
    for school in sorted(set(issued) | paper_schools):
        out.print(
            f"{school}: {issued.get(school, 0)} e-certificate(s)"
            + (", paper requested" if school in paper_schools else "")
        )


@certificates_app.command("export")
def export(
    sitting: str,
    school: str | None = typer.Option(None, help="One school (default: all)."),
    output: Path = typer.Option(Path("certificates"), "-o", "--output", help="Folder."),
    pdf: bool = typer.Option(True, help="Also render each as PDF with a QR code."),
) -> None:
    """Write issued e-certificates as JSON (the credential) and PDF."""
    with session_scope() as session:
        query = select(IssuedCertificate).where(IssuedCertificate.sitting_code == sitting)
        if school:
            query = query.where(IssuedCertificate.school_code == school)
        certs = [(c.certificate_number, c.credential_json) for c in session.exec(query)]
    output.mkdir(parents=True, exist_ok=True)
    for number, text in certs:
        (output / f"{number}.json").write_text(text, encoding="utf-8")
        if pdf:
            from notifications.documents.certificate import certificate_pdf

            public_url = get_settings().public_url
            (output / f"{number}.pdf").write_bytes(certificate_pdf(json.loads(text), public_url))
    out.print(f"{len(certs)} certificate(s) → {output}")
