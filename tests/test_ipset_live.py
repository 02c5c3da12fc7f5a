"""The ipset target against the real kernel, in a namespace: sizing, failed batches, strict reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.netns import NetnsPair, entered
from tests.support.tools import require_tool
from ts_isr.errors import DeviceError
from ts_isr.linux.iptables_backend import LIMITS
from ts_isr.linux.names import derive_names
from ts_isr.policy import Policy, parse_token
from ts_isr.ranges import Cidr
from ts_isr.targets.base import plan_changes
from ts_isr.targets.ipset import IpsetTarget

pytestmark = pytest.mark.root
NAMES = derive_names("TL", LIMITS)


@pytest.fixture
def target() -> Iterator[IpsetTarget]:
    require_tool("ipset")
    with NetnsPair(()) as pair, entered(pair.host):
        yield IpsetTarget(NAMES)


def install(target: IpsetTarget, block: list[Cidr]) -> None:
    policy = Policy(tuple(sorted(block)), ())
    target.apply(plan_changes(target.read(), policy, target.families, ordered=False))


def test_more_entries_than_the_default_maxelem_fit(target: IpsetTarget) -> None:
    hosts = [Cidr(4, (10 << 24) + 2 * n, 32) for n in range(70_000)]
    install(target, hosts)
    assert target.read()["block"] == frozenset(hosts)


def test_a_failed_batch_leaves_the_live_sets_untouched_and_no_twin(target: IpsetTarget) -> None:
    good = [parse_token("192.0.2.1"), parse_token("198.51.100.0/24")]
    install(target, good)
    # hash:net refuses a /0: the kernel stops the batch before any swap.
    with pytest.raises(DeviceError, match="ipset restore failed"):
        install(target, [*good, Cidr(4, 0, 0), parse_token("203.0.113.7")])
    assert target.read()["block"] == frozenset(good)
    assert not any(name.endswith("new") for name in target.present())


def test_a_hand_made_change_is_reported_not_trusted(target: IpsetTarget) -> None:
    install(target, [parse_token("192.0.2.1")])
    target.run(["ipset", "add", "TLblockaddr", "192.0.2.9", "-exist"])
    assert parse_token("192.0.2.9") in target.read()["block"]
    target.run(["ipset", "create", "TLblocknetnew", "hash:net", "comment"])
    target.run(["ipset", "add", "TLblocknetnew", "192.0.2.0/24", "comment", "by hand"])
    with pytest.raises(DeviceError, match="not what tsadmin writes"):
        target.read()


def initvals(target: IpsetTarget) -> dict[str, str]:
    """Each set's initval: random per created set, so a swapped-in set shows a new one."""
    found = {}
    for line in target.run(["ipset", "save"]).splitlines():
        words = line.split()
        if words[0] == "create" and "initval" in words:
            found[words[1]] = words[words.index("initval") + 1]
    return found


def test_a_small_change_is_made_in_place_and_a_large_one_by_swap(target: IpsetTarget) -> None:
    hosts = [Cidr(4, (10 << 24) + 2 * n, 32) for n in range(2_000)]
    nets = [Cidr(4, (172 << 24) + (n << 8), 24) for n in range(100)]
    install(target, hosts + nets)
    before = initvals(target)
    # 1%: twenty hosts replaced, and a /24 replaced by the /23 that holds it.
    changed = hosts[20:] + [Cidr(4, (11 << 24) + 2 * n, 32) for n in range(20)]
    changed_nets = [Cidr(4, 172 << 24, 23), *nets[2:]]
    install(target, changed + changed_nets)
    assert target.read()["block"] == frozenset(changed + changed_nets)
    assert initvals(target) == before, "the live sets were changed in place, not swapped"
    half = changed[: len(changed) // 2]
    install(target, half + changed_nets)
    assert target.read()["block"] == frozenset(half + changed_nets)
    assert initvals(target)["TLblockaddr"] != before["TLblockaddr"], "half the list: a swap"


def test_a_failed_in_place_batch_is_repaired_by_a_swap_in_the_same_run(
    target: IpsetTarget, caplog: pytest.LogCaptureFixture
) -> None:
    """A live set too small for the additions (maxelem 16, made by hand): "Hash is full" part-way."""
    nets = [Cidr(4, (172 << 24) + (n << 8), 24) for n in range(4_000)]
    hosts = [Cidr(4, (10 << 24) + 2 * n, 32) for n in range(10)]
    install(target, hosts + nets)
    target.run(["ipset", "create", "TLsmall", "hash:ip", "maxelem", "16"])
    target.run(["ipset", "restore"], "".join(f"add TLsmall {c.address_text()}\n" for c in hosts))
    target.run(["ipset", "swap", "TLsmall", "TLblockaddr"])
    target.run(["ipset", "destroy", "TLsmall"])
    more = hosts + [Cidr(4, (11 << 24) + 2 * n, 32) for n in range(40)]
    install(target, more + nets)
    assert "Hash is full" in caplog.text and "swapping in whole sets instead" in caplog.text
    assert target.read()["block"] == frozenset(more + nets), "the swap put the whole policy in"
    assert not any(name.endswith("new") for name in target.present())
