"""The range model against Python's ipaddress, computed independently."""

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from ts_isr.ranges import Cidr, RangeSet, range_to_cidrs

v4_range = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 4096)).map(
    lambda t: (t[0], min(t[0] + t[1], 2**32 - 1))
)


def covered(ranges):
    return {a for start, end in ranges for a in range(start, end + 1)}


@given(st.lists(v4_range, max_size=30))
def test_from_ranges_merges_to_the_same_addresses(ranges):
    merged = RangeSet.from_ranges(4, ranges)
    pairs = list(merged.ranges())
    assert covered(pairs) == covered(ranges)
    # Sorted, disjoint and not adjacent: aggregation is complete.
    assert all(a_end + 1 < b_start for (_, a_end), (b_start, _) in zip(pairs, pairs[1:]))


@given(st.lists(v4_range, max_size=20), st.lists(v4_range, max_size=20))
def test_subtract_matches_set_difference(block, allow):
    result = RangeSet.from_ranges(4, block).subtract(RangeSet.from_ranges(4, allow))
    assert covered(result.ranges()) == covered(block) - covered(allow)


@given(st.lists(v4_range, max_size=20), v4_range)
def test_covers_matches_set_inclusion(ranges, probe):
    """The shrink guard's question: is a whole old entry still in the new list?"""
    start, end = probe
    assert RangeSet.from_ranges(4, ranges).covers(start, end) == (covered([probe]) <= covered(ranges))


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**20))
def test_range_to_cidrs_matches_ipaddress_summarize(start, span):
    end = min(start + span, 2**32 - 1)
    ours = [str(c) for c in range_to_cidrs(4, start, end)]
    theirs = [
        str(n)
        for n in ipaddress.summarize_address_range(ipaddress.IPv4Address(start), ipaddress.IPv4Address(end))
    ]
    assert ours == theirs


@given(st.lists(v4_range, max_size=20), v4_range)
def test_first_common_and_cidr_containing_match_the_addresses(ranges, probe):
    """--search's questions: the lowest shared address, and the list entry that holds it."""
    merged = RangeSet.from_ranges(4, ranges)
    shared = covered([probe]) & covered(ranges)
    first = merged.first_common(*probe)
    assert first == (min(shared) if shared else None)
    if first is not None:
        cidr = merged.cidr_containing(first)
        assert cidr in list(merged.cidrs()) and cidr.network <= first <= cidr.last
    assert merged.cidr_containing(probe[0]) is None or probe[0] in merged


def test_a_host_hole_in_a_slash_8_costs_about_24_entries():
    block = RangeSet.from_ranges(4, [(10 << 24, (11 << 24) - 1)])
    hole = RangeSet.from_ranges(4, [((10 << 24) + 12345, (10 << 24) + 12345)])
    assert len(list(block.subtract(hole).cidrs())) == 24


def test_ipv6_ranges_and_text():
    net = int(ipaddress.IPv6Address("2001:db8::"))
    rs = RangeSet.from_ranges(6, [(net, net + 2**96 - 1), (net + 2**96, net + 2**97 - 1)])
    assert [str(c) for c in rs.cidrs()] == ["2001:db8::/31"]
    assert net + 5 in rs and net - 1 not in rs
    assert str(Cidr(4, 0xC0000201, 32)) == "192.0.2.1/32"
