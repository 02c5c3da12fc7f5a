"""Quick answers from local state, no network: ``--status`` and ``--search``.

An admin asked "is the policy still updating?" or "does ThreatSTOP block X?"
gets the answer from the run records and the last good policy in
``state_dir``, at once, even when the policy servers or the device are down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ts_isr.errors import Exit, TsError
from ts_isr.files import check_dir
from ts_isr.policystore import load_last_good
from ts_isr.runrecord import RunRecord, describe, load_record
from ts_isr.search import device_note, parse_address, search
from ts_isr.targets.base import slot

CYCLE = 2 * 3600.0  # cron runs the policy update every 2 hours (the seed's 23 */2)


def state_dir_made(state_dir: Path) -> bool:
    """The state folder, checked like every folder root reads; missing, nothing has run yet (the first
    run makes it)."""
    try:
        check_dir(state_dir, "state_dir")
    except FileNotFoundError:
        return False
    return True


def status_lines(
    records: Sequence[tuple[str, RunRecord | None]], now: float, cycle: float = CYCLE
) -> list[str]:
    """Each device's last run, and a warning where nothing has worked for two cycles."""
    lines: list[str] = []
    for label, record in records:
        lines += [f"{label}: no run recorded yet"] if record is None else describe(record, now, cycle)
    return lines


def show_status(state_dir: Path, command: str, labels: Sequence[str], cycle: float = CYCLE) -> Exit:
    """Print the status; exit 1 when a device needs attention (no record, stale or failed)."""
    ran = state_dir_made(state_dir)
    records = [(label, load_record(state_dir, command, label) if ran else None) for label in labels]
    lines = status_lines(records, time.time(), cycle)
    for line in lines:
        print(line)
    attention = any(record is None or not record.success for _, record in records)
    return Exit.FAILED if attention or any(line.startswith("WARNING") for line in lines) else Exit.UNCHANGED


def search_lines(
    texts: Sequence[str],
    state_dir: Path,
    *,
    store_key: str = "",
    groups: dict[str, str] | None = None,
    record: RunRecord | None = None,
) -> list[str]:
    """One line per address from the last good policy; with ``groups`` (a Cisco device's, by slot),
    whether the group that takes the entry's family held it at the device's last run."""
    addresses = [parse_address(text) for text in texts]  # a bad one stops all: one clear line
    stored = load_last_good(state_dir, store_key) if state_dir_made(state_dir) else None
    if stored is None:
        raise TsError(
            f"no policy has been fetched yet into {state_dir}; run the update once, then search again"
        )
    lines = []
    for address in addresses:
        verdict = search(stored, address)
        note = ""
        if groups is not None:
            kind = "allow" if verdict.state == "allowed" else "block"
            group = groups.get(slot(kind, address.family), groups[kind])
            note = device_note(verdict, group, record, stored)
        lines.append(verdict.line() + note)
    return lines
