"""Small changes to live ipsets in place: one ``ipset -exist restore`` batch of additions, then removals.

A 1% change of a 200,000-entry policy swapped in as whole sets costs as much
as a first load; made in place it costs a fraction (bench/bench_ipset.py).
Past SMALL_CHANGE the swap is cheaper again, and it resizes the sets.
``ipset restore`` is not a transaction: the caller repairs a failed batch by
a swap in the same run.  The boot state after such a change is the one before
it, patched with the same lines.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import filterfalse

from ts_isr.linux.names import Names
from ts_isr.targets.base import Members, Plan
from ts_isr.targets.ipset_lines import bucket_members, entry_lines
from ts_isr.targets.ipset_record import Record, render_record

# Changes (additions plus removals) up to this fraction of the entries are made in place; more are
# swapped in as whole sets.  Measured at 200,000 entries: see docs/tsadmin.md.
SMALL_CHANGE = 0.3


def small_change(plan: Plan) -> bool:
    """Few enough changes to make in place rather than by swapping whole sets."""
    changes = sum(len(change.add) + len(change.remove) for change in plan.changes)
    total = sum(len(change.desired) for change in plan.changes)
    return 0 < changes <= SMALL_CHANGE * total


def changed_lines(names: Names, plan: Plan, verb: str, side: str) -> dict[str, str]:
    """Each set's ``<verb> <set> <entry>`` lines for the plan's additions (``side`` "add") or
    removals ("remove"); sets without any are left out."""
    specs = {spec.name: spec for spec in names.sets}
    lines: dict[str, str] = {}
    for change in plan.changes:
        for name, members in bucket_members(names, {change.kind: getattr(change, side)}).items():
            if members:
                lines[name] = entry_lines(verb, name, specs[name], members)
    return lines


def render_delta(names: Names, plan: Plan, live: Collection[str]) -> str | None:
    """Every addition first, then every removal, so an entry replaced by a wider or narrower one is
    covered by one of them at every moment; None when an entry's set does not exist yet (the first
    IPv6 entry, say): only a swap creates sets."""
    adds = changed_lines(names, plan, "add", "add")
    dels = changed_lines(names, plan, "del", "remove")
    if any(name not in live for name in adds.keys() | dels.keys()):
        return None
    return "".join(adds.values()) + "".join(dels.values())


def patched_state(saved: str, before: Record, plan: Plan, names: Names) -> str | None:
    """The boot state after a change in place, made from the one it started from (under ``before``,
    the record that vouched for the sets): each removed entry's line out, each added one's in, in
    a tenth of the time ``ipset save`` takes (0.2 s at 200,000 entries).  Returned without a record
    line; None unless it adds up: the saved state is still the one ``before`` heads, it holds as
    many entries as recorded, every removed entry's line is in it once, and every set that gains
    entries is created in it."""
    head, _, body = saved.partition("\n")
    framed = "\n" + body
    if head + "\n" != render_record(before) or framed.count("\nadd ") != before.entries:
        return None
    added = changed_lines(names, plan, "add", "add")
    if not body.endswith("\n") or any(f"\ncreate {name} " not in framed for name in added):
        return None
    removed = {
        line for text in changed_lines(names, plan, "add", "remove").values() for line in text.splitlines()
    }
    lines = body.split("\n")  # the last one empty: the body ends with a newline
    kept = list(filterfalse(removed.__contains__, lines))
    if len(lines) - len(kept) != len(removed):
        return None
    return "\n".join(kept) + "".join(added.values())


def installed_before(plan: Plan) -> Members:
    """What the sets held when ``plan`` was made (it adds what they lacked and removes what was too
    many), to put back when a change stops part-way."""
    return {
        change.kind: (frozenset(change.desired) - frozenset(change.add)) | frozenset(change.remove)
        for change in plan.changes
    }
