"""A local, fsync'd spool for accepted callbacks while Redis cannot be reached.

Each receiver process appends to a file of its own, holding an exclusive lock on it for its
life. A drainer moves records into Redis in order once Redis answers, through the same
deduplicating script, so draining twice (after a crash mid-drain) cannot queue anything
twice. Files whose owner died (no lock held) are drained by any receiver sharing the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from workhooks.store.ingest import Prepared

SUFFIX = ".spool"
DRAINING = ".draining"


class SpoolError(Exception):
    """The spool cannot be written: the callback cannot be accepted."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self.pending = 0  # records in this process's current file

    def _open(self) -> int:
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{uuid.uuid4().hex}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            _fsync_dir(self.directory)
            self._fd, self._path = fd, path
        return self._fd

    def append(self, item: Prepared) -> None:
        """Durably append one record (written and fsync'd before returning)."""
        line = item.to_line()
        with self._lock:
            try:
                fd = self._open()
                os.write(fd, line)
                os.fsync(fd)
            except OSError as error:
                raise SpoolError(f"spool {self.directory}: {error.strerror}") from None
            self.pending += 1

    def _rotate(self) -> Path | None:
        """Hand the current file to the drainer; the next append starts a new one."""
        with self._lock:
            if self._fd is None or self._path is None or self.pending == 0:
                return None
            target = self._path.with_suffix(DRAINING)
            os.rename(self._path, target)
            os.close(self._fd)
            self._fd, self._path, self.pending = None, None, 0
            return target

    @contextlib.contextmanager
    def claim(self) -> Iterator[list[Path]]:
        """Files to drain now: our own (rotated) and any left by a dead process, each locked."""
        self._rotate()
        held: list[tuple[int, Path]] = []
        try:
            for path in self._files():
                if path == self._path:
                    continue
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                if _try_lock(fd):
                    held.append((fd, path))
                else:
                    os.close(fd)
            yield [path for _, path in held]
        finally:
            for fd, _ in held:
                os.close(fd)  # closing releases the lock

    def _files(self) -> list[Path]:
        """Every spool file in the folder, oldest first (drained in the order they were written)."""
        found = []
        for path in [*self.directory.glob(f"*{SUFFIX}"), *self.directory.glob(f"*{DRAINING}")]:
            with contextlib.suppress(FileNotFoundError):
                found.append((path.stat().st_mtime_ns, path))
        return [path for _, path in sorted(found)]

    def waiting(self) -> bool:
        """Anything to drain, by this process or left by another (cheap: no file is read)."""
        return self.pending > 0 or any(path != self._path for path in self._files())

    def depth(self) -> int:
        """Records waiting in every spool file of the folder."""
        total = 0
        for path in self._files():
            with contextlib.suppress(FileNotFoundError), path.open("rb") as stream:
                total += sum(1 for _ in stream)
        return total

    def writable(self) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.directory, os.W_OK)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read(path: Path) -> Iterator[Prepared]:
    """Records of one file, in order; a torn last line (crash mid-write) was never acknowledged."""
    with path.open("rb") as stream:
        for line in stream:
            if line.endswith(b"\n"):
                yield Prepared.from_line(line)


def in_arrival_order(paths: list[Path]) -> list[Prepared]:
    """Every record of these files, oldest arrival first (receivers each write their own file)."""
    records = [item for path in paths for item in read(path)]
    return sorted(records, key=lambda item: item.received_at)  # stable: a file's own order is kept on ties
