"""``--search``: does ThreatSTOP block this address, and by which entry?

Answered from the last good policy on disk, with no network, so that an
admin told "I can't reach X" knows at once.  The allow list wins over the
block list (as on the device); a lifeline the block list covered is named as
such, since the tool keeps it reachable whatever the list says.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from ts_isr.errors import ConfigError
from ts_isr.log import escape
from ts_isr.policystore import SparedLifeline, StoredPolicy
from ts_isr.ranges import Cidr
from ts_isr.runrecord import RunRecord, when


@dataclass(frozen=True)
class Verdict:
    """What the stored policy does with one address."""

    address: Cidr  # a single address (/32 or /128)
    state: str  # "blocked", "allowed", "lifeline" or "not listed"
    entry: Cidr | None = None
    what: str = ""  # for a lifeline: which one

    def line(self) -> str:
        shown = self.address.address_text()
        if self.state == "lifeline":
            return f"{shown} listed by {self.entry} but kept reachable (lifeline: {self.what})"
        if self.entry is None:
            return f"{shown} not listed"
        return f"{shown} {self.state} by {self.entry}"


def parse_address(text: str) -> Cidr:
    """One IPv4 or IPv6 address from the command line; ConfigError (one line) for anything else."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ConfigError(
            f"'{escape(text, 60)}' is not an IP address; give addresses such as 192.0.2.1 or 2001:db8::1"
        ) from None
    family = address.version
    return Cidr(family, int(address), 32 if family == 4 else 128)


def _holder(entries: Sequence[Cidr], address: Cidr) -> Cidr | None:
    """The entry of a sorted, disjoint list that holds ``address`` (a policy's lists are both)."""
    i = bisect_right(entries, (address.family, address.network, 999)) - 1
    if i >= 0:
        entry = entries[i]
        if entry.family == address.family and entry.network <= address.network <= entry.last:
            return entry
    return None


def _lifeline(spared: Sequence[SparedLifeline], address: Cidr) -> SparedLifeline | None:
    for item in spared:
        life = item.lifeline
        if life.family == address.family and life.network <= address.network <= life.last:
            return item
    return None


def search(stored: StoredPolicy, address: Cidr) -> Verdict:
    """The verdict for ``address``: allowed first, then blocked, then a covered lifeline."""
    allowed = _holder(stored.policy.allow, address)
    if allowed is not None:
        return Verdict(address, "allowed", allowed)
    blocked = _holder(stored.policy.block, address)
    if blocked is not None:
        return Verdict(address, "blocked", blocked)
    spared = _lifeline(stored.spared, address)
    if spared is not None:
        return Verdict(address, "lifeline", spared.listed_by, spared.what)
    return Verdict(address, "not listed")


def device_note(verdict: Verdict, group: str, record: RunRecord | None, stored: StoredPolicy) -> str:
    """For a Cisco device: whether the entry was in its group at its last run.

    A run that succeeded with the stored policy left every entry of it in the
    group; one that failed, or one that applied an older policy, may not have.
    """
    if verdict.state not in ("blocked", "allowed"):
        return ""
    if record is None:
        return f'; no run has reached the device yet, so "{group}" may not hold it'
    applied = record.policy_fetched_at == stored.fetched_at.timestamp()
    if record.success and applied:
        return f'; in "{group}" on {record.device} since its last run ({when(record.started)})'
    why = "failed" if not record.success else "applied an older policy"
    return f'; the device\'s last run ({when(record.started)}) {why}, so "{group}" may not hold it'
