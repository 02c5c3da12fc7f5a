"""Small changes to live ipsets in place: one ``ipset -exist restore`` batch of additions, then removals.

A 1% change of a 200,000-entry policy swapped in as whole sets costs as much
as a first load; made in place it costs a fraction (bench/bench_ipset.py).
Past SMALL_CHANGE the swap is cheaper again, and it resizes the sets.
``ipset restore`` is not a transaction: the caller repairs a failed batch by
a swap in the same run.
"""

from __future__ import annotations

from collections.abc import Collection

from ts_isr.linux.names import Names
from ts_isr.targets.base import Members, Plan
from ts_isr.targets.ipset_lines import bucket_members, entry_lines

# Changes (additions plus removals) up to this fraction of the entries are made in place; more are
# swapped in as whole sets.  Measured at 200,000 entries: see docs/tsadmin.md.
SMALL_CHANGE = 0.3


def small_change(plan: Plan) -> bool:
    """Few enough changes to make in place rather than by swapping whole sets."""
    changes = sum(len(change.add) + len(change.remove) for change in plan.changes)
    total = sum(len(change.desired) for change in plan.changes)
    return 0 < changes <= SMALL_CHANGE * total


def render_delta(names: Names, plan: Plan, live: Collection[str]) -> str | None:
    """Every addition first, then every removal, so an entry replaced by a wider or narrower one is
    covered by one of them at every moment; None when an entry's set does not exist yet (the first
    IPv6 entry, say): only a swap creates sets."""
    adds, dels = [], []
    for change in plan.changes:
        for verb, cidrs, out in (("add", change.add, adds), ("del", change.remove, dels)):
            buckets = bucket_members(names, {change.kind: cidrs})
            for spec in names.sets:
                if buckets[spec.name]:
                    if spec.name not in live:
                        return None
                    out.append(entry_lines(verb, spec.name, spec, buckets[spec.name]))
    return "".join(adds + dels)


def installed_before(plan: Plan) -> Members:
    """What the sets held when ``plan`` was made (it adds what they lacked and removes what was too
    many), to put back when a change stops part-way."""
    return {
        change.kind: (frozenset(change.desired) - frozenset(change.add)) | frozenset(change.remove)
        for change in plan.changes
    }
