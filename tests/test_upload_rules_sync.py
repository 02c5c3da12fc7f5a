"""ts_isr.sync: the placeholder, the shrink guard, ownership and the retry, as pure decisions."""

from __future__ import annotations

import pytest

from ts_isr.errors import DeviceError, Exit
from ts_isr.policy import Policy, parse_token
from ts_isr.sync import (
    PLACEHOLDER,
    OwnershipStore,
    ShrinkRefused,
    SyncOptions,
    check_shrink,
    remainder,
    synchronise,
    with_placeholder,
)
from ts_isr.targets.base import Plan, Target, plan_changes

V4 = frozenset({4})


def cidrs(*tokens):
    return frozenset(parse_token(t) for t in tokens)


def test_placeholder_keeps_a_group_from_emptying_and_goes_when_members_come():
    installed = {"block": cidrs("192.0.2.1")}
    plan = plan_changes(installed, Policy((), ()), V4, owned={"block": cidrs("192.0.2.1")})
    plan = with_placeholder(Plan((plan.change("block"),)), installed, ["block"])
    assert plan.change("block").add == (PLACEHOLDER,)
    installed = {"block": frozenset({PLACEHOLDER})}
    again = plan_changes(installed, Policy((), ()), V4, owned={"block": frozenset({PLACEHOLDER})})
    assert with_placeholder(Plan((again.change("block"),)), installed, ["block"]).unchanged
    policy = Policy(tuple(cidrs("198.51.100.1")), ())
    filled = plan_changes(installed, policy, V4, owned={"block": frozenset()})
    filled = with_placeholder(Plan((filled.change("block"),)), installed, ["block"])
    assert filled.change("block").remove == (PLACEHOLDER,)


def test_shrink_guard():
    installed = cidrs("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4")
    change = plan_changes({"block": installed}, Policy(tuple(cidrs("192.0.2.1")), ()), V4).change("block")
    with pytest.raises(ShrinkRefused, match=r"from 4 to 1 entries.*--force"):
        check_shrink(change, installed, 0.5, force=False)
    check_shrink(change, installed, 0.5, force=True)
    check_shrink(change, installed, 0.8, force=False)


def test_remainder_and_ownership_store(tmp_path):
    expected = {"block": cidrs("192.0.2.1", "192.0.2.2")}
    retry = remainder(expected, {"block": cidrs("192.0.2.2", "192.0.2.9")}, ["block"])
    assert retry.change("block").add == tuple(cidrs("192.0.2.1")) and retry.change("block").remove == tuple(
        cidrs("192.0.2.9")
    )
    store = OwnershipStore(tmp_path / "state", "192.0.2.7-22")
    assert store.load("TS") == frozenset()
    store.save("TS", cidrs("192.0.2.1", "10.0.0.0/8"))
    assert store.load("TS") == cidrs("192.0.2.1", "10.0.0.0/8")


class MemoryTarget(Target):
    """A device whose pushes lose the first ``flaky`` additions: what a dropped line looks like."""

    families = V4

    def __init__(self, members, flaky: int = 0) -> None:
        self.members = {kind: set(cidrs) for kind, cidrs in members.items()}
        self.flaky = flaky
        self.applied = 0

    def read(self):
        return {kind: frozenset(cidrs) for kind, cidrs in self.members.items()}

    def apply(self, plan):
        self.applied += 1
        for change in plan.changes:
            group = self.members.setdefault(change.kind, set())
            for cidr in change.add:
                if self.flaky:
                    self.flaky -= 1
                    continue
                group.add(cidr)
            group.difference_update(change.remove)


def test_synchronise_keeps_users_members_retries_once_and_records_ownership(tmp_path):
    store = OwnershipStore(tmp_path, "dev")
    target = MemoryTarget({"block": cidrs("10.9.9.9")}, flaky=1)
    options = SyncOptions(groups={"block": "TS"})
    policy = Policy(tuple(sorted(cidrs("192.0.2.1", "192.0.2.2"))), ())
    first = synchronise(target, policy, store, options)
    assert (first.exit, first.added, first.removed, first.members) == (
        Exit.CHANGED,
        {"block": 2},
        {"block": 0},
        {"block": 3},
    )
    assert target.applied == 2 and target.members["block"] == set(cidrs("10.9.9.9", "192.0.2.1", "192.0.2.2"))
    assert store.load("TS") == cidrs("192.0.2.1", "192.0.2.2")
    assert synchronise(target, policy, store, options).exit == Exit.UNCHANGED and target.applied == 2
    smaller = Policy(tuple(cidrs("192.0.2.2")), ())
    shrunk = synchronise(target, smaller, store, options)
    assert (shrunk.exit, shrunk.removed, shrunk.members) == (Exit.CHANGED, {"block": 1}, {"block": 2})
    assert target.members["block"] == set(cidrs("10.9.9.9", "192.0.2.2"))


