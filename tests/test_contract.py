"""The contract every place a policy is installed keeps, run against each, as NAPALM runs one test
module against every driver (napalm/base/test/): IOS and ASA over real SSH to the lab, the dry run,
the ipset target and the nftables backend in a network namespace the test creates.

Every place: it reads back what was applied, of both families where it holds both; applying the
same policy again changes nothing.  The places a user shares (Cisco object-groups): the user's
members stay, additions go in before removals, and a group is never emptied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.lab import lab_device
from tests.support.netns import NetnsPair, entered
from tests.support.tools import require_tool
from ts_isr.linux.backend import make_backend
from ts_isr.linux.firewall import ChainSpec
from ts_isr.policy import Policy, parse_token
from ts_isr.ranges import Cidr
from ts_isr.sync import PLACEHOLDER, PLACEHOLDERS, OwnershipStore, SyncOptions, synchronise
from ts_isr.targets.base import list_of, plan_changes
from ts_isr.targets.cisco import CiscoTarget, Device
from ts_isr.targets.cisco.asa import AsaDialect
from ts_isr.targets.cisco.ios import IosDialect
from ts_isr.targets.dryrun import DryRunTarget
from ts_isr.targets.ipset import IpsetTarget


def policy(*block: str, allow: tuple[str, ...] = ()) -> Policy:
    return Policy(tuple(sorted(parse_token(t) for t in block)), tuple(sorted(parse_token(t) for t in allow)))


FIRST = policy("192.0.2.1", "198.51.100.0/24", "2001:db8:1::/48", "2001:db8:2::1", allow=("203.0.113.5",))
SECOND = policy("192.0.2.1", "192.0.2.77", "2001:db8:2::1", "2001:db8:3::/64", allow=("203.0.113.5",))


@dataclass
class Place:
    """One place behind its interface: ``install`` a policy (True when anything changed), ``holds``
    what it reads back by list."""

    name: str
    families: frozenset[int]
    install: Callable[[Policy], bool]
    holds: Callable[[], dict[str, frozenset[Cidr]]]
    commands: Callable[[], list[str]] = list  # what a lab device received, in order


def real(held: dict[str, frozenset[Cidr]]) -> dict[str, frozenset[Cidr]]:
    """What a place holds but the placeholders that keep a group from emptying (they block nothing)."""
    return {kind: members - PLACEHOLDERS for kind, members in held.items()}


def expected(wanted: Policy, families: frozenset[int]) -> dict[str, frozenset[Cidr]]:
    return {
        kind: frozenset(c for c in getattr(wanted, kind) if c.family in families)
        for kind in ("block", "allow")
    }


USER = parse_token("2001:db8:ff::1")
USERS_LINE = {
    "ios": ("TSB6", "host 2001:DB8:FF:0::1"),
    "asa": ("TSA", "network-object host 2001:db8:FF::0001"),
}


def cisco_place(
    stack: ExitStack, tmp_path: Path, platform: str, dry_run: bool = False, user: bool = False
) -> Place:
    """The lab device; ``user``: a group holds a member of the user's, in an odd spelling."""
    group, line = USERS_LINE[platform]
    preload = {group: [line]} if user else {}
    knobs = {"version": "9.16"} if platform == "asa" else {"group_types": {"TSB6": "v6-network"}}
    device = stack.enter_context(lab_device(tmp_path, platform=platform, preload=preload, **knobs))
    known_hosts = tmp_path / f"known_hosts-{platform}"
    known_hosts.write_text(device.known_hosts_line() + "\n")
    groups = {"block": "TSB", "allow": "TSA"}
    if platform == "ios":
        groups |= {"block_v6": "TSB6", "allow_v6": "TSA6"}
    store = OwnershipStore(tmp_path / f"state-{platform}", "lab")
    store.state_dir.mkdir(exist_ok=True)

    def target() -> CiscoTarget:
        dialect = AsaDialect() if platform == "asa" else IosDialect()
        auth = Device(
            device.host, device.port, device.username, device.password, device.secret, known_hosts, 20
        )
        return CiscoTarget(dialect, auth, groups)

    def install(wanted: Policy) -> bool:
        cisco = target()
        place = DryRunTarget(cisco) if dry_run else cisco
        with place:
            cisco.connect()
            options = SyncOptions(groups=groups, record=not dry_run, force=True)
            return synchronise(place, wanted, store, options).changed

    def holds() -> dict[str, frozenset[Cidr]]:
        with target() as cisco:
            cisco.connect()
            read = cisco.read()
        merged: dict[str, frozenset[Cidr]] = {"block": frozenset(), "allow": frozenset()}
        for slot, members in read.items():
            merged[list_of(slot)] |= members
        return merged

    return Place(
        platform + ("-dry-run" if dry_run else ""), frozenset({4, 6}), install, holds, device.commands
    )


