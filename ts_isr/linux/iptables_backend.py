"""The ipset + iptables backend: sets swapped by ``ipset restore``, matched by a chain of ours jumped to
first from INPUT, OUTPUT and FORWARD.  Works on iptables-legacy and iptables-nft alike (``-m set``).

The kernel's name limits are this backend's: an ipset name of at most 31
characters, an iptables chain of 28, a LOG prefix of 29.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from ts_isr.errors import ConfigError, DeviceError
from ts_isr.linux.firewall import TOOLS, ChainSpec, Firewall, LastApplied, by_direction
from ts_isr.linux.names import Limits, derive_names
from ts_isr.linux.system import run_tool
from ts_isr.log import log
from ts_isr.policy import Policy
from ts_isr.targets.base import Plan, plan_changes, plan_from_previous
from ts_isr.targets.ipset import IpsetTarget, policy_of
from ts_isr.targets.ipset_record import Record, record_of
from ts_isr.tools import find_tool

LIMITS = Limits(set_name=31, chain_name=28, log_prefix=29)
# Tool, and the Debian package that installs it.
HOST_TOOLS = {
    "ipset": "ipset",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "iptables-restore": "iptables",
    "ip6tables": "iptables",
    "ip6tables-save": "iptables",
    "ip6tables-restore": "iptables",
}
_COUNTED = re.compile(r"\[(\d+):(\d+)\] -A (\S+) .*--match-set \S+ (src|dst) -j DROP$")
_WAYS = {"src": "in", "dst": "out"}


def check_tools(
    lookup: Callable[[str], str | None] = find_tool, run: Callable[[list[str]], str] = run_tool
) -> None:
    """Every tool this backend needs, and a kernel that has ipsets: else one line."""
    missing = [tool for tool in HOST_TOOLS if lookup(tool) is None]
    if missing:
        packages = " ".join(dict.fromkeys(HOST_TOOLS[tool] for tool in missing))
        raise ConfigError(
            f"{', '.join(missing)} not installed; install them (apt-get install {packages}) and run "
            "tsadmin add again; nothing was changed"
        )
    try:
        run(["ipset", "list", "-n"])
    except DeviceError as exc:
        raise DeviceError(
            f"the kernel refuses ipsets ({exc}): load the ip_set module (modprobe ip_set) or use a "
            "kernel that has it, and run tsadmin add again; nothing was changed"
        ) from None


def blocked_counters(saved: str, chain: str) -> dict[str, tuple[int, int]]:
    """Packets and bytes the chain's DROP rules matched, by direction (``in``: a blocked source,
    ``out``: a blocked destination), from ``iptables-save -c``."""
    matches = (_COUNTED.match(line) for line in saved.splitlines())
    return by_direction(
        (_WAYS[match.group(4)], int(match.group(1)), int(match.group(2)))
        for match in matches
        if match and match.group(3) == chain
    )


class IptablesBackend:
    """ipsets plus an iptables chain (:class:`IpsetTarget` and :class:`Firewall` behind one interface)."""

    kind = "iptables"
    why = "ipset sets matched by an iptables chain (iptables-legacy or iptables-nft)"

    def __init__(self, prefix: str) -> None:
        self.names = derive_names(prefix, LIMITS)
        self.target = IpsetTarget(self.names)
        self.firewall = Firewall(self.names)
        self.applied: Policy | None = None
        self.read_back = 0  # when the sets were last read back whole (epoch seconds), for the record
        self.vouched: Record | None = None  # the boot state's record this run's change started from

    def check_host(self) -> None:
        check_tools()

    def check_owned(self, *, removing: bool = False) -> None:
        self.firewall.check_owned(removing=removing)

    def present(self) -> bool:
        return bool(self.target.present()) or self.firewall.installed()

    def backup(self) -> dict[str, str]:
        return {"ipset": run_tool(["ipset", "save"]), "iptables": self.firewall.backup(4)} | {
            "ip6tables": self.firewall.backup(6)
        }

    def read_policy(self) -> Policy:
        return policy_of(self.target.read())

    def apply(
        self,
        spec: ChainSpec,
        policy: Policy | None,
        before_sets: Callable[[], None],
        last: LastApplied | None = None,
    ) -> bool:
        policy, plan = self._plan(policy, last)
        desired = {change.kind: change.desired for change in plan.changes}
        changed = False
        if not plan.unchanged or not self.target.complete(desired):
            before_sets()
            self.target.apply(plan)
            changed = True
        else:
            log.info(f"Policy unchanged: {len(policy.block)} block and {len(policy.allow)} allow entries")
        if self.firewall.install(self.target.families_present(), spec):
            log.info(f"Chain {self.names.chain} written and jumped to first from INPUT, OUTPUT and FORWARD")
            changed = True
        self.applied = policy
        return changed

    def _plan(self, policy: Policy | None, last: LastApplied | None) -> tuple[Policy, Plan]:
        """The policy to install and the change to make: against the last update's policy when the
        boot state's record and the kernel's counts vouch for it (a header listing), else against
        every entry read back (1.2 s at 200,000).  No ``policy``: the sets keep what they hold."""
        if policy is not None and last is not None:
            check = self.target.recorded(last.state)
            try:
                plan = plan_from_previous(last.policy, policy)  # while ipset counts the sets' entries
            finally:
                record = check()  # waited for even if the diff fails: no listing is left behind
            if record is not None and record.vouches_for(last.policy, time.time()):
                self.read_back, self.vouched = record.read_back, record
                return policy, plan
            log.info(
                "The last update's record does not vouch for the sets (or is a day old): reading them back"
            )
        self.read_back, self.vouched = int(time.time()), None
        installed = self.target.read()
        policy = policy_of(installed) if policy is None else policy
        return policy, plan_changes(installed, policy, self.target.families, ordered=False)

    def save(self, path: Path) -> None:
        record = record_of(self.applied, self.read_back) if self.applied else None
        self.target.save_state(path, record, since=self.vouched)

    def load(self, path: Path) -> Policy | None:
        return IpsetTarget.load_state(path, self.names)

    def remove(self) -> bool:
        """The seed's order: flush the sets, remove the rules that use them, destroy the sets.

        A chain that is not tsadmin's alone (host rules in it, host rules jumping
        to it) is refused before the sets are emptied.
        """
        self.firewall.check_owned(removing=True)
        present = self.target.present()
        self.target.flush_all()
        changed = self.firewall.remove()
        self.target.destroy_all()
        return changed or bool(present)

    def show(self) -> list[str]:
        members = self.target.read()
        lines = [f"Chain {self.names.chain}: {'installed' if self.firewall.installed() else 'not installed'}"]
        for spec in self.names.sets:
            if spec.name in self.target.sets:
                entries = len(self.target.sets[spec.name].members)
                lines.append(f"  {spec.name} ({spec.hash_type}): {entries} entries")
        block, allow = len(members["block"]), len(members["allow"])
        lines.append(f"Block list: {block} entries, allow list: {allow} entries")
        return lines

    def counters(self) -> dict[str, tuple[int, int]]:
        saved = []
        for family in (4, 6):
            try:
                saved.append(run_tool([TOOLS[family][0], "-c", "-t", "filter"]))
            except DeviceError:
                if family == 4:
                    raise
        return by_direction(
            (direction, packets, octets)
            for text in saved
            for direction, (packets, octets) in blocked_counters(text, self.names.chain).items()
        )