def test_synchronise_fails_loudly_when_the_retry_does_not_help(tmp_path):
    target = MemoryTarget({"block": set()}, flaky=10)
    policy = Policy(tuple(sorted(cidrs("192.0.2.1", "192.0.2.2"))), ())
    with pytest.raises(DeviceError, match="2 missing"):
        synchronise(target, policy, OwnershipStore(tmp_path, "dev"), SyncOptions(groups={"block": "TS"}))


class UnsavableOnce(MemoryTarget):
    """A device whose first `write memory` fails, as a full flash or a busy NVRAM does."""

    def __init__(self, members) -> None:
        super().__init__(members)
        self.saves = 0

    def save(self):
        self.saves += 1
        if self.saves == 1:
            raise DeviceError("write memory failed")


def test_a_failed_save_is_made_up_for_by_the_next_run(tmp_path):
    """Review item 14: the next run finds nothing to change, and must still save."""
    store = OwnershipStore(tmp_path, "dev")
    target = UnsavableOnce({"block": set()})
    options = SyncOptions(groups={"block": "TS"}, write_memory=True)
    policy = Policy(tuple(cidrs("192.0.2.1")), ())
    with pytest.raises(DeviceError, match="write memory failed"):
        synchronise(target, policy, store, options)
    assert store.unsaved.exists()
    assert synchronise(target, policy, store, options).exit == Exit.CHANGED
    assert target.saves == 2 and not store.unsaved.exists()
    assert synchronise(target, policy, store, options).exit == Exit.UNCHANGED and target.saves == 2
    dry = SyncOptions(groups={"block": "TS"}, write_memory=True, record=False)
    store.unsaved.write_text("")
    assert synchronise(target, policy, store, dry).exit == Exit.UNCHANGED and target.saves == 2, (
        "a dry run saves nothing"
    )


class Hiding(MemoryTarget):
    """A device whose every read leaves out ``hidden`` members, as a fake prompt inside the output did."""

    def __init__(self, members, hidden) -> None:
        super().__init__(members)
        self.hidden = frozenset(hidden)

    def read(self):
        return {kind: frozenset(cidrs) - self.hidden for kind, cidrs in self.members.items()}


def test_members_a_read_hid_are_never_recorded_as_the_tools(tmp_path):
    """Issue 16: the record was widened before the push, so the user's hidden members became the tool's."""
    users = cidrs("192.0.2.1")  # the user's own line, also in the policy, hidden by every read
    target = Hiding({"block": set(users)}, hidden=users)
    store = OwnershipStore(tmp_path, "dev")
    policy = Policy(tuple(sorted(cidrs("192.0.2.1", "192.0.2.2"))), ())
    with pytest.raises(DeviceError, match="1 missing"):
        synchronise(target, policy, store, SyncOptions(groups={"block": "TS"}))
    assert store.load("TS") == cidrs("192.0.2.2"), "only what a read-back showed arriving"
    assert not store.pending_path("TS").exists()


class DiesMidPush(MemoryTarget):
    """A device whose connection drops after ``survive`` additions of the next push."""

    def __init__(self, members, survive: int) -> None:
        super().__init__(members)
        self.survive = survive

    def apply(self, plan):
        if self.survive is None:
            return super().apply(plan)
        group = self.members.setdefault("block", set())
        for cidr in plan.change("block").add[: self.survive]:
            group.add(cidr)
        self.survive = None
        raise DeviceError("connection lost")


def test_a_run_that_dies_mid_push_lets_the_next_claim_exactly_what_it_added(tmp_path):
    users = cidrs("10.9.9.9", "192.0.2.9")  # 192.0.2.9 is in the policy too: present before, never claimed
    target = DiesMidPush({"block": set(users)}, survive=1)
    store, options = OwnershipStore(tmp_path, "dev"), SyncOptions(groups={"block": "TS"})
    policy = Policy(tuple(sorted(cidrs("192.0.2.1", "192.0.2.2", "192.0.2.9"))), ())
    with pytest.raises(DeviceError, match="connection lost"):
        synchronise(target, policy, store, options)
    assert store.load("TS") == frozenset() and store.load_pending("TS") == cidrs("192.0.2.1", "192.0.2.2")
    assert synchronise(target, policy, store, options).exit == Exit.CHANGED
    assert store.load("TS") == cidrs("192.0.2.1", "192.0.2.2") and not store.pending_path("TS").exists()
    assert synchronise(target, Policy(tuple(cidrs("198.51.100.1")), ()), store, options).exit == Exit.CHANGED
    assert target.members["block"] == set(users | cidrs("198.51.100.1")), "the user's members stay"