def ipset_place(stack: ExitStack) -> Place:
    require_tool("ipset")
    pair = stack.enter_context(NetnsPair(()))
    stack.enter_context(entered(pair.host))
    from ts_isr.linux.iptables_backend import LIMITS
    from ts_isr.linux.names import derive_names

    target = IpsetTarget(derive_names("TC", LIMITS))

    def install(wanted: Policy) -> bool:
        plan = plan_changes(target.read(), wanted, target.families, ordered=False)
        if plan.unchanged:
            return False
        target.apply(plan)
        return True

    return Place("ipset", target.families, install, lambda: dict(target.read()))


def nft_place(stack: ExitStack) -> Place:
    require_tool("nft")
    pair = stack.enter_context(NetnsPair(()))
    stack.enter_context(entered(pair.host))
    backend = make_backend("nftables", "TC")

    def install(wanted: Policy) -> bool:
        return backend.apply(ChainSpec(), wanted, lambda: None)

    def holds() -> dict[str, frozenset[Cidr]]:
        held = backend.read_policy()
        return {"block": frozenset(held.block), "allow": frozenset(held.allow)}

    return Place("nftables", frozenset({4, 6}), install, holds)


PLACES = ["ios", "asa", "ios-dry-run", "ipset", "nftables"]


@pytest.fixture(params=PLACES)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    with ExitStack() as stack:
        name = request.param
        if name.startswith(("ios", "asa")):
            platform = name.split("-")[0]
            yield cisco_place(
                stack, tmp_path, platform, dry_run=name.endswith("dry-run"), user=name.endswith("shared")
            )
        elif name == "ipset":
            yield ipset_place(stack)
        else:
            yield nft_place(stack)


def test_a_place_reads_back_what_was_applied_and_a_second_apply_changes_nothing(place: Place) -> None:
    if place.name.endswith("dry-run"):
        place.install(FIRST)  # prints the difference only: the device holds what it held
        assert real(place.holds()) == {"block": frozenset(), "allow": frozenset()}
        assert "configure terminal" not in place.commands()
        return
    place.install(FIRST)
    assert real(place.holds()) == expected(FIRST, place.families)
    place.install(SECOND)
    assert real(place.holds()) == expected(SECOND, place.families)
    before = len(place.commands())
    assert not place.install(SECOND), "the same policy again changes nothing"
    assert real(place.holds()) == expected(SECOND, place.families)
    assert "configure terminal" not in place.commands()[before:]


SHARED = ["ios-shared", "asa-shared"]


@pytest.mark.parametrize("place", SHARED, indirect=True)
def test_a_shared_place_keeps_the_users_members_adds_first_and_is_never_emptied(place: Place) -> None:
    place.install(FIRST)
    held = place.holds()
    assert USER in held["block"] | held["allow"], "the user's member stays"
    assert real(held)["block"] - {USER} == expected(FIRST, place.families)["block"]
    place.install(policy(allow=("203.0.113.5",)))  # the block list empties
    held = place.holds()
    assert held["block"] - {USER} == {PLACEHOLDER} | ({parse_token("2001:db8::ff")} & held["block"])
    assert PLACEHOLDER in held["block"], "the block group keeps the placeholder"
    assert USER in held["block"] | held["allow"]
    commands = [line.strip() for line in place.commands()]
    last = len(commands) - commands[::-1].index("configure terminal") - 1
    pushed = commands[last:]
    first_removal = next(i for i, line in enumerate(pushed) if line.startswith("no "))
    placeholder = next(i for i, line in enumerate(pushed) if line.endswith("host 192.0.2.255"))
    assert placeholder < first_removal, "additions go in before removals"
    assert not any("ff::1" in line.lower() for line in pushed), "nothing of the user's was ever sent"
