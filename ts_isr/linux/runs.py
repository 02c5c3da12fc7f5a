"""What tsadmin's runs leave for monitoring and for ``tsadmin show``: the host's view of its records.

``tsadmin update`` and ``add`` record the policy they installed, what it
changed against the last good one, and the drops the block rules counted;
``tsadmin logs`` records the upload's backlog.  The device label is the
host's name, so one node_exporter can watch many hosts.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from ts_isr.commands.answers import status_lines
from ts_isr.linux.backend import Backend
from ts_isr.policy import Policy
from ts_isr.runrecord import RunRecord, load_record
from ts_isr.sortedchanges import sorted_changes

UPDATE, ADD, LOGS = "tsadmin_update", "tsadmin_add", "tsadmin_logs"
CYCLES = {UPDATE: 2 * 3600.0, LOGS: 3600.0}  # the cron lines (or timers) tsadmin installs


def host_label() -> str:
    return socket.gethostname()


def changes(before: Policy | None, after: Policy) -> dict[str, dict[str, int]]:
    """Entries added and removed per list against the policy installed before."""
    counts = {}
    for kind in ("block", "allow"):
        added, removed = sorted_changes(
            getattr(before, kind) if before is not None else (), getattr(after, kind)
        )
        counts[kind] = {"add": len(added), "remove": len(removed)}
    return counts


def note_install(
    record: RunRecord, policy: Policy, before: Policy | None, changed: bool, backend: Backend
) -> None:
    """The host holds exactly ``policy`` once the install worked: its entries are the policy's."""
    record.result = "changed" if changed else "unchanged"
    record.device_entries = {kind: len(getattr(policy, kind)) for kind in ("block", "allow")}
    record.changes = changes(before, policy)
    counted = backend.counters()
    record.blocked_packets = {direction: packets for direction, (packets, _) in counted.items()}
    record.blocked_bytes = {direction: octets for direction, (_, octets) in counted.items()}


def host_status(state_dir: Path) -> list[str]:
    """The policy update's and the log upload's last runs, with a warning when one is stale."""
    label = host_label()
    lines = []
    for command, cycle in CYCLES.items():
        lines += status_lines(
            [(f"{label} ({command})", load_record(state_dir, command, label))], time.time(), cycle
        )
    return lines
