"""Linux ipsets as a :class:`~ts_isr.targets.base.Target`: one ``ipset restore`` batch per update.

An update fills a ``...new`` twin of every set and swaps it with the live one,
create, add, swap and destroy in ONE batch on stdin: the live sets are never
empty or half-filled, and the kernel sees each swap as a single step.
``ipset restore`` runs its lines one by one, so the swaps of different sets
are separate steps: the only way one of them fails (a live set of another
type or family) is checked before the batch starts, so either no set is
swapped or all are.  Entries
are rendered only from parsed :class:`~ts_isr.ranges.Cidr` objects, and what
``ipset save`` prints is parsed strictly before it is trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ts_isr.errors import DeviceError
from ts_isr.files import write_atomic
from ts_isr.linux.names import Names, SetName
from ts_isr.linux.system import run_tool, start_tool, stream_tool
from ts_isr.log import log
from ts_isr.policy import Policy
from ts_isr.ranges import Cidr
from ts_isr.targets.base import KINDS, Members, Plan, Target
from ts_isr.targets.ipset_delta import installed_before, patched_state, render_delta, small_change
from ts_isr.targets.ipset_lines import bucket_members, entry_lines
from ts_isr.targets.ipset_record import (
    RECORD_PREFIX,
    Record,
    SetHeader,
    parse_record,
    parse_terse,
    render_record,
)
from ts_isr.targets.ipset_saved import SetState, members_of, parse_save

Runner = Callable[..., str]
Streamer = Callable[[list[str], Iterable[str]], None]
Starter = Callable[[list[str]], Callable[[], str]]
MIN_MAXELEM = 65536
MIN_HASHSIZE = 1024
CHUNK_LINES = 5000


def set_size(count: int) -> tuple[int, int]:
    """(hashsize, maxelem) for ``count`` members: room to spare, so the set is never "full"."""
    maxelem = max(MIN_MAXELEM, 1 << (count * 2 - 1).bit_length()) if count else MIN_MAXELEM
    hashsize = max(MIN_HASHSIZE, 1 << max(count - 1, 1).bit_length())
    return hashsize, maxelem


def families_in_use(buckets: dict[str, list[Cidr]], live: Iterable[str], names: Names) -> tuple[int, ...]:
    """IPv4 always; IPv6 once the policy has had IPv6 (its sets then stay until ``remove``)."""
    v6 = names.family_sets(6)
    return (4, 6) if any(buckets.get(s.name) or s.name in live for s in v6) else (4,)


def policy_of(members: Members) -> Policy:
    """Set members as a policy (sorted, as a fetched one is), to reinstall what is held."""
    return Policy(tuple(sorted(members["block"])), tuple(sorted(members["allow"])))


@dataclass
class Update:
    """One update as an ``ipset restore`` batch, rendered in chunks so that it can stream.

    The kernel loads the first chunks while the last ones are formatted.  The
    lines are kept as they go out, renamed to the live sets: they are the boot
    state (``ipset save`` form), so nothing is formatted twice.
    """

    names: Names
    buckets: dict[str, list[Cidr]]
    live: frozenset[str]
    families: tuple[int, ...]
    fill: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> list[SetName]:
        return [spec for spec in self.names.sets if spec.family in self.families]

    def chunks(self) -> Iterator[str]:
        """Missing live sets created empty, every twin filled, then all swaps, then the twins destroyed.

        The twins are new names: nothing live is touched until the swaps at the very end.
        """
        self.fill.clear()
        for spec in self.chosen:
            members = self.buckets[spec.name]
            hashsize, maxelem = set_size(len(members))
            options = f"{spec.hash_type} family {spec.ipset_family} hashsize {hashsize} maxelem {maxelem}"
            if spec.name not in self.live:
                yield f"create {spec.name} {options}\n"
            yield f"create {spec.new} {options}\n"
            self.fill.append(f"create {spec.name} {options}\n")
            for start in range(0, len(members), CHUNK_LINES):
                chunk = entry_lines("add", spec.new, spec, members[start : start + CHUNK_LINES])
                yield chunk
                # The same lines under the live name: the state is what `ipset save` would print.
                self.fill.append(chunk.replace(f"add {spec.new} ", f"add {spec.name} "))
        yield "".join(f"swap {spec.new} {spec.name}\n" for spec in self.chosen)
        yield "".join(f"destroy {spec.new}\n" for spec in self.chosen)

    @property
    def state(self) -> str:
        return "".join(self.fill)

    def sets(self) -> dict[str, SetState]:
        return {s.name: SetState(s.hash_type, s.family, self.buckets[s.name]) for s in self.chosen}


def render_update(names: Names, desired: Members, live: Iterable[str]) -> Update:
    buckets = bucket_members(names, desired)
    live = frozenset(live)
    return Update(names, buckets, live, families_in_use(buckets, live, names))


def state_members(text: str, names: Names) -> Members:
    """A saved state read back as strictly as a live read (``ipset save`` form of the live sets, under
    the record line)."""
    if text.startswith(RECORD_PREFIX):
        text = text.partition("\n")[2]
    return members_of(parse_save(text, frozenset(s.name for s in names.sets)), names)


def render_destroy(names: Iterable[str]) -> str:
    return "".join(f"destroy {name}\n" for name in names)


class IpsetTarget(Target):
    """The policy in the host's (or the current network namespace's) ipsets."""

    def __init__(
        self,
        names: Names,
        run: Runner = run_tool,
        stream: Streamer = stream_tool,
        start: Starter = start_tool,
    ) -> None:
        self.names = names
        self.run = run
        self.start = start
        self.stream = stream
        self.sets: dict[str, SetState] = {}
        self.state_text: str | None = None
        self.changed_in_place: Plan | None = None  # the last apply's change, when made in place

    def read(self) -> Members:
        """Read our sets back (and note leftover twins of an interrupted run)."""
        text = self.run(["ipset", "save"])
        self.sets = parse_save(text, self.names.all_set_names())
        return members_of(self.sets, self.names)

    def _take_headers(self, listing: str) -> dict[str, SetHeader]:
        """Our sets without their members (``ipset list -t``): what they are and how many they hold."""
        headers = parse_terse(listing, self.names.all_set_names())
        self.sets = {
            name: SetState(header.hash_type, header.family, None) for name, header in headers.items()
        }
        return headers

    def recorded(self, state: Path) -> Callable[[], Record | None]:
        """The check that the boot state's record holds, begun: ``ipset list -t`` starts now, on another
        core, and the returned call finishes the check (each list's entry count as recorded, and no
        twin left).  It costs a header listing, not a read of every entry; None means read them back."""
        try:
            with state.open(encoding="ascii") as handle:
                record = parse_record(handle.readline(200))
        except (OSError, UnicodeDecodeError):
            return lambda: None
        if record is None:
            return lambda: None
        listing = self.start(["ipset", "list", "-t"])

        def check() -> Record | None:
            try:
                headers = self._take_headers(listing())
            except DeviceError as exc:  # an ipset too old to count its entries, say: read them back
                log.warning(f"{exc}; reading the sets back instead")
                return None
            if any(spec.new in headers for spec in self.names.sets):
                return None
            counts = {kind: 0 for kind in KINDS}
            for spec in self.names.sets:
                if spec.name in headers:
                    counts[spec.kind] += headers[spec.name].entries
            return record if record.counted(counts) else None

        return check

    def live_sets(self) -> set[str]:
        return {spec.name for spec in self.names.sets if spec.name in self.sets}

    def complete(self, desired: Members) -> bool:
        """Every set the policy needs exists and no twin is left: otherwise even an unchanged plan runs."""
        if any(spec.new in self.sets for spec in self.names.sets):
            return False
        live = self.live_sets()
        families = families_in_use(bucket_members(self.names, desired), live, self.names)
        return all(spec.name in live for spec in self.names.sets if spec.family in families)

    def families_present(self) -> tuple[int, ...]:
        """The families whose sets exist: the chain is written for these."""
        return families_in_use({}, self.sets, self.names)

    def check_types(self, families: Iterable[int]) -> None:
        """A live set of our name but another type or family would refuse its swap: refuse first."""
        for spec in self.names.sets:
            live = self.sets.get(spec.name)
            if (
                spec.family in families
                and live
                and (live.hash_type, live.family) != (spec.hash_type, spec.family)
            ):
                raise DeviceError(
                    f"ipset {spec.name} exists as {live.hash_type} (IPv{live.family}) but tsadmin needs "
                    f"{spec.hash_type} (IPv{spec.family}): it is not tsadmin's; destroy or rename it, "
                    "or choose another --tsprefix; nothing was changed"
                )

    def apply(self, plan: Plan) -> None:
        leftovers = [spec.new for spec in self.names.sets if spec.new in self.sets]
        if leftovers:
            log.info(f"Removing {len(leftovers)} set(s) left by an interrupted run: {', '.join(leftovers)}")
            self.run(["ipset", "restore"], render_destroy(leftovers))
        present = self.families_present()
        whole = all(spec.name in self.sets for spec in self.names.sets if spec.family in present)
        in_place = whole and not leftovers and small_change(plan)
        delta = render_delta(self.names, plan, self.live_sets()) if in_place else None
        if delta is None:
            self._swap(plan)
            return
        self.check_types(self.families_present())
        try:
            self.run(["ipset", "-exist", "restore"], delta)
        except DeviceError as exc:
            # `ipset restore` is no transaction: part of the batch may be in. A swap puts it right.
            log.warning(f"{exc}; the in-place update stopped part-way: swapping in whole sets instead")
            self._swap(plan, restore=installed_before(plan))
            return
        self._applied(plan, None)

    def _swap(self, plan: Plan, restore: Members | None = None) -> None:
        """Whole sets filled as twins and swapped in; ``restore``: what to put back if that fails."""
        desired = {change.kind: change.desired for change in plan.changes}
        update = render_update(self.names, desired, self.live_sets())
        self.check_types(update.families)
        try:
            self.stream(["ipset", "restore"], update.chunks())
        except DeviceError:
            self._destroy_twins()
            if restore is not None:
                back = render_update(self.names, restore, self.live_sets())
                self.stream(["ipset", "restore"], back.chunks())
                self._destroy_twins()
            raise
        self._applied(plan, update)

    def _applied(self, plan: Plan, update: Update | None) -> None:
        """The batch succeeded as a whole: the sets hold what was planned, no need to read 200,000 back.

        ``update`` is the swap that was streamed, None for a change in place:
        then the sets are the same and their members are not known here.
        """
        how = "changed in place" if update is None else "swapped in"
        for change in plan.changes:
            log.info(
                f"{change.kind} list: {len(change.desired)} entries "
                f"(+{len(change.add)} -{len(change.remove)}) {how}"
            )
        if update is None:
            self.sets = {name: replace(state, members=None) for name, state in self.sets.items()}
            self.state_text = None
            self.changed_in_place = plan
        else:
            self.sets = update.sets()
            self.state_text = update.state
            self.changed_in_place = None

    def _destroy_twins(self) -> None:
        """After a failed batch: the live sets are untouched; take away the half-filled twins."""
        present = self.present()
        twins = [spec.new for spec in self.names.sets if spec.new in present]
        if twins:
            self.run(["ipset", "restore"], render_destroy(twins))

    def save_state(self, path: Path, record: Record | None, since: Record | None = None) -> None:
        """Our live sets, for the boot-time restore (written atomically, mode 0600), under the
        ``record`` of the policy they hold.  After a swap, its lines; after a change in place, the
        state at ``path`` patched with that change when ``since`` (the record that vouched for the
        sets before it) still heads it; else ``ipset save`` prints them (0.2 s at 200,000 entries:
        formatting them in Python would cost more)."""
        text = self.state_text
        if text is None and since is not None and self.changed_in_place is not None:
            text = self._patched(path, since, self.changed_in_place)
        if text is None:
            text = "".join(self.run(["ipset", "save", name]) for name in sorted(self.live_sets()))
        write_atomic(path, (render_record(record) if record else "") + text)

    def _patched(self, path: Path, since: Record, change: Plan) -> str | None:
        try:
            saved = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return None
        return patched_state(saved, since, change, self.names)

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
        return policy_of(state_members(text, names))

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
