"""One run at a time, by ``flock``: the kernel drops the lock when a run dies, even by ``kill -9``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ts_isr.errors import LockedError
from ts_isr.files import open_nofollow, trusted_dir
from ts_isr.log import escape, log


@contextmanager
def run_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` or fail at once with :class:`LockedError`.

    The lock is written (truncated to this run's pid), so it lives in a folder only root or the
    running user can change and is opened without following a symlink: a planted link would make
    root truncate the file it names.
    """
    trusted_dir(path.parent, "lock folder")
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = escape(os.pread(fd, 32, 0).decode("ascii", "replace").strip()) or "another process"
            raise LockedError(
                f"another {what} run (pid {holder}) holds the lock {path}; "
                "wait for it to finish, this run changed nothing"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        log.info("Locking current execution instance.")
        try:
            yield
        finally:  # a failed run unlocks too (the kernel would, at exit), and says so as the seed does
            log.info("Unlocking current execution instance.")
    finally:
        os.close(fd)
