"""The seed's log style (``[INFO ] : message``), with secrets masked and device text escaped."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from ts_isr.files import open_nofollow, trusted_dir

LOGGER_NAME = "ts_isr"
log = logging.getLogger(LOGGER_NAME)

_LEVEL_TAGS = {
    logging.DEBUG: "[DEBUG]",
    logging.INFO: "[INFO ]",
    logging.WARNING: "[WARN ]",
    logging.ERROR: "[ERROR]",
    logging.CRITICAL: "[ERROR]",
}
MASK = "******"


class SeedFormatter(logging.Formatter):
    """``[INFO ] : message`` as the vendor's scripts print it; the file also gets a time stamp."""

    def __init__(self, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_LEVEL_TAGS.get(record.levelno, '[INFO ]')} : {record.getMessage()}"
        if self.with_time:
            return f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')} {line}"
        return line


class PrivateFileHandler(logging.FileHandler):
    """A log file only its owner may read: it holds the device dialogue and the config's paths.

    Opened without following a symlink (root would append to whatever a planted link names) and
    refused unless it is a regular file of root or the running user.
    """

    def _open(self) -> TextIO:
        fd = open_nofollow(Path(self.baseFilename), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)


class SecretMask(logging.Filter):
    """Replaces every registered secret in every record, whatever handler it goes to."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, MASK)
        record.msg, record.args = message, None
        return True


_mask = SecretMask()


def add_secret(secret: str | None) -> None:
    """Register a value that must never appear in any log line, nor in its escaped form (device
    text is escaped before it is logged, so ``p\\wé`` reaches the log as ``p\\\\w\\xe9``)."""
    if secret:
        _mask.secrets.update({secret, escape(secret, limit=sys.maxsize)})


def escape(text: str, limit: int = 300) -> str:
    """Device or DNS text made safe for one log line: control characters shown, length bounded."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit] + "...(truncated)"


def setup_logging(logfile: Path | None, *, verbose: bool = False, quiet: bool | None = None) -> None:
    """Full detail to ``logfile``; the terminal gets INFO (or only warnings when not a TTY, for cron).

    The file's folder must be one no other user can change (:func:`~ts_isr.files.trusted_dir`):
    :class:`~ts_isr.files.UnsafePath` otherwise, ``OSError`` when it cannot be made.
    """
    log.handlers.clear()
    log.filters.clear()
    log.addFilter(_mask)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if quiet is None:
        quiet = not sys.stdout.isatty()
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    console.setFormatter(SeedFormatter(with_time=False))
    log.addHandler(console)
    if logfile is not None:
        trusted_dir(logfile.parent, "log folder")
        handler = PrivateFileHandler(logfile, encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(SeedFormatter(with_time=True))
        log.addHandler(handler)
