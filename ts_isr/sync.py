"""One upload run as pure decisions plus one orchestration function.

Decisions (pure, tested without I/O): the plan with the never-empty
placeholder, the shrink guard, and what still differs after a push.
:func:`synchronise` wires them to a Target, the ownership records and the
unsaved marker (a change whose ``write memory`` failed is saved by the next run).

Ownership: the tool removes only members it put in a group itself, recorded
per device and group in ``state_dir`` (``exclusive_groups=yes`` lets it
remove anything, and the record is kept all the same: while it holds
members, the group stays managed even after its list leaves the config).
The record holds only what the tool has seen arrive: before a push, the
members it is about to add (each absent from the group as read) go to a
pending journal beside the record; the read-back after the push moves those
it shows into the record and drops the journal.  A run that dies before its
read-back leaves the journal, and the next run claims from it exactly the
members its own read shows present.  A member that was in the group before
the push is never in the journal, and a read that ended early (a prompt
inside the output, a bound broken) fails the run before anything is recorded.

The placeholder: a group used by an ACL may never be emptied, so a group
that would be left with no member at all holds ``192.0.2.255/32`` instead.
That address is in TEST-NET-1 (RFC 5737, documentation only, never routed on
the Internet): blocking or allowing it changes nothing.  A group of IPv6
entries alone (IOS ``object-group v6-network``, which IOS-XE deletes by itself
once empty) holds ``2001:db8::ff/128`` instead, from the IPv6 documentation
prefix (RFC 3849, never routed either).  The tool owns it and removes it as
soon as the group has a real member again.

Groups are named per slot (:func:`ts_isr.targets.base.slot`): a list and,
where the device needs a group per family, the family (``block_v6``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ts_isr.errors import DeviceError, Exit, TsError
from ts_isr.files import write_atomic
from ts_isr.log import log
from ts_isr.policy import Policy, count_by_family, parse_token, parse_v4, parse_v6
from ts_isr.ranges import Cidr
from ts_isr.targets.base import ListChange, Members, Plan, Target, list_of, plan_changes

PLACEHOLDER = Cidr(4, *parse_v4("192.0.2.255"))  # type: ignore[misc]
PLACEHOLDER_V6 = Cidr(6, *parse_v6("2001:db8::ff", family_prefix=False))  # type: ignore[misc]
PLACEHOLDERS = frozenset({PLACEHOLDER, PLACEHOLDER_V6})


def placeholder_for(families: frozenset[int]) -> Cidr:
    """The placeholder a group of ``families`` can hold: IPv6 for an IPv6-only group."""
    return PLACEHOLDER_V6 if families == {6} else PLACEHOLDER


def with_placeholder(
    plan: Plan, installed: Members, kinds: Iterable[str], placeholder: Cidr = PLACEHOLDER
) -> Plan:
    """The plan, changed so that no managed group ends up empty (see the module's docstring)."""
    changes = []
    for change in plan.changes:
        if change.kind in kinds:
            after = change.applied_to(installed.get(change.kind, frozenset()))
            if not after:
                have = installed.get(change.kind, frozenset())
                change = replace(
                    change,
                    add=change.add if placeholder in have else (*change.add, placeholder),
                    remove=tuple(c for c in change.remove if c != placeholder),
                )
            elif (
                len(after) > 1
                and placeholder in after
                and placeholder not in change.desired
                and placeholder in installed.get(change.kind, frozenset())
            ):
                change = replace(change, remove=tuple(sorted({*change.remove, placeholder})))
        changes.append(change)
    return Plan(tuple(changes))


class ShrinkRefused(TsError):
    """The block list lost more than ``max_shrink`` of the group: more likely a broken feed than a policy."""

    kind = "shrink_refused"


def check_shrink(change: ListChange, installed: frozenset[Cidr], max_shrink: float, force: bool) -> None:
    if force or not installed:
        return
    fraction = len(frozenset(change.remove) - PLACEHOLDERS) / len(installed)
    if fraction > max_shrink:
        after = len(change.applied_to(installed))
        raise ShrinkRefused(
            f"the {change.kind} list would shrink the device's group from {len(installed)} to {after} "
            f"entries ({fraction:.0%} removed, more than max_shrink={max_shrink:.0%}); nothing was changed. "
            "If the policy really shrank, run once with --force"
        )


def remainder(expected: Members, actual: Members, kinds: Iterable[str]) -> Plan:
    """What still differs after a push: the additions and removals to try once more."""
    changes = []
    for kind in kinds:
        want, have = expected.get(kind, frozenset()), actual.get(kind, frozenset())
        changes.append(ListChange(kind, want, tuple(sorted(want - have)), tuple(sorted(have - want))))
    return Plan(tuple(changes))


class OwnershipStore:
    """Which members the tool put in each group, one file per device and group in ``state_dir``."""

    def __init__(self, state_dir: Path, device: str) -> None:
        self.state_dir = state_dir
        self.device = device

    def path(self, group: str) -> Path:
        return self.state_dir / f"owned-{self.device}-{group}.txt"

    def pending_path(self, group: str) -> Path:
        """The journal of a push under way: members it adds, not the tool's until seen on the device."""
        return self.state_dir / f"pending-{self.device}-{group}.txt"

    def load(self, group: str) -> frozenset[Cidr]:
        """The recorded members; an unparsable line is dropped (that only makes the tool keep more)."""
        return self._load(self.path(group))

    def load_pending(self, group: str) -> frozenset[Cidr]:
        return self._load(self.pending_path(group))

    def save_pending(self, group: str, added: Iterable[Cidr]) -> None:
        write_atomic(self.pending_path(group), "".join(f"{cidr}\n" for cidr in sorted(added)))

    def clear_pending(self, group: str) -> None:
        self.pending_path(group).unlink(missing_ok=True)

    def _load(self, path: Path) -> frozenset[Cidr]:
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            return frozenset()
        except (OSError, UnicodeDecodeError) as exc:
            raise DeviceError(f"cannot read {path} ({exc}); fix or delete the file") from None
        parsed = (parse_token(line, family_prefix=False) for line in text.split())
        return frozenset(cidr for cidr in parsed if cidr is not None)

    def save(self, group: str, owned: Iterable[Cidr]) -> None:
        """Atomic, so a crash leaves the old record or the new one, never half of one."""
        write_atomic(self.path(group), "".join(f"{cidr}\n" for cidr in sorted(owned)))

    @property
    def unsaved(self) -> Path:
        """Present while a change may be live but not saved (write memory failed or never ran)."""
        return self.state_dir / f"unsaved-{self.device}"


def save_running_config(target: Target, store: OwnershipStore) -> None:
    """``write memory``, marked beforehand so that a failed save is made up for by the next run,
    which otherwise would find nothing to change and never save."""
    write_atomic(store.unsaved, "the running configuration holds a change that is not saved yet\n")
    target.save()
    store.unsaved.unlink()


@dataclass(frozen=True)
class SyncOptions:
    groups: Mapping[str, str]  # slot (list, and family where it has its own group) -> group name
    exclusive: bool = False
    max_shrink: float = 0.5
    force: bool = False
    write_memory: bool = False
    record: bool = True  # False for a dry run: the ownership records stay as they are


@dataclass(frozen=True)
class SyncResult:
    """What one device's run did, as Nornir's ``Result`` carries one per host: for the summary,
    the metrics and the exit status."""

    changed: bool
    added: Mapping[str, int]  # list kind -> entries added
    removed: Mapping[str, int]
    members: Mapping[str, int]  # list kind -> members the group holds after the run
    added_ipv6: int = 0  # of all the additions, the IPv6 ones (a fleet's summary counts them apart)
    removed_ipv6: int = 0
    pushed: int = 0  # configuration lines the device took (its transport fills these in)
    resent: int = 0  # lines sent again because the device dropped them

    @property
    def exit(self) -> Exit:
        return Exit.CHANGED if self.changed else Exit.UNCHANGED


def _result(changed: bool, plan: Plan, held: Members) -> SyncResult:
    return SyncResult(
        changed,
        {c.kind: len(c.add) for c in plan.changes},
        {c.kind: len(c.remove) for c in plan.changes},
        {kind: len(members) for kind, members in held.items()},
        sum(1 for c in plan.changes for cidr in c.add if cidr.family == 6),
        sum(1 for c in plan.changes for cidr in c.remove if cidr.family == 6),
    )


def log_counts(change: ListChange, installed: frozenset[Cidr]) -> None:
    """The seed's three lines; where both families are counted, each count says its IPv4 and IPv6."""
    name = list_of(change.kind) + (" IPv6" if change.kind != list_of(change.kind) else "")
    active = count_by_family(change.desired & installed)
    log.info(f"{active} items are still active in the ThreatSTOP {name} list.")
    log.info(f"{count_by_family(change.add)} items are new in the ThreatSTOP {name} list.")
    log.info(f"{count_by_family(change.remove)} items are old and will be removed.")


def log_skipped(target: Target, policy: Policy, kinds: Iterable[str]) -> None:
    """One line per list whose entries of some family no managed group takes, saying why."""
    held: dict[str, set[int]] = {}
    for kind in kinds:
        held.setdefault(list_of(kind), set()).update(target.slot_families(kind))
    for name, families in held.items():
        skipped = sum(1 for cidr in getattr(policy, name) if cidr.family not in families)
        if skipped:
            log.info(f"{skipped} IPv6 entries of the {name} list skipped: {target.why_skipped(name)}.")


def claim_pending(
    store: OwnershipStore, group: str, recorded: frozenset[Cidr], present: frozenset[Cidr]
) -> frozenset[Cidr]:
    """The record, with what a run that died before its read-back added and this read shows present."""
    pending = store.load_pending(group)
    if not pending and not store.pending_path(group).exists():
        return recorded
    claimed = pending & present
    if claimed - recorded:
        log.info(
            f'{len(claimed - recorded)} members of "{group}" an unfinished run added are recorded as its own.'
        )
    recorded = recorded | claimed
    store.save(group, recorded)
    store.clear_pending(group)
    return recorded


def push_and_verify(
    target: Target,
    plan: Plan,
    store: OwnershipStore,
    options: SyncOptions,
    recorded: dict[str, frozenset[Cidr]],
    additions: Mapping[str, frozenset[Cidr]],
) -> Members:
    """Apply ``plan`` and read the device back; the additions it shows become the tool's in ``recorded``.

    Only the run's own additions (absent as read, see ``additions``) are
    journalled, so a member the user held already is never claimed.
    """
    journal = {c.kind: frozenset(c.add) & additions[c.kind] for c in plan.changes}
    if options.record:
        for kind, added in journal.items():
            store.save_pending(options.groups[kind], added)
    target.apply(plan)
    actual = target.read()
    if options.record:
        for kind, added in journal.items():
            recorded[kind] |= added & actual.get(kind, frozenset())
            store.save(options.groups[kind], recorded[kind])
            store.clear_pending(options.groups[kind])
    return actual


def synchronise(target: Target, policy: Policy, store: OwnershipStore, options: SyncOptions) -> SyncResult:
    """Read, plan, guard, push, verify (retrying the remainder once), save; say what changed."""
    kinds = tuple(options.groups)
    recorded = {kind: store.load(options.groups[kind]) for kind in kinds}
    log_skipped(target, policy, kinds)
    installed: dict[str, frozenset[Cidr]] = {}
    # What the tool may remove: what it put there, unless a user's line holds it too.
    owned: dict[str, frozenset[Cidr]] | None = None if options.exclusive else {}
    changes = []
    for kind in kinds:  # the seed's order: each group read, then its counts
        installed[kind] = target.read_kind(kind)
        if options.record:
            recorded[kind] = claim_pending(store, options.groups[kind], recorded[kind], installed[kind])
        if owned is not None:
            owned[kind] = recorded[kind] - target.held_by_user(kind)
        families = target.slot_families(kind)
        change = plan_changes(installed, policy, families, owned, kinds=(kind,)).change(kind)
        placeholder = placeholder_for(families)
        change = with_placeholder(Plan((change,)), installed, (kind,), placeholder).change(kind)
        log_counts(change, installed[kind])
        if owned is not None:
            users = installed[kind] - owned[kind] - change.desired - PLACEHOLDERS
            if users:
                log.info(
                    f'{len(users)} addresses in "{options.groups[kind]}" were not put there by this '
                    "tool and stay (exclusive_groups=yes gives the tool the whole group)."
                )
        changes.append(change)
    plan = Plan(tuple(changes))
    if "block" in kinds:
        check_shrink(plan.change("block"), installed["block"], options.max_shrink, options.force)
    if plan.unchanged:
        log.info("The device already holds the policy: nothing to change.")
        if not (options.write_memory and options.record and store.unsaved.exists()):
            return _result(False, plan, installed)
        log.info("An earlier change was not saved; saving it now.")
        save_running_config(target, store)
        return _result(True, plan, installed)
    expected = {c.kind: c.applied_to(installed[c.kind]) for c in plan.changes}
    additions = {c.kind: frozenset(c.add) for c in plan.changes}
    actual = push_and_verify(target, plan, store, options, recorded, additions)
    retry = remainder(expected, actual, kinds)
    if not retry.unchanged:
        log.warning("The device does not hold everything yet; sending the remainder once more.")
        actual = push_and_verify(target, retry, store, options, recorded, additions)
        retry = remainder(expected, actual, kinds)
        if not retry.unchanged:
            missing = sum(len(c.add) for c in retry.changes)
            extra = sum(len(c.remove) for c in retry.changes)
            raise DeviceError(
                f"after a retry the device's groups still differ from the policy ({missing} missing, "
                f"{extra} not removed); see the refused lines above and tsoutput.log, "
                "fix the cause and run again"
            )
    if options.record:
        for change in plan.changes:
            store.save(options.groups[change.kind], change.applied_to(recorded[change.kind]))
    if options.write_memory and options.record:
        save_running_config(target, store)
    return _result(True, plan, actual)
