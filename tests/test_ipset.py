"""The ipset target's pure parts: strict reading of ``ipset save``, sizing, and the one-batch update."""

from __future__ import annotations

import pytest

from ts_isr.errors import DeviceError
from ts_isr.linux.iptables_backend import LIMITS
from ts_isr.linux.names import derive_names
from ts_isr.policy import Policy, parse_token
from ts_isr.targets.base import plan_changes
from ts_isr.targets.ipset import (
    MIN_MAXELEM,
    IpsetTarget,
    families_in_use,
    render_update,
    set_size,
    state_members,
)
from ts_isr.targets.ipset_lines import bucket_members, entry_lines
from ts_isr.targets.ipset_saved import members_of, parse_entry, parse_save

NAMES = derive_names("TS", LIMITS)
OURS = NAMES.all_set_names()


def cidrs(*texts):
    return frozenset(parse_token(t) for t in texts)


SAVED = """create hostset hash:ip family inet hashsize 1024 maxelem 65536
add hostset 10.9.9.9 timeout 30
create TSblockaddr hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x35978a16
add TSblockaddr 192.0.2.1
create TSblocknet hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1
add TSblocknet 203.0.113.0/24
add TSblocknet 198.51.100.7
create TSallowaddr6 hash:ip family inet6 hashsize 1024 maxelem 65536
add TSallowaddr6 2001:db8::1
"""


def test_parse_save_reads_our_sets_and_skips_the_hosts():
    sets = parse_save(SAVED, OURS)
    assert set(sets) == {"TSblockaddr", "TSblocknet", "TSallowaddr6"}
    held = members_of(sets, NAMES)
    assert held["block"] == cidrs("192.0.2.1", "203.0.113.0/24", "198.51.100.7")
    assert held["allow"] == cidrs("2001:db8::1")


@pytest.mark.parametrize(
    "line",
    [
        "add TSblockaddr 192.0.2.1 timeout 30",
        "add TSblockaddr 192.0.2.256",
        "add TSblockaddr 1:192.0.2.1",
        "add TSblockaddr 010.0.0.1",
        "add TSblockaddr $(reboot)",
        "del TSblockaddr 192.0.2.1",
        "create TSblockaddr hash:ip,port family inet",
        "add TSblocknet 2001:db8::/32",
        "add TSblocknet 203.0.113.1/24",
        "add TSblocknet 203.0.113.0/024",
        "add TSblocknet 203.0.113.0/",
        "add TSblocknet 203.0.113.0/33",
        "add TSblockaddr  192.0.2.1",
        "add TSblockaddr 192.0.2.1 ",
    ],
)
def test_parse_save_refuses_what_tsadmin_never_writes(line):
    text = "create TSblockaddr hash:ip family inet hashsize 1024 maxelem 65536\n"
    text += "create TSblocknet hash:net family inet hashsize 1024 maxelem 65536\n" + line + "\n"
    with pytest.raises(DeviceError, match="not"):
        parse_save(text, OURS)


def test_members_go_to_the_set_of_their_family_and_shape():
    members = cidrs("192.0.2.1", "192.0.2.128/25", "2001:db8::1", "2001:db8:1::/48")
    buckets = bucket_members(NAMES, {"block": members, "allow": cidrs("192.0.2.2")})
    assert {name: set(found) for name, found in buckets.items() if "block" in name} == {
        "TSblockaddr": cidrs("192.0.2.1"),
        "TSblocknet": cidrs("192.0.2.128/25"),
        "TSblockaddr6": cidrs("2001:db8::1"),
        "TSblocknet6": cidrs("2001:db8:1::/48"),
    }


@pytest.mark.parametrize("count", [0, 1, 1000, 65536, 65537, 200_000, 1_000_000])
def test_sets_are_sized_from_the_data_with_room_to_spare(count):
    hashsize, maxelem = set_size(count)
    assert maxelem >= max(count, MIN_MAXELEM)
    assert maxelem >= 2 * count - 1
    assert hashsize & (hashsize - 1) == 0 and hashsize >= 1024


def test_the_batch_fills_twins_then_swaps_then_destroys():
    desired = {"block": cidrs("192.0.2.1", "203.0.113.0/24"), "allow": cidrs("203.0.113.5")}
    update = render_update(NAMES, desired, live={"TSblockaddr"})
    batch = "".join(update.chunks()).splitlines()
    # The live set that exists is never re-created; the missing ones are created empty to be swapped.
    assert not any(line.startswith("create TSblockaddr ") for line in batch)
    assert "create TSblocknet hash:net family inet hashsize 1024 maxelem 65536" in batch
    assert "add TSblockaddrnew 192.0.2.1" in batch
    assert "add TSblocknetnew 203.0.113.0/24" in batch
    assert "add TSallowaddrnew 203.0.113.5" in batch
    # Nothing is added to a live set: every add goes to a twin.
    assert all(line.split()[1].endswith("new") for line in batch if line.startswith("add "))
    first_swap = next(i for i, line in enumerate(batch) if line.startswith("swap "))
    assert all(not line.startswith(("add ", "create ")) for line in batch[first_swap:])
    assert batch[-4:] == [f"destroy {s.new}" for s in NAMES.family_sets(4)]
    assert {line for line in batch if line.startswith("swap ")} == {
        f"swap {s.new} {s.name}" for s in NAMES.family_sets(4)
    }
    # The boot state is the live sets in `ipset save` form, read back exactly as a live read is.
    assert state_members(update.state, NAMES) == desired
    assert members_of(update.sets(), NAMES) == desired


def test_ipv6_sets_appear_with_ipv6_and_stay_until_remove():
    v4_only = {"block": cidrs("192.0.2.1"), "allow": frozenset()}
    with_v6 = {"block": cidrs("192.0.2.1", "2001:db8::1"), "allow": frozenset()}
    assert families_in_use(bucket_members(NAMES, v4_only), set(), NAMES) == (4,)
    assert families_in_use(bucket_members(NAMES, with_v6), set(), NAMES) == (4, 6)
    assert families_in_use(bucket_members(NAMES, v4_only), {"TSblockaddr6"}, NAMES) == (4, 6)


def test_the_fast_ipv4_rendering_matches_the_address_parser():
    spec = next(s for s in NAMES.sets if s.name == "TSblockaddr")
    hosts = sorted(cidrs("0.0.0.0", "255.255.255.255", "10.0.0.1", "192.0.2.200", "1.2.3.4"))
    lines = entry_lines("del", spec.name, spec, hosts).splitlines()
    assert lines == [f"del TSblockaddr {c.address_text()}" for c in hosts]
    assert [parse_entry(line.split()[2], 4) for line in lines] == hosts


def test_a_live_set_of_another_type_is_refused_before_any_swap():
    """ipset restore swaps set by set: a swap that would fail must be found before the batch starts."""
    saved = (
        "create TSallowaddr hash:ip family inet hashsize 1024 maxelem 65536\n"
        "create TSblockaddr hash:net family inet hashsize 1024 maxelem 65536\n"
    )
    streamed: list[list[str]] = []
    target = IpsetTarget(
        NAMES, run=lambda argv, stdin=None: saved, stream=lambda argv, chunks: streamed.append(list(chunks))
    )
    installed = target.read()
    desired = {"block": cidrs("192.0.2.1"), "allow": cidrs("203.0.113.5")}
    plan = plan_changes(installed, Policy(tuple(desired["block"]), tuple(desired["allow"])), target.families)
    with pytest.raises(DeviceError, match=r"TSblockaddr exists as hash:net .* needs hash:ip"):
        target.apply(plan)
    assert streamed == [], "nothing reached ipset restore"
