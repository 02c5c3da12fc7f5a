"""Linux ipsets as a :class:`~ts_isr.targets.base.Target`: one ``ipset restore`` batch per update.

An update fills a ``...new`` twin of every set and swaps it with the live one,
create, add, swap and destroy in ONE batch on stdin: the live sets are never
empty or half-filled, and the kernel sees each swap as a single step.  Entries
are rendered only from parsed :class:`~ts_isr.ranges.Cidr` objects, and what
``ipset save`` prints is parsed strictly before it is trusted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ts_isr.errors import DeviceError
from ts_isr.linux.names import Names, SetName
from ts_isr.linux.system import run_tool
from ts_isr.log import escape, log
from ts_isr.policy import Policy, parse_v4, parse_v6
from ts_isr.ranges import BITS, Cidr
from ts_isr.sysconf import write_atomic
from ts_isr.targets.base import KINDS, Members, Plan, Target

Runner = Callable[..., str]
MIN_MAXELEM = 65536
MIN_HASHSIZE = 1024
_CREATE = re.compile(r"create (\S+) (hash:ip|hash:net) family (inet6?) (.*)")
_ADD = re.compile(r"add (\S+) (\S+)")


@dataclass
class SetState:
    """One set as ``ipset save`` shows it: its type, family and members."""

    hash_type: str
    family: int
    members: set[Cidr] = field(default_factory=set)


def parse_entry(text: str, family: int) -> Cidr:
    """One member as ipset prints it (``a.b.c.d[/len]`` or IPv6), strictly."""
    parsed = parse_v4(text) if family == 4 else parse_v6(text)
    if parsed is None or text[:2] in ("1:", "2:"):
        raise DeviceError(f"ipset printed a member that is not an address: {escape(text, 80)}")
    return Cidr(family, *parsed)


def parse_save(text: str, ours: frozenset[str]) -> dict[str, SetState]:
    """Our sets from ``ipset save`` output; other sets are the host's and are skipped, unread."""
    sets: dict[str, SetState] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split(" ", 2)
        if len(words) < 2 or words[1] not in ours:
            continue
        create = _CREATE.fullmatch(line)
        add = _ADD.fullmatch(line)
        if create:
            family = 6 if create.group(3) == "inet6" else 4
            sets[create.group(1)] = SetState(create.group(2), family)
        elif add and add.group(1) in sets:
            state = sets[add.group(1)]
            state.members.add(parse_entry(add.group(2), state.family))
        else:
            raise DeviceError(
                f"ipset save line {number} is not what tsadmin writes: {escape(line, 120)}; "
                f"someone changed the set by hand: run tsadmin remove, then tsadmin add"
            )
    return sets


def members_of(sets: dict[str, SetState], names: Names) -> Members:
    """What each list holds: the union of its address and network sets of both families."""
    held: dict[str, set[Cidr]] = {kind: set() for kind in KINDS}
    for spec in names.sets:
        if spec.name in sets:
            held[spec.kind] |= sets[spec.name].members
    return {kind: frozenset(members) for kind, members in held.items()}


def split_members(spec: SetName, desired: Iterable[Cidr]) -> list[Cidr]:
    """The members that belong in one set: single hosts in ``hash:ip``, networks in ``hash:net``."""
    want_host = spec.hash_type == "hash:ip"
    return sorted(
        c for c in desired if c.family == spec.family and (c.prefixlen == BITS[c.family]) == want_host
    )


def set_size(count: int) -> tuple[int, int]:
    """(hashsize, maxelem) for ``count`` members: room to spare, so the set is never "full"."""
    maxelem = max(MIN_MAXELEM, 1 << (count * 2 - 1).bit_length()) if count else MIN_MAXELEM
    hashsize = max(MIN_HASHSIZE, 1 << max(count - 1, 1).bit_length())
    return hashsize, maxelem


def families_in_use(desired: Members, live: Iterable[str], names: Names) -> tuple[int, ...]:
    """IPv4 always; IPv6 once the policy has had IPv6 (its sets then stay until ``remove``)."""
    has_v6 = any(c.family == 6 for members in desired.values() for c in members)
    v6_live = any(spec.name in live for spec in names.family_sets(6))
    return (4, 6) if has_v6 or v6_live else (4,)


