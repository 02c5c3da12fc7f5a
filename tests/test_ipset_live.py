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
