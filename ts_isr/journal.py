"""The block log from the journal, for hosts where neither syslog-ng nor rsyslog runs (journald only).

Only the kernel's own entries are read (``_TRANSPORT=kernel``, a field journald
sets itself: a user's forged ``ThreatSTOP-`` line arrives by another transport),
from every boot the journal holds (``journalctl -k`` would mean this boot only),
and written in the syslog file form the upload has always sent.

Each line is uploaded once across restarts, reboots and rotation.  Two cursors
are kept in ``state_dir``: the confirmed one, saved only after the server
confirmed every part, and a pending one, the end of lines handed to the upload
spool.  A run first finishes what is pending (the spool resends only what the
server has not confirmed), then reads after the confirmed cursor.  A confirmed
cursor whose entries were vacuumed before they were read is a gap: logged with
its size, never silent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ts_isr.errors import TsError
from ts_isr.files import write_atomic
from ts_isr.linux.system import deadline
from ts_isr.log import escape, log
from ts_isr.tools import child_env, find_tool

MARK = "ThreatSTOP-"
CURSOR = "journal_cursor"
PENDING = "journal_cursor.pending"
JOURNAL_LOCK = "journal.lock"
TIMEOUT = 300.0
# Entries read in one run, and the longest line: a backlog (the first run, a scan) is read over several
# runs in bounded memory, each resuming from the cursor of the last entry the one before read.
MAX_ENTRIES = 200_000
MAX_BATCHES = 10  # batches one run uploads while they come full: 2M entries an hour
MAX_LINE = 1 << 16


@dataclass(frozen=True)
class Cursor:
    """A journal cursor's parts that tell a gap: sequence number space, number, time (microseconds)."""

    text: str
    seqnum_id: str
    seqnum: int
    realtime: int


def parse_cursor(text: str) -> Cursor | None:
    fields = dict(part.split("=", 1) for part in text.strip().split(";") if "=" in part)
    try:
        return Cursor(text.strip(), fields["s"], int(fields["i"], 16), int(fields["t"], 16))
    except (KeyError, ValueError):
        return None


def message_text(value: object) -> str:
    """MESSAGE as journalctl's JSON gives it: a string, or bytes as a list of numbers."""
    if isinstance(value, list):
        return bytes(value).decode(errors="replace")
    return str(value)


def block_line(entry: dict[str, object]) -> str | None:
    """A kernel ThreatSTOP- entry as the syslog file line the upload sends, else None."""
    message = message_text(entry.get("MESSAGE", ""))
    if entry.get("_TRANSPORT") != "kernel" or MARK not in message:
        return None
    when = datetime.fromtimestamp(int(str(entry["__REALTIME_TIMESTAMP"])) / 1e6)
    host = str(entry.get("_HOSTNAME", "localhost"))
    text = " ".join(message.splitlines())
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S} {host} kernel: {text}\n"


def gap(saved: Cursor, oldest: Cursor | None) -> str | None:
    """What was vacuumed between the saved cursor and the oldest entry left, or None if nothing was."""
    if oldest is None or oldest.realtime <= saved.realtime:
        return None
    span = (oldest.realtime - saved.realtime) / 1e6
    same = oldest.seqnum_id == saved.seqnum_id
    count = f"{oldest.seqnum - saved.seqnum - 1} journal entries" if same else "journal entries"
    return (
        f"the journal no longer holds the entries after the last upload: {count} over {span:.0f} s "
        f"(from {datetime.fromtimestamp(saved.realtime / 1e6):%Y-%m-%d %H:%M:%S} to "
        f"{datetime.fromtimestamp(oldest.realtime / 1e6):%Y-%m-%d %H:%M:%S}) were vacuumed before they "
        "were read; block lines among them are lost (raise SystemMaxUse= or run tsadmin logs more often)"
    )


