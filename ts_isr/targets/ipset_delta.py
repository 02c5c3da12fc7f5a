"""Small changes to live ipsets in place: one ``ipset -exist restore`` batch of additions, then removals.

A 1% change of a 200,000-entry policy swapped in as whole sets costs as much
as a first load; made in place it costs a fraction (bench/bench_ipset.py).
Past SMALL_CHANGE the swap is cheaper again, and it resizes the sets.
``ipset restore`` is not a transaction: the caller repairs a failed batch by
a swap in the same run.
"""

from __future__ import annotations

from collections.abc import Collection

from ts_isr.linux.names import Names, SetName
from ts_isr.ranges import BITS, Cidr
from ts_isr.targets.base import Members, Plan

# Changes (additions plus removals) up to this fraction of the entries are made in place; more are
# swapped in as whole sets.  Measured at 200,000 entries: see docs/tsadmin.md.
SMALL_CHANGE = 0.3


def small_change(plan: Plan) -> bool:
    """Few enough changes to make in place rather than by swapping whole sets."""
    changes = sum(len(change.add) + len(change.remove) for change in plan.changes)
    total = sum(len(change.desired) for change in plan.changes)
    return 0 < changes <= SMALL_CHANGE * total


def entry(spec: SetName, cidr: Cidr) -> str:
    return cidr.address_text() if spec.hash_type == "hash:ip" else str(cidr)


def render_delta(names: Names, plan: Plan, live: Collection[str]) -> str | None:
    """Every addition first, then every removal, so an entry replaced by a wider or narrower one is
    covered by one of them at every moment; None when an entry's set does not exist yet (the first
    IPv6 entry, say): only a swap creates sets."""
    set_of = {(s.kind, s.family, s.hash_type == "hash:ip"): s for s in names.sets}
    adds, dels = [], []
    for change in plan.changes:
        for verb, cidrs, out in (("add", change.add, adds), ("del", change.remove, dels)):
            for cidr in cidrs:
                spec = set_of[change.kind, cidr.family, cidr.prefixlen == BITS[cidr.family]]
                if spec.name not in live:
                    return None
                out.append(f"{verb} {spec.name} {entry(spec, cidr)}\n")
    return "".join(adds + dels)


def installed_before(plan: Plan) -> Members:
    """What the sets held when ``plan`` was made (it adds what they lacked and removes what was too
    many), to put back when a change stops part-way."""
    return {
        change.kind: (frozenset(change.desired) - frozenset(change.add)) | frozenset(change.remove)
        for change in plan.changes
    }
