"""The live log, its spool of rotated files, and the record of what the server confirmed.

Root runs this from cron in a log folder that syslog-ng (perhaps as its own
user) writes.  Before anything moves, every folder the run reads or writes is
checked as logrotate checks its folders (:meth:`LogSpool.check_folders`): one
that another user owns or can write is refused with one line, as a link
planted there could make root overwrite or delete files of its own.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import stat
import subprocess
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ts_isr.errors import TsError
from ts_isr.files import UnsafePath, open_nofollow, trusted_dir, write_atomic
from ts_isr.log import log
from ts_isr.logupload.packing import CHUNK, UploadError
from ts_isr.logupload.spoolfiles import (
    create_new,
    held_open,
    is_regular,
    is_rotated_name,
    is_spool_name,
    open_regular,
    same_inflated,
    spool_name,
)
from ts_isr.tools import child_env, find_tool

DEFAULT_REOPEN_COMMAND = ("syslog-ng-ctl", "reopen")


@dataclass(frozen=True)
class Progress:
    """How much of a spool file the server has confirmed."""

    offset: int = 0
    parts: int = 0


class LogSpool:
    """The live log, its spool of rotated files, and the record of what the server confirmed."""

    def __init__(
        self,
        logfile: Path,
        state_dir: Path,
        *,
        reopen_command: Sequence[str] | None = DEFAULT_REOPEN_COMMAND,
        spool_dir: Path | None = None,
        close_timeout: float = 10.0,
    ) -> None:
        self.logfile = logfile
        self.spool_dir = spool_dir or logfile.parent / f"{logfile.name}.spool"
        self.uploaded_dir = self.spool_dir / "uploaded"
        self.state_dir = state_dir
        self.progress_dir = state_dir / "logupload"
        self.lock_path = state_dir / "logupload.lock"
        self.reopen_command = tuple(reopen_command or ())
        self.close_timeout = close_timeout

    def _new_path(self, when: float) -> Path:
        """A free spool name: neither it nor its packed form (``.gz``, inflated later into it) exists."""
        return self.spool_dir / spool_name(
            self.logfile.name,
            when,
            lambda n: os.path.lexists(self.spool_dir / n) or os.path.lexists(self.spool_dir / f"{n}.gz"),
        )

    def check_folders(self) -> None:
        """Refuse, before anything moves, a folder of the run that another user could change.

        The log folder and the spool are checked only when they exist (a missing
        log folder is only warned about); the state folders are made when missing.
        """
        folders = [
            (self.state_dir, "state_dir", 0o700, True),
            (self.progress_dir, "log upload records folder", 0o750, True),
            (self.logfile.parent, "log folder", 0o750, False),
            (self.spool_dir, "log spool", 0o750, False),
            (self.uploaded_dir, "log spool folder", 0o750, False),
        ]
        for folder, what, mode, make in folders:
            try:
                if make or os.path.lexists(folder):
                    trusted_dir(folder, what, mode)
            except UnsafePath as exc:
                raise UnsafePath(f"{exc}; no log was moved or sent") from None
            except (FileExistsError, NotADirectoryError):
                raise TsError(
                    f"{what} {folder} is not a folder; remove it or choose another path; "
                    "no log was moved or sent"
                ) from None

    def _make_dirs(self) -> None:
        trusted_dir(self.spool_dir, "log spool", 0o750)
        trusted_dir(self.uploaded_dir, "log spool folder", 0o750)

    def rotate(self) -> Path | None:
        """Move the live log into the spool and make its writer reopen; None if it is empty."""
        try:
            info = os.lstat(self.logfile)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise UploadError(
                f"logfile {self.logfile} is not a regular file (a symbolic link?); "
                "set logfile to the file syslog-ng writes; nothing was moved or sent"
            )
        if info is None or info.st_size == 0:
            log.info(f"No new lines in {self.logfile}.")
            return None
        self._make_dirs()
        target = self._new_path(time.time())
        try:
            os.rename(self.logfile, target)
        except OSError as exc:
            raise UploadError(
                f"cannot move {self.logfile} into {self.spool_dir}: {exc.strerror}; "
                "run as the user that owns the log directory (root)"
            ) from None
        try:
            self.reopen()
        except UploadError:
            self._put_back(target)
            raise
        log.info(f"Rotated {self.logfile} to {target.name}.")
        return target

    def reopen(self) -> None:
        """Make the writer close renamed files and open the live log again (no-op without a command)."""
        if not self.reopen_command:
            return
        tool = find_tool(self.reopen_command[0])
        shown = shlex.join(self.reopen_command)
        if tool is None:
            raise UploadError(
                f"log reopen command not found: {shown}; install syslog-ng or set log_reopen_command"
            )
        try:
            done = subprocess.run(
                [tool, *self.reopen_command[1:]],
                env=child_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UploadError(f"'{shown}' did not finish in 60 s; check that syslog-ng runs") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise UploadError(
                f"'{shown}' failed (exit {done.returncode}: {detail[0] if detail else 'no message'}); "
                "start syslog-ng or set log_reopen_command; nothing was lost or sent"
            )

    def _put_back(self, target: Path) -> None:
        """Undo a rotation whose reopen failed, unless the writer already made a new live file."""
        try:
            os.link(target, self.logfile)
        except OSError:
            return
        target.unlink()

    def adopt_rotated(self) -> list[Path]:
        """Move logrotate's rotated files into the spool (gzip ones inflated), oldest first."""
        if not self.logfile.parent.is_dir():
            log.warning(f"{self.logfile.parent} does not exist: is syslog-ng receiving the device's syslog?")
            return []
        found = [
            path
            for path in self.logfile.parent.iterdir()
            if is_rotated_name(self.logfile.name, path.name) and is_regular(path)
        ]
        adopted = []
        for path in sorted(found, key=lambda p: (p.lstat().st_mtime, p.name)):
            if held_open(path):
                log.info(f"{path.name} is still being written by logrotate; it goes on the next run.")
                continue
            self._make_dirs()
            target = self._new_path(path.lstat().st_mtime)
            if path.name.endswith(".gz"):
                target = target.with_name(target.name + ".gz")
            os.rename(path, target)
            log.info(f"Took logrotate's {path.name} as {target.name}.")
            adopted.append(target)
        self._inflate_all()
        return adopted

    def _inflate_all(self) -> None:
        """``X.gz`` in the spool becomes ``X``; the .gz is removed only once ``X`` is whole on disk."""
        if not self.spool_dir.is_dir():
            return
        for packed in sorted(p for p in self.spool_dir.glob("*.gz") if is_regular(p)):
            plain = packed.with_name(packed.name[: -len(".gz")])
            if os.path.lexists(plain):
                if same_inflated(packed, plain):
                    packed.unlink()  # a run stopped between renaming X into place and removing X.gz
                    continue
                moved = self._new_path(packed.lstat().st_mtime)
                os.rename(packed, moved.with_name(moved.name + ".gz"))
                packed, plain = moved.with_name(moved.name + ".gz"), moved
            partial = plain.with_name(plain.name + ".tmp")
            # The .gz's mode, but no one else may change (or run) a log before it is sent.
            mode = stat.S_IMODE(packed.lstat().st_mode) & 0o640
            partial.unlink(missing_ok=True)  # left by a stopped run (a link there is removed, not followed)
            try:
                with (
                    open_regular(packed) as raw,
                    gzip.GzipFile(fileobj=raw) as source,
                    os.fdopen(create_new(partial, mode), "wb") as sink,
                ):
                    shutil.copyfileobj(source, sink, CHUNK)
                    sink.flush()
                    os.fsync(sink.fileno())
            except (OSError, EOFError, zlib.error) as exc:
                partial.unlink(missing_ok=True)
                log.warning(f"{packed} is not a whole gzip file ({exc}); it is kept and not uploaded")
                continue
            os.rename(partial, plain)
            packed.unlink()

    def pending(self) -> list[Path]:
        """Spool files not yet fully confirmed, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        names = sorted(p.name for p in self.spool_dir.iterdir() if is_spool_name(self.logfile.name, p.name))
        regular = [self.spool_dir / name for name in names if is_regular(self.spool_dir / name)]
        for name in sorted(set(names) - {p.name for p in regular}):
            log.warning(
                f"{self.spool_dir / name} is not a regular file (a symbolic link?): not sent; remove it"
            )
        return regular

    def backlog(self, now: float) -> tuple[int, float]:
        """(bytes not yet confirmed, age in seconds of the oldest file holding some), the live log
        included: what monitoring watches to see that logs stopped reaching ThreatSTOP.  A file's
        age is that of its last write, so the oldest line can only be older."""
        waiting, oldest = 0, now
        candidates = [(path, self.progress(path).offset) for path in self.pending()]
        if is_regular(self.logfile):
            candidates.append((self.logfile, 0))
        for path, confirmed in candidates:
            info = path.lstat()
            if info.st_size > confirmed:
                waiting += info.st_size - confirmed
                oldest = min(oldest, info.st_mtime)
        return waiting, max(0.0, now - oldest)

    def wait_closed(self, path: Path) -> bool:
        """True once no process has ``path`` open (its writer reopened); False after close_timeout."""
        deadline = time.monotonic() + self.close_timeout
        while held_open(path):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _progress_path(self, path: Path) -> Path:
        return self.progress_dir / f"{path.name}.json"

    def progress(self, path: Path) -> Progress:
        flags = os.O_RDONLY | os.O_NONBLOCK  # a FIFO there must not block the run
        try:
            with os.fdopen(open_nofollow(self._progress_path(path), flags), "rb") as record:
                data = json.loads(record.read(4096))
            return Progress(int(data["offset"]), int(data["parts"]))
        except FileNotFoundError:
            return Progress()
        except (ValueError, KeyError, TypeError):
            raise UploadError(
                f"{self._progress_path(path)} is damaged; delete it to send {path.name} again from its start"
            ) from None

    def record(self, path: Path, progress: Progress) -> None:
        """Write the confirmed offset atomically: a crash leaves the old or the new record, never half."""
        write_atomic(
            self._progress_path(path), json.dumps({"offset": progress.offset, "parts": progress.parts})
        )

    def mark_done(self, path: Path) -> None:
        """Move a fully confirmed file to uploaded/ with the upload time as its mtime."""
        done = self.uploaded_dir / path.name
        trusted_dir(self.uploaded_dir, "log spool folder", 0o750)
        os.rename(path, done)
        os.utime(done, follow_symlinks=False)
        self._progress_path(path).unlink(missing_ok=True)

    def expire(self, keep_days: int, now: float) -> list[Path]:
        """Delete uploaded files older than ``keep_days`` and records of files no longer pending.

        Only regular files with this log's spool names go (``lstat``: a link is
        never followed), from folders :meth:`check_folders` showed are root's.
        """
        removed = []
        if os.path.lexists(self.uploaded_dir):
            trusted_dir(self.uploaded_dir, "log spool folder", 0o750)
            for path in sorted(self.uploaded_dir.iterdir()):
                info = path.lstat()
                if not (stat.S_ISREG(info.st_mode) and is_spool_name(self.logfile.name, path.name)):
                    continue
                if now - info.st_mtime >= keep_days * 86400:
                    path.unlink()
                    removed.append(path)
        if self.progress_dir.is_dir():
            for record in self.progress_dir.glob("*.json"):
                if not os.path.lexists(self.spool_dir / record.name[: -len(".json")]):
                    record.unlink()
        return removed
