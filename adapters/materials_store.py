"""Rendered materials on disk, content-addressed: ``<root>/<ab>/<digest>-<kind>.pdf``.

The digest is the hash of what went into the PDF (models.materials_key), so a file, once
written, never changes: it is written whole to a temporary name and renamed into place, and a
reader sees either no file or the complete one. Several processes (portal workers, Dask
workers on other machines) may share the root.

`ensure` renders a missing file once however many ask for it at the same moment: callers in
one process wait on a lock per key, callers in other processes on an advisory file lock
(``<root>/.locks/<digest>-<kind>.lock``); whoever gets the lock first renders, the others find
the file when they get it.

Each digest is also noted under a group (a sitting's code): ``<root>/.groups/<group>/<digest>``,
an empty file written before the PDF. `prune` removes a group's digests that are no longer
current (a site re-arranged, a site no longer active), so the store holds a sitting's current
files and not every version it ever had.
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
_GROUP = re.compile(r"\w[\w.-]{0,63}")
# File times come from the kernel's coarse clock (a tick, up to 10 ms, behind time.time()):
# a file written just after the caller's reading may carry a time just before it.
_MTIME_MARGIN_S = 0.1


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

    def ensure(
        self, digest: str, kind: str, render: Callable[[], bytes], *, group: str
    ) -> StoredPdf:
        """The stored file, rendered (once, whoever else asks at the same time) if missing;
        a rendered file's digest is noted under `group` (see prune)."""
        found = self.get(digest, kind)
        if found is not None:
            return found
        with self._key_lock(digest, kind):
            found = self.get(digest, kind)  # rendered while we waited
            if found is not None:
                return found
            self._note(group, digest)  # before the file: no PDF is ever written unowned
            return self.put(digest, kind, render())

    def prune(self, group: str, keep: set[str], written_before: float) -> int:
        """Remove the group's files whose digest is not in `keep` (the digests of its current
        data, read at `written_before`, a time.time()); returns how many PDFs were removed.

        A digest with any file written at or after `written_before` is left alone: it was
        rendered from data newer than the caller's reading, which cannot judge it (the next
        prune will). Removing a file a download is streaming is safe: on POSIX an unlinked
        file that is open stays readable until it is closed, so that download completes; a
        request that looked the file up but has not opened it yet fails and is asked again,
        and then gets the current file. Its lock files go too: should a render of that
        (no longer current) key be waiting on one, at worst the key is rendered twice, and
        the atomic rename keeps either file whole.
        """
        folder = self._group_folder(group)
        try:
            notes = list(folder.iterdir())
        except FileNotFoundError:
            return 0
        removed = 0
        for note in notes:
            digest = note.name
            if digest in keep or not _DIGEST.fullmatch(digest):
                continue
            pdfs = list((self.root / digest[:2]).glob(f"{digest}-*.pdf"))
            if any(_mtime(path) >= written_before - _MTIME_MARGIN_S for path in [note, *pdfs]):
                continue
            for path in pdfs:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
            for lock in (self.root / ".locks").glob(f"{digest}-*.lock"):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
            with contextlib.suppress(FileNotFoundError):
                note.unlink()  # last: a prune cut short is taken up again by the next one
        return removed

    def _group_folder(self, group: str) -> Path:
        if not _GROUP.fullmatch(group):
            raise ValueError(f"not a materials group: {group!r}")
        return self.root / ".groups" / group

    def _note(self, group: str, digest: str) -> None:
        folder = self._group_folder(group)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / digest).touch()  # (a fresh mtime: prune leaves a digest being written alone)

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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0  # removed meanwhile: nothing of it is newer
