"""What each run did, kept in ``state_dir``: the source of ``--status`` and of the metrics files.

Every command writes one record per device at the end of every run, success
or failure; the record carries the last success time over from the previous
one, so "nothing has worked for two cycles" can be told from local state
alone, with no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ts_isr.files import open_nofollow, safe_name, write_atomic

RESULTS = ("unchanged", "changed", "failed")
_LIMIT = 1 << 20  # a record is a few hundred bytes; never read a planted giant


@dataclass
class RunRecord:
    """One run of ``command`` on ``device`` (an address, an inventory name, or the host's name)."""

    command: str
    device: str
    started: float  # seconds since the epoch
    duration: float = 0.0
    result: str = "unchanged"  # one of RESULTS
    reason: str = ""  # a failure's one line
    last_success: float | None = None
    policy_fetched_at: float | None = None  # which policy the run applied
    policy_entries: dict[str, dict[str, int]] = field(default_factory=dict)  # list -> family -> n
    dropped_entries: dict[str, dict[str, int]] = field(default_factory=dict)  # list -> reason -> n
    device_entries: dict[str, int] = field(default_factory=dict)  # list -> members after the run
    changes: dict[str, dict[str, int]] = field(default_factory=dict)  # list -> add/remove -> n
    blocked_packets: dict[str, int] = field(default_factory=dict)  # direction -> n
    blocked_bytes: dict[str, int] = field(default_factory=dict)  # direction -> n
    lines_pushed: int | None = None  # a Cisco device: configuration lines it took
    lines_resent: int | None = None  # ... and those sent again because it dropped them
    log_pending_bytes: int | None = None
    log_oldest_pending_age: float | None = None
    log_uploaded_bytes: int | None = None

    @property
    def success(self) -> bool:
        return self.result != "failed"

    def finish(self, result: str, now: float, previous: RunRecord | None, reason: str = "") -> None:
        """Close the record: its result, duration, and the last success (this one, or carried over)."""
        self.result, self.reason = result, reason
        self.duration = max(0.0, now - self.started)
        carried = previous.last_success if previous is not None else None
        self.last_success = self.started if self.success else carried


def record_path(state_dir: Path, command: str, device: str) -> Path:
    return state_dir / f"last-run-{safe_name(command)}-{safe_name(device)}.json"


def save_record(state_dir: Path, record: RunRecord) -> None:
    write_atomic(record_path(state_dir, record.command, record.device), json.dumps(asdict(record)) + "\n")


def load_record(state_dir: Path, command: str, device: str) -> RunRecord | None:
    """The last record, or None when there is none or it is unreadable (then it starts afresh)."""
    try:
        fd = open_nofollow(record_path(state_dir, command, device), os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        text = handle.read(_LIMIT)
    try:
        record = RunRecord(**json.loads(text))
    except (ValueError, TypeError):
        return None
    return record if record.result in RESULTS else None


def when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(record: RunRecord, now: float, cycle: float) -> list[str]:
    """``--status`` lines for one device: the last run, and a warning when the last success is
    older than two cycles of its cron job (``cycle`` seconds)."""
    minutes = int((now - record.started) // 60)
    entries = ", ".join(f"{kind} {count}" for kind, count in sorted(record.device_entries.items()))
    line = f"{record.device}: {record.command} last ran {when(record.started)} ({minutes} min ago)"
    line += f": {record.result}"
    if record.reason:
        line += f" ({record.reason})"
    if entries:
        line += f"; entries: {entries}"
    lines = [line]
    if record.last_success is None or now - record.last_success > 2 * cycle:
        since = "ever" if record.last_success is None else f"since {when(record.last_success)}"
        lines.append(
            f"WARNING: {record.device}: no successful {record.command} run {since} "
            f"(more than two {cycle / 3600:g}-hour cycles); read its log and fix the cause"
        )
    return lines
