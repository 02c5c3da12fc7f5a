"""IPv6 members of Cisco groups, pure: any spelling read canonically, malformed text the user's,
ownership records of both families, the IPv6 placeholder, the truncation rule."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ts_isr.policy import Policy, parse_token
from ts_isr.ranges import Cidr
from ts_isr.sync import PLACEHOLDER, PLACEHOLDER_V6, OwnershipStore, placeholder_for, with_placeholder
from ts_isr.targets.base import Plan, plan_changes
from ts_isr.targets.cisco.asa import AsaDialect, asa_version
from ts_isr.targets.cisco.ios import IosDialect
from ts_isr.targets.cisco.members import Member, parse_member
from ts_isr.targets.cisco.stream import Stream

V6 = frozenset({6})


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, int]:
    """An IPv6 address and one valid way of writing it: any case, leading zeros, ``::`` anywhere legal."""
    value = draw(st.integers(0, 2**128 - 1))
    groups = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    texts = []
    for group in groups:
        digits = f"{group:x}"
        digits = "0" * draw(st.integers(0, 4 - len(digits))) + digits
        texts.append("".join(c.upper() if draw(st.booleans()) else c for c in digits))
    zero_runs = [(i, j) for i in range(8) for j in range(i + 1, 9) if all(g == 0 for g in groups[i:j])]
    if zero_runs and draw(st.booleans()):
        i, j = draw(st.sampled_from(zero_runs))
        return ":".join(texts[:i]) + "::" + ":".join(texts[j:]), value
    return ":".join(texts), value


@given(spellings(), st.integers(0, 128), st.sampled_from(["", "network-object "]))
def test_every_spelling_read_back_equals_its_canonical_entry(spelled, prefixlen, prefix):
    text, value = spelled
    assert int(ipaddress.IPv6Address(text)) == value  # the strategy writes valid IPv6 only
    network = value & ~((1 << (128 - prefixlen)) - 1)
    cidr = Cidr(6, network, prefixlen)
    host = parse_member(f"host {text}")
    assert host is not None and host.cidrs == (Cidr(6, value, 128),) and host.in_tools_form
    net_text = ipaddress.IPv6Address(network).exploded.upper() if network != value else text
    member = parse_member(f"{net_text}/{prefixlen}")
    assert member is not None and member.cidrs == (cidr,)
    # What the tool sends is canonical (RFC 5952), whatever the device printed.
    canonical = ipaddress.IPv6Address(network)
    assert Member.of(cidr).text() == (f"host {canonical}" if prefixlen == 128 else f"{canonical}/{prefixlen}")
    assert parse_member(Member.of(cidr).text()).cidrs == (cidr,)


def test_malformed_ipv6_text_is_the_users_never_removed_nor_sent_back():
    lines = [
        "network-object host 2001:db8::zz",
        "network-object host 2001:db8::1%eth0",
        "network-object 2001:db8::/129",
        "network-object 2001:db8::1/64",  # host bits set
        "network-object host 2001:db8:::1",
        "network-object host [2001:db8::1]",
        "network-object 2001:DB8::0DB8:800:200C:417A/128",  # a /128 written as a network: the user's form
        "network-object host 2001:DB8:0:0:0:0DB8:800:200C",
    ]
    text = "object-group network TS\n" + "".join(f" {line}\n" for line in lines)
    contents = AsaDialect().parse_group("TS", text)
    assert contents.others == tuple(lines[:6])
    user = parse_token("2001:db8::db8:800:200c:417a/128")
    assert contents.held_by_user == {user}
    assert set(contents.cidrs) == {user, parse_token("2001:db8::db8:800:200c/128")}


def test_ios_reads_v6_network_groups_by_their_own_header_only():
    text = "V6-Network object group TS6\n host 2001:DB8::1:1111\n 2001:db8:111:1::/64\n"
    assert IosDialect().parse_group("TS6", text, v6=True).cidrs == {
        parse_token("2001:db8::1:1111/128"),
        parse_token("2001:db8:111:1::/64"),
    }
    assert IosDialect().parse_group("TS6", text).cidrs == frozenset()  # not an IPv4 group
    assert IosDialect().group_type(v6=True) == "v6-network" and AsaDialect().group_type(v6=True) == "network"


def test_asa_version_decides_mixed_groups():
    assert asa_version("Cisco Adaptive Security Appliance Software Version 9.16(3)") == (9, 16)
    assert asa_version("Cisco Adaptive Security Appliance Software Version 8.4(7)") == (8, 4)
    assert asa_version("% Invalid input") is None


def test_ownership_records_hold_both_families(tmp_path):
    store = OwnershipStore(tmp_path, "dev")
    owned = {parse_token("192.0.2.1"), parse_token("2001:db8::/48"), parse_token("2001:db8::1")}
    store.save("TS", owned)
    assert store.load("TS") == owned


def test_an_ipv6_only_group_keeps_the_ipv6_placeholder():
    assert placeholder_for(V6) == PLACEHOLDER_V6 and placeholder_for(frozenset({4, 6})) == PLACEHOLDER
    assert ipaddress.IPv6Network(str(PLACEHOLDER_V6)).subnet_of(ipaddress.IPv6Network("2001:db8::/32"))
    mine = parse_token("2001:db8:5::/48")
    installed = {"block_v6": frozenset({mine})}
    plan = plan_changes(installed, Policy((), ()), V6, owned=installed, kinds=("block_v6",))
    plan = with_placeholder(Plan((plan.change("block_v6"),)), installed, ["block_v6"], PLACEHOLDER_V6)
    assert plan.change("block_v6").add == (PLACEHOLDER_V6,) and plan.change("block_v6").remove == (mine,)


@pytest.mark.parametrize(
    "answer",
    [
        "ERROR: Adding obj (2001:db8::1) to grp (TS) failed; object already exists",
        "ERROR: obj does not exist in this group",
    ],
)
def test_asa_answers_that_the_member_is_already_in_place_count_as_done(answer):
    line = "network-object host 2001:db8::1"
    stream = Stream.of([line])
    stream.take(0.0)
    stream.feed(f"{line}\r\n{answer}\r\nASA(config-network-object-group)# ", 0.01)
    assert stream.finished and stream.done == 1 and stream.errors == []
    refused = Stream.of([line])
    refused.take(0.0)
    refused.feed(
        f"{line}\r\nERROR: % Invalid input detected at '^' marker.\r\nASA(config-network-object-group)# ",
        0.01,
    )
    assert [error.line for error in refused.errors] == [line]
