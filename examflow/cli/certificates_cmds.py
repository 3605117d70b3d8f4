"""examflow keys new | sign | certificates verify|paper|export|list | fees paid"""

import base64
import hashlib
import json
from pathlib import Path

import typer
from sqlmodel import select

from adapters.key_files import load_private_key, write_private_key
from examflow.cli.console import AS_OF_HELP, fail, out, parse_as_of
from examflow.db import session_scope
from examflow.settings import get_settings
from models.certificates import (
    CertificateError,
    IssuedCertificate,
    PaperRequest,
    register_key,
    request_paper,
    sign,
    trusted_keys,
)
from models.credentials.errors import CredentialError
from models.credentials.keys import generate_keypair
from models.credentials.verification import verify_credential
from models.sittings import UnknownSittingError, get_sitting

keys_app = typer.Typer(help="Signing keys of the organiser and the schools.", no_args_is_help=True)
certificates_app = typer.Typer(help="E-certificates and paper certificates.", no_args_is_help=True)

PARTY_HELP = "'organiser' or a school code."


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
    fingerprint = hashlib.sha256(base64.b64decode(public)).hexdigest()
    out.print(f"fingerprint (SHA-256 of the raw public key): {fingerprint}")


def sign_command(
    sitting: str,
    party: str = typer.Option(..., "--party", help=PARTY_HELP),
    key: Path = typer.Option(..., "--key", help="The party's private key file."),
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
) -> None:
    """Sign the certificate batch of a school (the organiser: every school's) after publicity."""
    try:
        private_key = load_private_key(key)
        with session_scope() as session:
            signed = sign(
                session, get_sitting(session, sitting), party, private_key, parse_as_of(as_of)
            )
    except (CertificateError, CredentialError, UnknownSittingError, OSError) as exc:
        fail(str(exc))
    for school, digest in signed:
        out.print(f"{party} signed {school}'s batch {digest[:16]}…")
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


@certificates_app.command("verify")
def verify(file: Path) -> None:
    """Check both proofs and the content of an e-certificate (JSON); exit 1 saying what fails."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{file}: not a readable JSON credential ({exc})")
    with session_scope() as session:
        keys = trusted_keys(session)
    report = verify_credential(document, keys)
    if not report.ok:
        for problem in report.problems:
            out.print(f"FAIL: {problem}")
        raise typer.Exit(1)
    out.print(f"OK: {document.get('id')} signed by " + " and ".join(report.signed_by))


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
