"""Token parsing and policy building: pure, no I/O, checked against ipaddress independently."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ts_isr.policy import ListBuilder, build_policy, parse_token
from ts_isr.ranges import Cidr


@pytest.mark.parametrize(
    "token",
    [
        "010.1.1.1",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4/33",
        "1.2.3.4/08",
        "1.2.3.4 ",
        "1.2.3.4\nno host 1.1.1.1",
        "1.2.3.4;reboot",
        "$(reboot)",
        "1.2.3.4/24 extra",
        "9" * 80,
        "",
        "2001:db8::/129",
        "::ffff:zz",
    ],
)
def test_hostile_or_malformed_tokens_are_refused(token):
    assert parse_token(token) is None


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("192.0.2.1", "192.0.2.1/32"),
        ("192.0.2.77/24", "192.0.2.0/24"),
        ("1:198.51.100.0/24", "198.51.100.0/24"),
        ("0.0.0.0", "0.0.0.0/32"),
        ("2001:db8::1/64", "2001:db8::/64"),
        ("2:2001:db8:0:0:0:0:0:0/48", "2001:db8::/48"),  # 9 groups whole: the prefix is the only reading
        ("2::1", "2::1/128"),  # ":1" is no address: the only reading is the whole
    ],
)
def test_valid_tokens_are_normalised(token, expected):
    assert str(parse_token(token)) == expected


def test_over_broad_entries_are_refused_and_counted():
    builder = ListBuilder()
    assert not builder.add_token("0.0.0.0/0")
    assert not builder.add_token("10.0.0.0/7")
    assert builder.add_token("10.0.0.0/8")
    assert builder.too_broad == 2


def test_negated_entries_exclude_within_the_list():
    builder = ListBuilder()
    builder.add_token("192.0.2.0/24")
    builder.add(4, int(ipaddress.IPv4Address("192.0.2.128")), 25, negated=True)
    policy, _ = build_policy(builder.ranges(), ListBuilder().ranges())
    assert [str(c) for c in policy.block] == ["192.0.2.0/25"]


def test_lifelines_are_never_blocked():
    block = ListBuilder()
    block.add_token("192.124.129.0/24")
    lifeline = parse_token("192.124.129.42")
    policy, report = build_policy(block.ranges(), ListBuilder().ranges(), lifelines=[lifeline])
    assert report.lifelines_spared == 1
    assert report.spared == ((lifeline, parse_token("192.124.129.0/24")),)
    assert all(not (c.network <= lifeline.network <= c.last) for c in policy.block)


def test_truncation_keeps_the_broadest_and_reports_the_rest():
    block = ListBuilder()
    for i in range(10):
        block.add_token(f"203.0.{i}.1")
    block.add_token("198.51.100.0/24")
    policy, report = build_policy(block.ranges(), ListBuilder().ranges(), max_size=3)
    assert [str(c) for c in policy.block] == ["198.51.100.0/24", "203.0.0.1/32", "203.0.1.1/32"]
    assert report.block_truncated == 8


networks = st.tuples(st.integers(0, 2**32 - 1), st.integers(20, 32)).map(
    lambda t: ipaddress.IPv4Network((t[0] >> (32 - t[1]) << (32 - t[1]), t[1]))
)


@given(st.lists(networks, max_size=25), st.lists(networks, max_size=10))
def test_differential_against_ipaddress(block_nets, allow_nets):
    block, allow = ListBuilder(), ListBuilder()
    for net in block_nets:
        block.add_token(str(net))
    for net in allow_nets:
        allow.add_token(str(net))
    policy, _ = build_policy(block.ranges(), allow.ranges())
    expected = list(ipaddress.collapse_addresses(block_nets))
    for hole in allow_nets:
        expected = [
            piece
            for net in expected
            for piece in (
                net.address_exclude(hole) if hole.subnet_of(net) else ([] if net.subnet_of(hole) else [net])
            )
        ]
    assert [str(c) for c in policy.block] == [str(n) for n in ipaddress.collapse_addresses(expected)]
    assert [str(c) for c in policy.allow] == [str(n) for n in ipaddress.collapse_addresses(allow_nets)]


def test_print_form_is_sorted_by_address():
    block, allow = ListBuilder(), ListBuilder()
    block.add_token("203.0.113.0/24")
    allow.add_token("192.0.2.1")
    policy, _ = build_policy(block.ranges(), allow.ranges())
    assert list(policy.lines()) == ["allow 192.0.2.1/32", "block 203.0.113.0/24"]
    assert policy.block == (Cidr(4, int(ipaddress.IPv4Address("203.0.113.0")), 24),)


@pytest.mark.parametrize("token", ["2:1::/64", "2:2001:db8::/48", "2:db8::1"])
def test_a_token_valid_with_and_without_the_2_prefix_is_refused(token):
    """Review item 8: ``2:1::/64`` is 1::/64 or 2:1::/64; neither reading can be trusted."""
    assert parse_token(token) is None
    assert str(parse_token(token, family_prefix=False)) == str(ipaddress.ip_network(token, strict=False))


def test_truncation_ranks_only_the_families_the_target_takes():
    """Review item 2: IPv6 /32s must not take the slots of an IPv4-only device's entries."""
    block = ListBuilder()
    for token in ("192.0.2.1", "198.51.100.0/24", "2001:db8::/32", "2001:db9::/48"):
        block.add_token(token)
    policy, report = build_policy(block.ranges(), ListBuilder().ranges(), max_size=2, families={4})
    assert [str(c) for c in policy.block if c.family == 4] == ["192.0.2.1/32", "198.51.100.0/24"]
    assert [str(c) for c in policy.block if c.family == 6] == ["2001:db8::/32", "2001:db9::/48"]
    assert report.block_truncated == 0
    both, report = build_policy(block.ranges(), ListBuilder().ranges(), max_size=3)
    # Both families share the slots, IPv4 first (issue 12): the IPv6 /32 fills the one left.
    assert [str(c) for c in both.block] == ["192.0.2.1/32", "198.51.100.0/24", "2001:db8::/32"]
    assert report.block_truncated == 1 and f"{report.block_truncated}" == "1"
    _, report = build_policy(block.ranges(), ListBuilder().ranges(), max_size=1)
    assert (report.block_truncated.v4, report.block_truncated.v6) == (1, 2)
    assert f"dropped {report.block_truncated} entries" == "dropped 3 (1 IPv4, 2 IPv6) entries"