def render_restore(names: Names, desired: Members, live: Iterable[str], families: Iterable[int]) -> str:
    """The whole update as one batch: fill every twin, then swap them all, then destroy the twins.

    A live set that does not exist yet is created empty first so that it can
    be swapped; the twins are new names, so nothing live is touched until the swaps.
    """
    live = set(live)
    chosen = [spec for spec in names.sets if spec.family in families]
    lines: list[str] = []
    for spec in chosen:
        members = split_members(spec, desired.get(spec.kind, ()))
        hashsize, maxelem = set_size(len(members))
        options = f"{spec.hash_type} family {spec.ipset_family} hashsize {hashsize} maxelem {maxelem}"
        if spec.name not in live:
            lines.append(f"create {spec.name} {options}")
        lines.append(f"create {spec.new} {options}")
        if spec.hash_type == "hash:ip":
            lines.extend(f"add {spec.new} {c.address_text()}" for c in members)
        else:
            lines.extend(f"add {spec.new} {c}" for c in members)
    lines.extend(f"swap {spec.new} {spec.name}" for spec in chosen)
    lines.extend(f"destroy {spec.new}" for spec in chosen)
    return "\n".join(lines) + "\n"


def render_destroy(names: Iterable[str]) -> str:
    return "".join(f"destroy {name}\n" for name in names)


class IpsetTarget(Target):
    """The policy in the host's (or the current network namespace's) ipsets."""

    def __init__(self, names: Names, run: Runner = run_tool) -> None:
        self.names = names
        self.run = run
        self.sets: dict[str, SetState] = {}

    def read(self) -> Members:
        """Read our sets back (and note leftover twins of an interrupted run)."""
        text = self.run(["ipset", "save"])
        self.sets = parse_save(text, self.names.all_set_names())
        return members_of(self.sets, self.names)

    def live_sets(self) -> set[str]:
        return {spec.name for spec in self.names.sets if spec.name in self.sets}

    def complete(self, desired: Members) -> bool:
        """Every set the policy needs exists: otherwise even an unchanged plan must run."""
        families = families_in_use(desired, self.live_sets(), self.names)
        live = self.live_sets()
        return all(spec.name in live for spec in self.names.sets if spec.family in families)

    def apply(self, plan: Plan) -> None:
        desired = {change.kind: change.desired for change in plan.changes}
        leftovers = [spec.new for spec in self.names.sets if spec.new in self.sets]
        if leftovers:
            log.info(f"Removing {len(leftovers)} set(s) left by an interrupted run: {', '.join(leftovers)}")
            self.run(["ipset", "restore"], render_destroy(leftovers))
        live = self.live_sets()
        families = families_in_use(desired, live, self.names)
        batch = render_restore(self.names, desired, live, families)
        try:
            self.run(["ipset", "restore"], batch)
        except DeviceError:
            self._destroy_twins()
            raise
        for change in plan.changes:
            log.info(
                f"{change.kind} list: {len(change.desired)} entries "
                f"(+{len(change.add)} -{len(change.remove)}) swapped in"
            )
        self.read()

    def _destroy_twins(self) -> None:
        """After a failed batch: the live sets are untouched; take away the half-filled twins."""
        present = self.present()
        twins = [spec.new for spec in self.names.sets if spec.new in present]
        if twins:
            self.run(["ipset", "restore"], render_destroy(twins))

    def save_state(self, path: Path) -> None:
        """Our live sets, for the boot-time restore (written atomically, mode 0600)."""
        text = "".join(self.run(["ipset", "save", name]) for name in sorted(self.live_sets()))
        write_atomic(path, text)

    def present(self) -> list[str]:
        """Every set of ours that exists now, live or twin."""
        return sorted(self.names.all_set_names() & set(self.run(["ipset", "list", "-n"]).split()))

    @staticmethod
    def load_state(path: Path, names: Names) -> Policy | None:
        """The policy saved by the last good update, parsed as strictly as a live read; None if absent."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            log.warning(f"no saved state {path}: the sets start empty until tsadmin update")
            return None
        held = members_of(parse_save(text, names.all_set_names()), names)
        return Policy(tuple(sorted(held["block"])), tuple(sorted(held["allow"])))

    def flush_all(self) -> None:
        """Step 1 of the seed's removal: empty every set tsadmin created."""
        mine = self.present()
        if mine:
            self.run(["ipset", "restore"], "".join(f"flush {name}\n" for name in mine))

    def destroy_all(self) -> None:
        """Step 3 of the seed's removal, once no rule refers to the sets any more."""
        mine = self.present()
        if mine:
            self.run(["ipset", "restore"], render_destroy(mine))
