"""The interface every place that holds a policy implements, and the pure plan of what to change.

IOS object-groups, ASA object-groups, Linux ipsets and the dry run differ in
how they read and write; what to add and what to remove is decided here, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import TracebackType

from ts_isr.policy import Policy
from ts_isr.ranges import Cidr
from ts_isr.sortedchanges import sorted_changes

KINDS = ("block", "allow")
V6_SLOT = "_v6"
Members = Mapping[str, frozenset[Cidr]]


def slot(kind: str, family: int | None = None) -> str:
    """The name of the place that holds list ``kind``: ``block`` for every family the target puts
    together, ``block_v6`` for a group of IPv6 entries alone (IOS ``object-group v6-network``)."""
    return kind + V6_SLOT if family == 6 else kind


def list_of(slot_name: str) -> str:
    """The policy list (``block`` or ``allow``) a slot holds entries of."""
    return slot_name.removesuffix(V6_SLOT)


@dataclass(frozen=True)
class ListChange:
    """The difference for one list (``block`` or ``allow``); additions and removals sorted by address.

    ``desired`` is a frozenset from :func:`plan_changes`, the policy's own sorted
    tuple from :func:`plan_from_previous`.
    """

    kind: str
    desired: Collection[Cidr]
    add: tuple[Cidr, ...]
    remove: tuple[Cidr, ...]

    def applied_to(self, members: frozenset[Cidr]) -> frozenset[Cidr]:
        """What a list holding ``members`` holds once this change is made."""
        return (members | frozenset(self.add)) - frozenset(self.remove)


@dataclass(frozen=True)
class Plan:
    changes: tuple[ListChange, ...]

    @property
    def unchanged(self) -> bool:
        return not any(change.add or change.remove for change in self.changes)

    def change(self, kind: str) -> ListChange:
        return next(change for change in self.changes if change.kind == kind)


ALL_FAMILIES = frozenset({4, 6})


def desired_members(policy: Policy, kind: str, families: frozenset[int]) -> frozenset[Cidr]:
    """The list's entries of ``families``; a place that takes both takes the list as it is (no
    per-entry test: 200,000 of them cost as much as the set itself)."""
    entries = getattr(policy, list_of(kind))
    if families >= ALL_FAMILIES:
        return frozenset(entries)
    return frozenset(c for c in entries if c.family in families)


def plan_changes(
    installed: Members,
    policy: Policy,
    families: frozenset[int],
    owned: Members | None = None,
    *,
    ordered: bool = True,
    kinds: tuple[str, ...] = KINDS,
) -> Plan:
    """What to add and remove so that each list holds the policy.

    ``owned`` is what the tool may remove (what it put there); ``None`` means
    the tool owns the whole list.  Anything else installed is the user's and
    stays.  ``ordered=False`` leaves additions and removals unsorted, for
    places without order (Linux hash sets), where sorting 200,000 entries
    costs more than loading them.  ``kinds`` limits the plan to those lists.
    """
    arrange = sorted if ordered else list
    changes = []
    for kind in kinds:
        want = desired_members(policy, kind, families)
        have = installed.get(kind, frozenset())
        gone = have - want
        removable = gone if owned is None else gone & owned.get(kind, frozenset())
        changes.append(ListChange(kind, want, tuple(arrange(want - have)), tuple(arrange(removable))))
    return Plan(tuple(changes))


def plan_from_previous(previous: Policy, policy: Policy) -> Plan:
    """What to add and remove where a place holds exactly ``previous`` (both lists, both families).

    Both policies are sorted: their difference is found without hashing 200,000
    entries twice (:mod:`ts_isr.sortedchanges`).
    """
    changes = []
    for kind in KINDS:
        before, after = getattr(previous, kind), getattr(policy, kind)
        add, remove = sorted_changes(before, after)
        changes.append(ListChange(kind, after, tuple(add), tuple(remove)))
    return Plan(tuple(changes))


class Target(ABC):
    """A place where a policy is installed: IOS or ASA object-groups, Linux ipsets, or a dry run."""

    #: Address families this place can hold (an old ASA, an IOS without IPv6 groups: IPv4 only).
    families: frozenset[int] = frozenset({4, 6})

    def slot_families(self, slot_name: str) -> frozenset[int]:
        """The families the place of ``slot_name`` holds (see :func:`slot`)."""
        return self.families & {6} if slot_name.endswith(V6_SLOT) else self.families

    def why_skipped(self, kind: str) -> str:
        """Why entries of list ``kind`` outside every slot's families are not installed, for the log."""
        return "this place holds IPv4 only"

    @abstractmethod
    def read(self) -> Members:
        """The members each list holds now, by kind."""

    def read_kind(self, kind: str) -> frozenset[Cidr]:
        """The members of one list; places that read each list apart read only that one."""
        return self.read().get(kind, frozenset())

    @abstractmethod
    def apply(self, plan: Plan) -> None:
        """Make each list hold ``change.desired``: additions before removals, never emptying a list."""

    def held_by_user(self, kind: str) -> frozenset[Cidr]:
        """Members of ``kind`` (as last read) that lines only the user writes also hold.

        The tool leaves them even where it added the same address itself:
        taking them out would delete the user's line.
        """
        return frozenset()

    def save(self) -> None:  # noqa: B027 - most places have nothing to save
        """Make the change survive a reboot, where the place distinguishes running and saved state."""

    def close(self) -> None:  # noqa: B027 - most places hold no connection
        """Release the connection, if any."""

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
