"""Files calsync writes and locks, one way everywhere (I/O, no calsync imports but errors).

`write_atomic`: temp file in the same directory, fsync, `os.replace`, fsync the directory;
a crash leaves the old file or the new one. `try_lock`/`unlock`: an exclusive, non-blocking
lock on an open file descriptor (`fcntl.flock` on POSIX, `msvcrt.locking` on Windows),
released by the operating system when the process dies.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path


def write_atomic(target: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `target` so that a crash leaves the old file or the new one.

    The new file gets `mode`, else the old file's permissions, else the umask's default.
    """
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(target.parent)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _fsync_directory(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":
    import msvcrt

    def try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
