"""Rendered materials on disk, content-addressed: ``<root>/<ab>/<digest>-<kind>.pdf``.

The digest is the hash of what went into the PDF (models.materials_key), so a file, once
written, never changes: it is written whole to a temporary name and renamed into place, and a
reader sees either no file or the complete one. Several processes (portal workers, Dask
workers on other machines) may share the root.

`ensure` renders a missing file once however many ask for it at the same moment: callers in
one process wait on a lock per key, callers in other processes on an advisory file lock
(``<root>/.locks/<digest>-<kind>.lock``); whoever gets the lock first renders, the others find
the file when they get it.
"""

import contextlib
import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{16,128}")
_KIND = re.compile(r"[a-z_]{1,32}")


@dataclass(frozen=True)
class StoredPdf:
    """A stored file: its path, its size and the digest it is stored under (an ETag)."""

    path: Path
    digest: str
    kind: str
    size: int
    rendered: bool  # rendered by this call (False: it was there already)

    @property
    def etag(self) -> str:
        return f'"{self.digest[:32]}-{self.kind}"'


class MaterialsStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def path(self, digest: str, kind: str) -> Path:
        if not _DIGEST.fullmatch(digest) or not _KIND.fullmatch(kind):
            raise ValueError(f"not a materials key: {digest!r} {kind!r}")
        return self.root / digest[:2] / f"{digest}-{kind}.pdf"

    def get(self, digest: str, kind: str) -> StoredPdf | None:
        path = self.path(digest, kind)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        return StoredPdf(path, digest, kind, size, rendered=False)

    def put(self, digest: str, kind: str, data: bytes) -> StoredPdf:
        """Write atomically (temporary file in the same folder, fsync, rename)."""
        path = self.path(digest, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return StoredPdf(path, digest, kind, len(data), rendered=True)

    def ensure(self, digest: str, kind: str, render: Callable[[], bytes]) -> StoredPdf:
        """The stored file, rendered (once, whoever else asks at the same time) if missing."""
        found = self.get(digest, kind)
        if found is not None:
            return found
        with self._key_lock(digest, kind):
            found = self.get(digest, kind)  # rendered while we waited
            if found is not None:
                return found
            return self.put(digest, kind, render())

    @contextlib.contextmanager
    def _key_lock(self, digest: str, kind: str) -> Iterator[None]:
        key = f"{digest}-{kind}"
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            folder = self.root / ".locks"
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"{key}.lock", "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
