"""The seed's log style (``[INFO ] : message``), with secrets masked and device text escaped."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import traceback
from contextvars import ContextVar
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

#: The fleet device the running thread works on (None outside a fleet run): every line it logs
#: names it on the terminal and in the fleet's log, and reaches that device's own log file.
current_device: ContextVar[str | None] = ContextVar("ts_isr_device", default=None)


class SeedFormatter(logging.Formatter):
    """``[INFO ] : message`` as the vendor's scripts print it; the file also gets a time stamp."""

    def __init__(self, with_time: bool, named: bool = True) -> None:
        super().__init__()
        self.with_time = with_time
        self.named = named  # a fleet device's lines begin with its name (not in its own file)

    def format(self, record: logging.LogRecord) -> str:
        device = getattr(record, "device", None) if self.named else None
        where = f"{device}: " if device else ""
        line = f"{_LEVEL_TAGS.get(record.levelno, '[INFO ]')} : {where}{record.getMessage()}"
        if self.with_time:
            return f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')} {line}"
        return line


class DeviceTag(logging.Filter):
    """Stamps each record with the fleet device of its thread (see :data:`current_device`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.device = current_device.get()
        return True


class DeviceFiles(logging.Handler):
    """Every fleet device's own log file behind one handler: a record reaches the file of its
    thread's device and no other.  (A handler per device would see every record: each line would
    pass a filter for every device at work.)"""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.files: dict[str, logging.Handler] = {}

    def open(self, device: str, logfile: Path) -> None:
        self.files[device] = private_log(logfile, device)

    def close_file(self, device: str) -> None:
        self.files.pop(device).close()

    def handle(self, record: logging.LogRecord) -> bool:
        handler = self.files.get(current_device.get() or "")
        return bool(handler and handler.handle(record))


class PrivateFileHandler(logging.FileHandler):
    """A log file only its owner may read: it holds the device dialogue and the config's paths.

    Opened without following a symlink (root would append to whatever a planted link names) and
    refused unless it is a regular file of root or the running user.
    """

    def _open(self) -> TextIO:
        fd = open_nofollow(Path(self.baseFilename), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)


class SecretMask(logging.Filter):
    """Replaces every registered secret in every record that reaches a handler.

    A secret is masked where it stands as a value of its own: not inside a
    longer word, so that a short enable password such as ``en`` leaves
    "current" alone while "enable en" and "password=en" are masked.  The
    filter sits on the handlers, not on a logger: Python runs a logger's
    filters only for records logged on that very logger, and a child logger's
    records (``ts_isr.fleet``) would pass unmasked.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, *secrets: str) -> None:
        self.secrets.update(secrets)

    def mask(self, text: str) -> str:
        """``text`` with the secrets it holds masked.  A fleet registers hundreds of secrets: one
        substring test each finds the few present, and only those go into a pattern (a pattern of
        every secret took 60 ms on a 4,000-character device reply)."""
        present = frozenset(secret for secret in self.secrets if secret in text)
        return _pattern(present).sub(MASK, text) if present else text

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "masked", False):  # once per record, whatever the number of handlers
            record.msg, record.args = self.mask(record.getMessage()), None
            record.masked = True
        return True


@functools.lru_cache(maxsize=256)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    """The longest secret first, so that one holding another is masked whole."""
    return re.compile("|".join(_standalone(secret) for secret in sorted(secrets, key=len, reverse=True)))


def _standalone(secret: str) -> str:
    """``secret`` not inside a longer word: an edge that is a word character must meet a non-word
    one (a secret such as ``!x`` is masked wherever it stands, ``en`` not in "current")."""
    before = r"(?<![A-Za-z0-9_])" if _WORD.match(secret[0]) else ""
    after = r"(?![A-Za-z0-9_])" if _WORD.match(secret[-1]) else ""
    return before + re.escape(secret) + after


_WORD = re.compile(r"[A-Za-z0-9_]")
_mask = SecretMask()
_tag = DeviceTag()


def add_secret(secret: str | None) -> None:
    """Register a value that must never appear in any log line, nor in its escaped form (device
    text is escaped before it is logged, so ``p\\wé`` reaches the log as ``p\\\\w\\xe9``)."""
    if secret:
        _mask.add(secret, escape(secret, limit=sys.maxsize))


def escape(text: str, limit: int = 300) -> str:
    """Device or DNS text made safe for one log line: control characters shown, length bounded."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit] + "...(truncated)"


def log_bug(exc: BaseException, advice: str) -> str:
    """A bug: its traceback to the file log, one escaped line (logged, and returned) for the user."""
    log.debug("".join(traceback.format_exception(exc)))
    line = f"internal error: {type(exc).__name__}: {escape(str(exc))}; {advice}"
    log.error(line)
    return line


def setup_logging(logfile: Path | None, *, verbose: bool = False, quiet: bool | None = None) -> None:
    """Full detail to ``logfile``; the terminal gets INFO (or only warnings when not a TTY, for cron).

    The file's folder must be one no other user can change (:func:`~ts_isr.files.trusted_dir`):
    :class:`~ts_isr.files.UnsafePath` otherwise, ``OSError`` when it cannot be made.
    """
    log.handlers.clear()
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if quiet is None:
        quiet = not sys.stdout.isatty()
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    console.setFormatter(SeedFormatter(with_time=False))
    console.addFilter(_mask)
    console.addFilter(_tag)
    log.addHandler(console)
    if logfile is not None:
        log.addHandler(private_log(logfile))


def private_log(logfile: Path, device: str | None = None) -> logging.Handler:
    """A handler writing every detail to ``logfile`` (in a folder only root or the running user can
    change), masked; with ``device``, a fleet device's own file (:class:`DeviceFiles` gives it that
    device's lines), without its name on each."""
    trusted_dir(logfile.parent, "log folder")
    handler = PrivateFileHandler(logfile, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(SeedFormatter(with_time=True, named=device is None))
    handler.addFilter(_mask)
    if device is None:
        handler.addFilter(_tag)
    return handler
