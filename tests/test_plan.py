"""The pure plan of changes: additions, removals, the user's own members."""

from ts_isr.policy import Policy, parse_token
from ts_isr.targets.base import plan_changes

V4 = frozenset({4})


def cidrs(*tokens):
    return frozenset(parse_token(t) for t in tokens)


def test_only_the_difference_and_users_members_stay():
    installed = {"block": cidrs("192.0.2.1", "192.0.2.2", "10.0.0.0/8"), "allow": frozenset()}
    owned = {"block": cidrs("192.0.2.1", "192.0.2.2")}
    policy = Policy(tuple(sorted(cidrs("192.0.2.2", "192.0.2.3"))), tuple(cidrs("198.51.100.7")))
    plan = plan_changes(installed, policy, V4, owned)
    block = plan.change("block")
    assert [str(c) for c in block.add] == ["192.0.2.3/32"]
    assert [str(c) for c in block.remove] == ["192.0.2.1/32"]
    assert [str(c) for c in plan.change("allow").add] == ["198.51.100.7/32"]
    assert not plan.unchanged


def test_exclusive_ownership_removes_everything_else():
    installed = {"block": cidrs("10.0.0.0/8", "192.0.2.1"), "allow": frozenset()}
    plan = plan_changes(installed, Policy(tuple(cidrs("192.0.2.1")), ()), V4, owned=None)
    assert [str(c) for c in plan.change("block").remove] == ["10.0.0.0/8"]


def test_unchanged_policy_and_families():
    policy = Policy(tuple(cidrs("192.0.2.1", "2001:db8::/48")), ())
    plan = plan_changes({"block": cidrs("192.0.2.1"), "allow": frozenset()}, policy, V4)
    assert plan.unchanged


def test_a_change_applied_to_a_list():
    change = plan_changes(
        {"block": cidrs("192.0.2.1", "192.0.2.2")}, Policy(tuple(cidrs("192.0.2.2")), ()), V4
    )
    assert change.change("block").applied_to(cidrs("192.0.2.1", "192.0.2.2", "10.0.0.0/8")) == cidrs(
        "192.0.2.2", "10.0.0.0/8"
    )
    assert change.change("block").applied_to(frozenset()) == frozenset()
