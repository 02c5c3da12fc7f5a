"""The spool's files: their names, how one is opened or created, and whether a writer still holds one.

Every file is opened without following a symlink (``O_NOFOLLOW``) and must be
a regular file, and every new one is created with ``O_EXCL``: even in folders
root trusts, a stray link must not send root's reads or writes elsewhere.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import stat
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ts_isr.files import open_nofollow
from ts_isr.logupload.packing import CHUNK

_STAMP = "%Y%m%dT%H%M%S.%fZ"


def spool_name(log_name: str, when: float, taken: Callable[[str], bool]) -> str:
    """``<log_name>.<UTC time stamp>`` (``-1``, ``-2``... if taken): names sort oldest first."""
    stamp = datetime.fromtimestamp(when, UTC).strftime(_STAMP)
    name = f"{log_name}.{stamp}"
    serial = 0
    while taken(name):
        serial += 1
        name = f"{log_name}.{stamp}-{serial}"
    return name


def is_spool_name(log_name: str, name: str) -> bool:
    return re.fullmatch(re.escape(log_name) + r"\.\d{8}T\d{6}\.\d{6}Z(?:-\d+)?", name) is not None


def is_rotated_name(log_name: str, name: str) -> bool:
    """logrotate's names for ``log_name``: ``.1``, ``.2.gz``, ``-20261121``, ``-20261121.gz``..."""
    return re.fullmatch(re.escape(log_name) + r"[.-]\d[\d._-]*(?:\.gz)?", name) is not None


def is_regular(path: Path) -> bool:
    """Whether ``path`` itself (not what a symlink there points at) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def create_new(path: Path, mode: int) -> int:
    """A new file with exactly ``mode`` (the umask would loosen or tighten it); never an existing one."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.fchmod(fd, mode)
    return fd


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened to read, refused unless it is a regular file there (no symlink, FIFO, device).

    A log another user owns may be read (its lines are only sent), so unlike
    :func:`ts_isr.files.open_nofollow` the owner is not checked.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return os.fdopen(fd, "rb")


def same_inflated(packed: Path, plain: Path) -> bool:
    """Whether ``packed`` inflates to exactly ``plain`` (compared in chunks; a broken gzip is not)."""
    try:
        with (
            open_regular(packed) as raw,
            gzip.GzipFile(fileobj=raw) as left,
            open_regular(plain) as right,
        ):
            while True:
                a, b = left.read(CHUNK), right.read(CHUNK)
                if a != b:
                    return False
                if not a:
                    return True
    except (OSError, EOFError, zlib.error):
        return False


def opened_for_writing(fdinfo: str) -> bool:
    """Whether a ``/proc/<pid>/fdinfo/<fd>`` entry is open for writing (its ``flags:`` are octal)."""
    for line in fdinfo.splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    return True  # no flags line: assume a writer, the safe side


def held_open(path: Path) -> bool:
    """Whether any process we can see has ``path`` open for writing (root sees all).

    Readers (``tail -f``, ``less``) do not count: they cannot add lines.
    """
    try:
        target = os.lstat(path)
    except FileNotFoundError:
        return False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if not os.readlink(f"{fd_dir}/{fd}").startswith("/"):
                    continue
                opened = os.stat(f"{fd_dir}/{fd}")
                if (opened.st_dev, opened.st_ino) != (target.st_dev, target.st_ino):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                    if opened_for_writing(info.read()):
                        return True
            except OSError:
                continue
    return False