class Journal:
    """``journalctl`` on the system journal, or on the journal files of ``directory``."""

    def __init__(self, directory: Path | None = None, limit: int = MAX_ENTRIES) -> None:
        self.where = ["-D", str(directory)] if directory else []
        self.limit = limit

    def _argv(self, *args: str) -> list[str]:
        tool = find_tool("journalctl")
        if tool is None:
            raise TsError("journalctl is not installed: install systemd, or syslog-ng for the block log")
        return [tool, *self.where, "--no-pager", "-o", "json", *args]

    def entries(self, after: str | None) -> Iterator[dict[str, object]]:
        """The kernel's entries after the cursor (all of them without one), oldest first, streamed: at
        most ``limit`` in one run (the rest follow from the cursor of the last one), each bounded."""
        argv = self._argv("_TRANSPORT=kernel", *([f"--after-cursor={after}"] if after else []))
        with (
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env()
            ) as reader,
            deadline(reader, "journalctl", TIMEOUT),
        ):
            assert reader.stdout is not None and reader.stderr is not None
            for _ in range(self.limit):
                entry = _entry(reader.stdout.readline(MAX_LINE))
                if entry is None:
                    break
                yield entry
            reader.kill()  # done, or the limit reached: the rest is the next run's
            stderr = reader.stderr.read(MAX_LINE)
            failed = reader.wait() not in (0, -9)
        if failed:
            first = next((line for line in stderr.splitlines() if line.strip()), "no error text")
            raise TsError(f"journalctl failed: {escape(first)}; check the journal (journalctl --verify)")

    def oldest(self) -> Cursor | None:
        """The oldest entry the journal still holds, of any transport."""
        argv = self._argv()
        with (
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env()
            ) as reader,
            deadline(reader, "journalctl", TIMEOUT),
        ):
            assert reader.stdout is not None
            first = _entry(reader.stdout.readline(MAX_LINE))
            reader.kill()
        return None if first is None else parse_cursor(str(first.get("__CURSOR", "")))


def _entry(line: str) -> dict[str, object] | None:
    """One line of ``journalctl -o json``, or None at the end; anything else is one line."""
    if not line:
        return None
    if not line.endswith("\n"):
        raise TsError(f"journalctl printed an entry of over {MAX_LINE} characters; check the journal")
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or "__CURSOR" not in entry:
        raise TsError(f"journalctl printed a line that is not a journal entry: {escape(line, 120)}")
    return entry


@dataclass(frozen=True)
class Batch:
    lines: list[str]
    cursor: str | None  # the last entry read, whether it was a block line or not
    full: bool = False  # as many entries as a batch holds: more may follow


def collect(journal: Journal, after: str | None) -> Batch:
    """The block lines after ``after``; a vacuumed stretch before them is logged with its size."""
    saved = parse_cursor(after) if after else None
    start = after
    if saved is not None:
        lost = gap(saved, journal.oldest())
        if lost:
            log.warning(lost)
            start = None  # everything left is newer; journalctl would skip the entry a gone cursor lands on
    lines, cursor, read = [], after, 0
    for entry in journal.entries(start):
        cursor, read = str(entry["__CURSOR"]), read + 1
        line = block_line(entry)
        if line is not None:
            lines.append(line)
    return Batch(lines, cursor, full=read == journal.limit)


def read_cursor(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def upload_from_journal(
    journal: Journal,
    state_dir: Path,
    logfile: Path,
    upload: Callable[[], list[str]],
    batches: int = MAX_BATCHES,
) -> int:
    """Finish the pending batch, then read and upload the next ones (up to ``batches``, while each
    is full); the lines handed to the upload.

    ``upload`` sends the spool (and ``logfile`` once rotated into it) and
    returns the files it could not send yet; only when none is left is the
    pending cursor confirmed.
    """
    confirmed, pending = state_dir / CURSOR, state_dir / PENDING
    if read_cursor(pending) is not None and not _confirm(upload(), pending, confirmed):
        return 0
    sent = 0
    for _ in range(batches):
        batch = collect(journal, read_cursor(confirmed))
        if batch.cursor is None or batch.cursor == read_cursor(confirmed):
            log.info("No new kernel entries in the journal.")
            return sent
        if batch.lines:
            # The batch replaces the block log (only this code writes it here), then its end is pending.
            write_atomic(logfile, "".join(batch.lines), 0o640)
            write_atomic(pending, batch.cursor + "\n", 0o600)
            log.info(f"{len(batch.lines)} block line(s) from the journal to upload.")
            sent += len(batch.lines)
            if not _confirm(upload(), pending, confirmed):
                return sent
        else:  # kernel entries, none of them ours: nothing to send, nothing to lose
            write_atomic(confirmed, batch.cursor + "\n", 0o600)
        if not batch.full:
            return sent
    log.warning(
        f"the journal held more kernel entries than one run reads ({batches} batches of {journal.limit}): "
        "the rest goes with the next run; if this repeats, run tsadmin logs more often or limit the "
        "LOG rules' rate, or journald will vacuum block lines before they are read"
    )
    return sent


def _confirm(waiting: list[str], pending: Path, confirmed: Path) -> bool:
    """The server confirmed everything: the pending cursor becomes the confirmed one."""
    if waiting:
        return False
    cursor = read_cursor(pending)
    if cursor is not None:
        write_atomic(confirmed, cursor + "\n", 0o600)
    pending.unlink(missing_ok=True)
    return True
