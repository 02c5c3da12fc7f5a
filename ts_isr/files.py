"""Files and folders: the one way this project replaces a file, and what it may trust.

The commands run as root from cron on a host other users share.  A file or
folder that another user can write (or replace, or point elsewhere with a
symlink) could make root run, overwrite or delete what that user chooses, so
every folder the tool writes in, and every config it reads, is checked first
(:func:`trusted_dir`, :func:`check_trusted`), and files are opened without
following a symlink (:func:`open_nofollow`), as logrotate does.
"""

from __future__ import annotations

import errno
import os
import site
import stat
import sys
import tempfile
from pathlib import Path

from ts_isr.errors import TsError


class UnsafePath(TsError):
    """A file or folder another user could control; the message names it and what to fix."""


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` in one rename: readers see the old file or the new, never half.

    The temporary file is created new (``O_EXCL``) and the rename replaces a
    symlink planted at ``path`` rather than writing through it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def trusted_owners() -> frozenset[int]:
    """Who may own what the tool trusts: root, and the user it runs as."""
    return frozenset({0, os.geteuid()})


def untrusted_because(info: os.stat_result) -> str | None:
    """Why another user could change a file or folder with this ``lstat``; None when none can.

    Writable by its group is fine only for root's group or the running user's
    own (logrotate's rule): anyone else in that group could change it.
    """
    if info.st_uid not in trusted_owners():
        return f"it is owned by uid {info.st_uid}, not by root or the user running this (uid {os.geteuid()})"
    if info.st_mode & stat.S_IWOTH:
        return "every user can write it"
    if info.st_mode & stat.S_IWGRP and info.st_gid not in {0, os.getegid()}:
        return f"group {info.st_gid} can write it"
    return None


def check_trusted(path: Path, what: str, *, kind: type[TsError] = UnsafePath) -> os.stat_result:
    """Refuse ``path`` (not following a symlink) when another user could change it.

    Returns its ``lstat``; a missing path raises ``FileNotFoundError`` for the
    caller to handle.  ``what`` names it in the message ("state_dir", "config").
    """
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise kind(
            f"{what} {path} is a symbolic link; refused, as a link another user planted would send "
            "root's writes elsewhere: replace it with a real file or folder, or point the config at it"
        )
    reason = untrusted_because(info)
    if reason is not None:
        mode = "chmod go-w" if "write" in reason else "chown root"
        raise kind(f"{what} {path} is refused: {reason}; run: {mode} {path} (or choose another)")
    return info


def trusted_dir(path: Path, what: str, mode: int = 0o700) -> Path:
    """``path`` as a folder the tool may write in: created (with its parents, ``mode``) when
    missing, else checked with :func:`check_trusted`; its parent is checked too, as whoever
    can write the parent can swap the folder for another."""
    try:
        path.mkdir(mode=mode, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UnsafePath(
            f"cannot create {what} {path}: {exc.strerror}; fix its parent's permissions"
        ) from None
    info = check_trusted(path, what)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{what} {path} is not a folder; remove it or choose another path")
    parent = path.resolve().parent
    info = os.stat(parent)
    # Whoever may rename entries in the parent can swap the folder for one of theirs; a sticky
    # parent (/tmp) lets nobody rename root's, and a group-writable one (Ubuntu's /var/log) is the
    # system's own.
    if info.st_uid not in trusted_owners() or (
        info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX
    ):
        raise UnsafePath(
            f"{what} {path} is refused: its parent {parent} can be changed by other users; "
            f"run: chmod o-w {parent}, or choose a folder under one that only root can change"
        )
    return path


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses a symlink at ``path`` (``O_NOFOLLOW``); with ``O_CREAT`` a file it
    creates gets ``mode``, and an existing one must be a regular file of a trusted owner."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symlink
            raise UnsafePath(
                f"{path} is a symbolic link; refused (a planted link would send root's writes elsewhere): "
                "remove it"
            ) from None
        raise
    info = os.fstat(fd)
    reason = None if stat.S_ISREG(info.st_mode) else "it is not a regular file"
    reason = reason or untrusted_because(info)
    if reason is not None:
        os.close(fd)
        raise UnsafePath(f"{path} is refused: {reason}; remove it, the tool writes a new one")
    return fd


CHECKOUT = Path(__file__).resolve().parent.parent
INSTALLED = (Path(sys.prefix) / "share" / "ts_isr", Path(site.USER_BASE or "~/.local") / "share" / "ts_isr")


def project_file(relative: str) -> Path:
    """A file the project ships (a template): in the checkout, else where ``pip install`` put it."""
    for base in (CHECKOUT, *INSTALLED):
        if (base / relative).is_file():
            return base / relative
    return CHECKOUT / relative
