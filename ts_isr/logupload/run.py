"""One run: rotate, adopt, send every closed spool file oldest first, expire."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ts_isr.errors import TsError
from ts_isr.lock import run_lock
from ts_isr.log import log
from ts_isr.logupload.packing import DEFAULT_PART_SIZE, Packed, UploadError, pack_part
from ts_isr.logupload.spool import LogSpool, Progress
from ts_isr.logupload.spoolfiles import open_regular
from ts_isr.logupload.uploader import Destination, Device, Uploader


@dataclass
class UploadReport:
    """What one run did: files fully confirmed, parts and bytes sent, files left for later."""

    files_done: list[str] = field(default_factory=list)
    parts_sent: int = 0
    bytes_sent: int = 0
    bytes_compressed: int = 0
    waiting: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def upload_logs(
    spool: LogSpool,
    uploader: Uploader,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    keep_days: int = 7,
    rotate: bool = True,
) -> UploadReport:
    """One run: rotate, adopt logrotate's files, send every closed spool file oldest first, expire.

    Raises :class:`UploadError` at the first failure; everything confirmed
    before it stays recorded, everything else waits for the next run.
    """
    report = UploadReport()
    try:
        spool.check_folders()
        with run_lock(spool.lock_path, "log upload"):
            _run(spool, uploader, part_size, keep_days, rotate, report)
    except OSError as exc:
        raise UploadError(
            f"{exc.filename or 'log spool'}: {exc.strerror or exc}; check that the log and state "
            "directories are writable by this user (cron runs it as root); nothing was lost"
        ) from None
    return report


def upload_configured(
    config: Any, logfile: Path, device: Device, reopen_command: Sequence[str] | None, *, rotate: bool = True
) -> UploadReport:
    """One run from a loaded config (Cisco or Linux: both name the upload keys alike)."""
    spool = LogSpool(logfile, config.state_dir, reopen_command=reopen_command)
    destination = Destination(config.url, ca_bundle=config.ca_bundle, proxy=config.proxy)
    with Uploader(destination, device) as uploader:
        return upload_logs(
            spool,
            uploader,
            part_size=config.log_part_size,
            keep_days=config.keep_uploaded_days,
            rotate=rotate,
        )


def backlog_of(config: Any, logfile: Path, now: float) -> tuple[int, float] | None:
    """Bytes waiting and the oldest one's age, for monitoring; None when the spool cannot be read
    (the run's own error says why)."""
    try:
        return LogSpool(logfile, config.state_dir, reopen_command=None).backlog(now)
    except (OSError, TsError):
        return None


def _run(
    spool: LogSpool, uploader: Uploader, part_size: int, keep_days: int, rotate: bool, report: UploadReport
) -> None:
    """The run's steps, under the lock; ``report`` fills in as parts are confirmed."""
    if rotate:
        spool.rotate()
    spool.adopt_rotated()
    pending = spool.pending()
    log.info(f"{len(pending)} log file(s) to upload.")
    for index, path in enumerate(pending):
        if not spool.wait_closed(path):
            # A run that died between its rename and its reopen left the writer on a spool file.
            spool.reopen()
        if not spool.wait_closed(path):
            report.waiting = [p.name for p in pending[index:]]
            log.warning(
                f"{path.name} is still open for writing {spool.close_timeout:g} s after the reopen; "
                "it and newer files go on the next run (check log_reopen_command)"
            )
            break
        try:
            _upload_file(spool, uploader, path, part_size, report)
        except UploadError as exc:
            left = len(pending) - index
            raise UploadError(f"{exc} ({left} log file(s) wait for the next run)") from None
    report.expired = [p.name for p in spool.expire(keep_days, time.time())]
    log.info(
        f"Uploaded {len(report.files_done)} file(s) in {report.parts_sent} part(s): "
        f"{report.bytes_sent} bytes ({report.bytes_compressed} compressed)."
    )


def _upload_file(
    spool: LogSpool, uploader: Uploader, path: Path, part_size: int, report: UploadReport
) -> None:
    """Send ``path`` from its last confirmed offset, recording each confirmed part before the next.

    The next part is compressed in a worker thread while the current one is
    on the wire (zlib and TLS release the GIL): the run then goes as fast as
    ``gzip | curl``.  At most two parts are in memory.
    """
    progress = spool.progress(path)
    with open_regular(path) as source, ThreadPoolExecutor(1, thread_name_prefix="logupload-pack") as packer:
        size = os.fstat(source.fileno()).st_size

        def pack(start: int, number: int) -> Packed:
            return pack_part(source, path.name, number, start, size, part_size, uploader.level)

        upcoming = (
            packer.submit(pack, progress.offset, progress.parts + 1) if progress.offset < size else None
        )
        try:
            while upcoming is not None:
                packed = upcoming.result()
                part = packed.part
                upcoming = None if part.final else packer.submit(pack, part.end, part.number + 1)
                with contextlib.closing(packed):
                    uploader.send(packed)
                spool.record(path, Progress(part.end, part.number))
                report.parts_sent += 1
                report.bytes_sent += part.end - part.start
                report.bytes_compressed += packed.size
                log.debug(f"Part {part.number} of {path.name} ({part.start}..{part.end}) confirmed.")
        finally:
            if upcoming is not None and not upcoming.cancel():
                with contextlib.suppress(Exception):
                    upcoming.result().close()
    spool.mark_done(path)
    report.files_done.append(path.name)
    log.info(f"Uploaded {path.name} ({size} bytes).")
