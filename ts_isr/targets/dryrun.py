"""The dry run: reads the real device, prints the difference, touches nothing.

It keeps the result of the plan in memory, so the run's read-back check sees
what the device would hold and the dry run goes through the same path as a
real one up to the device's configuration mode, which it never enters.
"""

from __future__ import annotations

from ts_isr.log import current_device, log
from ts_isr.policy import count_by_family
from ts_isr.ranges import Cidr
from ts_isr.targets.base import Members, Plan, Target


class DryRunTarget(Target):
    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.simulated: dict[str, frozenset[Cidr]] = {}

    @property  # type: ignore[override]
    def families(self) -> frozenset[int]:
        """The inner place's, as it knows them once connected (an ASA's version decides)."""
        return self.inner.families

    def slot_families(self, slot_name: str) -> frozenset[int]:
        return self.inner.slot_families(slot_name)

    def why_skipped(self, kind: str) -> str:
        return self.inner.why_skipped(kind)

    def read_kind(self, kind: str) -> frozenset[Cidr]:
        if kind not in self.simulated:
            self.simulated[kind] = self.inner.read_kind(kind)
        return self.simulated[kind]

    def read(self) -> Members:
        if not self.simulated:
            self.simulated = dict(self.inner.read())
        return dict(self.simulated)

    def apply(self, plan: Plan) -> None:
        """Print the difference in one piece (so a fleet's devices never interleave), each line
        naming its device in a fleet run."""
        device = current_device.get()
        where = f"{device}: " if device else ""
        lines = []
        for change in plan.changes:
            lines += [f"{where}+ {change.kind} {cidr}" for cidr in change.add]
            lines += [f"{where}- {change.kind} {cidr}" for cidr in change.remove]
            self.simulated[change.kind] = change.applied_to(self.simulated.get(change.kind, frozenset()))
        if lines:
            print("\n".join(lines), flush=True)
        adds = count_by_family(cidr for change in plan.changes for cidr in change.add)
        removals = count_by_family(cidr for change in plan.changes for cidr in change.remove)
        log.info(f"Dry run: {adds} entries to add, {removals} to remove; the device was not changed.")

    def held_by_user(self, kind: str) -> frozenset[Cidr]:
        return self.inner.held_by_user(kind)

    def close(self) -> None:
        self.inner.close()
