"""The live log, its spool of rotated files, and the record of what the server confirmed."""

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

from ts_isr.files import write_atomic
from ts_isr.log import log
from ts_isr.logupload.packing import CHUNK, UploadError
from ts_isr.logupload.spoolfiles import (
    create_new,
    held_open,
    is_rotated_name,
    is_spool_name,
    same_inflated,
    spool_name,
)
from ts_isr.tools import find_tool

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
        self.progress_dir = state_dir / "logupload"
        self.lock_path = state_dir / "logupload.lock"
        self.reopen_command = tuple(reopen_command or ())
        self.close_timeout = close_timeout

    def _new_path(self, when: float) -> Path:
        """A free spool name: neither it nor its packed form (``.gz``, inflated later into it) exists."""
        return self.spool_dir / spool_name(
            self.logfile.name,
            when,
            lambda n: (self.spool_dir / n).exists() or (self.spool_dir / f"{n}.gz").exists(),
        )

    def _make_dirs(self) -> None:
        for directory in (self.spool_dir, self.uploaded_dir, self.progress_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o750)

    def rotate(self) -> Path | None:
        """Move the live log into the spool and make its writer reopen; None if it is empty."""
        try:
            size = self.logfile.stat().st_size
        except FileNotFoundError:
            size = 0
        if size == 0:
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
            if is_rotated_name(self.logfile.name, path.name) and path.is_file()
        ]
        adopted = []
        for path in sorted(found, key=lambda p: (p.stat().st_mtime, p.name)):
            if held_open(path):
                log.info(f"{path.name} is still being written by logrotate; it goes on the next run.")
                continue
            self._make_dirs()
            target = self._new_path(path.stat().st_mtime)
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
        for packed in sorted(self.spool_dir.glob("*.gz")):
            plain = packed.with_name(packed.name[: -len(".gz")])
            if plain.exists():
                if same_inflated(packed, plain):
                    packed.unlink()  # a run stopped between renaming X into place and removing X.gz
                    continue
                moved = self._new_path(packed.stat().st_mtime)
                os.rename(packed, moved.with_name(moved.name + ".gz"))
                packed, plain = moved.with_name(moved.name + ".gz"), moved
            partial = plain.with_name(plain.name + ".tmp")
            mode = stat.S_IMODE(packed.stat().st_mode)
            try:
                with gzip.open(packed, "rb") as source, os.fdopen(create_new(partial, mode), "wb") as sink:
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
        return [self.spool_dir / name for name in names]

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
        try:
            data = json.loads(self._progress_path(path).read_text())
            return Progress(int(data["offset"]), int(data["parts"]))
        except FileNotFoundError:
            return Progress()
        except (ValueError, KeyError, TypeError):
            raise UploadError(
                f"{self._progress_path(path)} is damaged; delete it to send {path.name} again from its start"
            ) from None

    def record(self, path: Path, progress: Progress) -> None:
        """Write the confirmed offset atomically: a crash leaves the old or the new record, never half."""
        target = self._progress_path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        write_atomic(target, json.dumps({"offset": progress.offset, "parts": progress.parts}))

    def mark_done(self, path: Path) -> None:
        """Move a fully confirmed file to uploaded/ with the upload time as its mtime."""
        done = self.uploaded_dir / path.name
        self.uploaded_dir.mkdir(exist_ok=True, mode=0o750)
        os.rename(path, done)
        os.utime(done)
        self._progress_path(path).unlink(missing_ok=True)

    def expire(self, keep_days: int, now: float) -> list[Path]:
        """Delete uploaded files older than ``keep_days`` and records of files no longer pending."""
        removed = []
        if self.uploaded_dir.is_dir():
            for path in sorted(self.uploaded_dir.iterdir()):
                if now - path.stat().st_mtime >= keep_days * 86400:
                    path.unlink()
                    removed.append(path)
        if self.progress_dir.is_dir():
            for record in self.progress_dir.glob("*.json"):
                if not (self.spool_dir / record.name[: -len(".json")]).exists():
                    record.unlink()
        return removed
