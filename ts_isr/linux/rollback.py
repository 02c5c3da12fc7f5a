"""Whole or nothing for ``tsadmin add``: each change notes its undo first; a later failure runs them all.

A file is snapshotted (content and mode, or its absence, and the directories
the write would create) before it is first written; kernel state and daemons
register a callable.  On failure the undos run newest first, each one's own
failure is logged and the rest still run, and the error says the host was put
back, so the admin knows a second ``add`` starts from where the first began.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ts_isr.errors import TsError
from ts_isr.log import escape, log

UNDONE = (
    "every change this add had made was undone (rules, sets, files, crontab, units): the host is as before"
)


class RolledBack(TsError):
    """A step failed after the first change; everything before it was put back."""


class Rollback:
    """The undo journal of one ``tsadmin add`` (a context manager)."""

    def __init__(self) -> None:
        self.undos: list[tuple[str, Callable[[], None]]] = []
        self.seen: set[Path] = set()

    def add(self, what: str, undo: Callable[[], None]) -> None:
        self.undos.append((what, undo))

    def file(self, path: Path) -> None:
        """Before ``path`` is first written or removed: remember how to put it back as it is now."""
        if path in self.seen:
            return
        self.seen.add(path)
        before: tuple[bytes, int] | str | None
        if path.is_symlink():
            before = os.readlink(path)  # write_atomic replaces a link: the undo puts the link back
        elif path.exists() and not path.is_file():
            return  # something else in the way: the write fails and there is nothing to put back
        else:
            try:
                before = (path.read_bytes(), path.stat().st_mode & 0o7777)
            except FileNotFoundError:
                before = None
        created = _missing_dirs(path.parent)
        self.add(f"put back {path}", lambda: _put_back(path, before, created))

    def __enter__(self) -> Rollback:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or not self.undos:
            return
        if not isinstance(exc, TsError):
            log.debug("".join(traceback.format_exception(exc)))
        failed = self.undo()
        reason = describe(exc)
        if failed:
            raise RolledBack(
                f"{reason}; the undo failed for: {'; '.join(failed)}; fix that by hand or run tsadmin remove"
            ) from None
        raise RolledBack(f"{reason}; {UNDONE}") from None

    def undo(self) -> list[str]:
        """Run every undo, newest first; the ones that failed, named."""
        failed = []
        for what, undo in reversed(self.undos):
            try:
                undo()
            except Exception as exc:
                log.warning(f"undo: cannot {what}: {escape(str(exc))}")
                failed.append(what)
        self.undos.clear()
        return failed


def describe(exc: BaseException) -> str:
    """The failure in one line: a TsError says it already; a file that could not be written is named."""
    if isinstance(exc, TsError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot write {escape(str(exc.filename))}: {exc.strerror}"
    return f"{type(exc).__name__}: {escape(str(exc))}"


def _missing_dirs(directory: Path) -> list[Path]:
    """The directories a write into ``directory`` would create, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


def _put_back(path: Path, before: tuple[bytes, int] | str | None, created: list[Path]) -> None:
    if isinstance(before, tuple):
        _write_bytes(path, *before)
    else:
        if path.is_symlink() or path.is_file():
            path.unlink()
        if isinstance(before, str):
            os.symlink(before, path)
    for directory in created:
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def _write_bytes(path: Path, content: bytes, mode: int) -> None:
    """The file's old bytes and mode, in one rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
