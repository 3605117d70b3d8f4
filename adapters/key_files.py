"""Private-key files: created 0600 and never overwritten, read only when no one else can."""

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.credentials.errors import CredentialError


class KeyFileError(CredentialError):
    """A private-key file that cannot be written or must not be used."""


def write_private_key(path: str | os.PathLike[str], pem: bytes) -> None:
    """Create ``path`` holding ``pem``, readable by its owner only (0600); never overwrite.

    O_EXCL makes creation and the mode one step, so the key is never briefly world-readable
    and an existing key (perhaps the only copy) is never replaced.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists: refusing to overwrite a key file") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(path).unlink(missing_ok=True)  # no half-written key left behind
        raise


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; refused if group or others may read or write it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    with os.fdopen(fd, "rb") as file:
        # fstat the open file, not the path: the file checked is the file read.
        mode = os.fstat(file.fileno()).st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(
                f"{path} is accessible to group or others (mode {mode:04o}): a private key must "
                f"be readable by its owner only; run: chmod 600 {path}"
            )
        pem = file.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key
