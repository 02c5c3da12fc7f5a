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
import re
import site
import stat
import sys
import tempfile
from pathlib import Path

from ts_isr.errors import TsError


class UnsafePath(TsError):
    """A file or folder another user could control; the message names it and what to fix."""


_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str) -> str:
    """``text`` as part of a file name: anything but letters, digits and ``_.-`` becomes ``_``, so
    a device or host name can never reach another folder."""
    return _UNSAFE_IN_NAME.sub("_", text)


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


def folder_untrusted_because(info: os.stat_result) -> str | None:
    """Why another user could rename or replace the entries of a folder on a path; None when none can.

    A sticky world-writable folder (/tmp) lets nobody rename root's entries;
    a group-writable one (Ubuntu's /var/log) is the system's own.
    """
    if info.st_uid not in trusted_owners():
        return f"it is owned by uid {info.st_uid}, not by root or the user running this (uid {os.geteuid()})"
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        return "every user can write it and it is not sticky"
    return None


def _fix(path: Path, reason: str) -> str:
    """The command that removes ``reason``; an owner is changed only once the user has looked."""
    if "owned by" in reason:
        return f"check it, then: chown root {path}"
    return f"chmod {'o-w' if 'every user' in reason else 'g-w'} {path}"


MAX_LINKS = 40  # as the kernel's path walk


def trusted_path(path: Path, what: str, *, kind: type[TsError] = UnsafePath) -> Path:
    """``path`` with every symbolic link resolved, refused when another user could change where it leads.

    Every folder a name is looked up in (from ``/`` down, the folders of the
    links on the way too) must pass :func:`folder_untrusted_because`: whoever
    can rename entries there can swap what follows for their own.  The last
    component need not exist; a missing folder before it raises
    ``FileNotFoundError``.
    """
    pending = list(reversed(Path(path).absolute().parts[1:]))
    folder, links = Path("/"), 0
    checked: set[Path] = set()
    while pending:
        name = pending.pop()
        if name in (".", ""):
            continue
        if name == "..":
            folder = folder.parent
            continue
        if folder not in checked:
            reason = folder_untrusted_because(os.stat(folder))
            if reason is not None:
                raise kind(
                    f"{what} {path} is refused: the folder {folder} on its way can be changed by other "
                    f"users ({reason}); {_fix(folder, reason)}, or use a folder only root can change"
                )
            checked.add(folder)
        candidate = folder / name
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            if pending:
                raise
            return candidate
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise kind(f"{what} {path} is refused: too many symbolic links on its way")
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                folder = Path("/")
            pending.extend(reversed(target.parts[1:] if target.is_absolute() else target.parts))
            continue
        folder = candidate
    return folder


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
        raise kind(f"{what} {path} is refused: {reason}; {_fix(path, reason)} (or choose another)")
    return info


def check_dir(path: Path, what: str, *, kind: type[TsError] = UnsafePath) -> Path:
    """An existing folder the tool may read and write in: itself by :func:`check_trusted`, the folders
    above it by :func:`trusted_path`.  A missing one raises ``FileNotFoundError``, a file
    ``NotADirectoryError``: not a matter of trust, each caller says what it could not do."""
    info = check_trusted(path, what, kind=kind)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    trusted_path(path, what, kind=kind)
    return path


def trusted_dir(path: Path, what: str, mode: int = 0o700) -> Path:
    """``path`` as a folder the tool may write in: created (with its parents, ``mode``) when
    missing, else checked with :func:`check_dir` (the folders above it too, as whoever
    can write one of them can swap the folder for another).  ``OSError`` when it cannot be
    created or is not a folder, :class:`UnsafePath` when another user could change it."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    return check_dir(path, what)


def open_nofollow(path: Path, flags: int, mode: int = 0o600, *, kind: type[TsError] = UnsafePath) -> int:
    """``os.open`` that refuses a symlink at ``path`` (``O_NOFOLLOW``); with ``O_CREAT`` a file it
    creates gets ``mode``, and an existing one must be a regular file of a trusted owner (a planted
    FIFO is refused too, without waiting for a reader)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a symlink
            raise kind(
                f"{path} is a symbolic link; refused (a planted link would send root's writes elsewhere): "
                "remove it"
            ) from None
        if exc.errno == errno.ENXIO:  # a FIFO (or socket) no one reads: not a file root should write
            raise kind(f"{path} is refused: it is not a regular file; remove it") from None
        raise
    info = os.fstat(fd)
    reason = None if stat.S_ISREG(info.st_mode) else "it is not a regular file"
    reason = reason or untrusted_because(info)
    if reason is not None:
        os.close(fd)
        raise kind(f"{path} is refused: {reason}; remove it, the tool writes a new one")
    os.set_blocking(fd, True)
    return fd


def read_trusted(path: Path, what: str, *, kind: type[TsError] = UnsafePath) -> bytes:
    """The content of a file only root or the running user can change (its folders included):
    what a config says, root does.  A missing file raises ``FileNotFoundError``."""
    real = trusted_path(path, what, kind=kind)
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        reason = None if stat.S_ISREG(info.st_mode) else "it is not a regular file"
        reason = reason or untrusted_because(info)
        if reason is not None:
            fix = _fix(real, reason) if stat.S_ISREG(info.st_mode) else f"remove {real}"
            raise kind(f"{what} {path} is refused: {reason}; {fix}, or choose another")
        return handle.read()


CHECKOUT = Path(__file__).resolve().parent.parent
INSTALLED = (Path(sys.prefix) / "share" / "ts_isr", Path(site.USER_BASE or "~/.local") / "share" / "ts_isr")


def project_file(relative: str) -> Path:
    """A file the project ships (a template): in the checkout, else where ``pip install`` put it."""
    for base in (CHECKOUT, *INSTALLED):
        if (base / relative).is_file():
            return base / relative
    return CHECKOUT / relative
