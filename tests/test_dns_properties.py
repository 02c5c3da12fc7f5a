"""Properties of the DNS reading: random answers never print an invalid entry, and random zones
served by Knot give exactly the coverage that ``ipaddress`` computes independently."""

from __future__ import annotations

import ipaddress
import random
import struct
from array import array
from collections.abc import Iterable
from pathlib import Path

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.knot import KnotServer, make_zone_records
from ts_isr import dnsfetch
from ts_isr.dnsfetch import decode
from ts_isr.policy import ListBuilder, build_policy
from ts_isr.ranges import RangeSet

MIN_PREFIX = {4: 8, 6: 16}


def response(rdtype: int, rdatas: Iterable[bytes]) -> dnsfetch.Response:
    """A real wire answer (dnspython renders it) carrying these raw rdatas."""
    query = dns.message.make_query("part.test.", rdtype)
    message = dns.message.make_response(query)
    rrset = dns.rrset.RRset(query.question[0].name, dns.rdataclass.IN, rdtype)
    for data in rdatas:
        rrset.add(dns.rdata.GenericRdata(dns.rdataclass.IN, rdtype, data))
    if rdatas:
        message.answer.append(rrset)
    return dnsfetch.parse_response(message.to_wire())


def printed_entries(answers: dict[int, dnsfetch.Response]) -> list[str]:
    fetched = dnsfetch.FetchedList("part.test", ListBuilder(min_prefix=dict(MIN_PREFIX)))
    try:
        dnsfetch.read_part(fetched, answers, dns.name.from_text("part.test"))
    except dnsfetch.Malformed:
        raise
    except dnsfetch.ServerError as exc:
        assert "has no data" in str(exc)
        return []  # a part without data fails its list: nothing is printed
    policy, _ = build_policy(fetched.builder.ranges(), {4: RangeSet.empty(4), 6: RangeSet.empty(6)})
    return list(policy.lines())


def assert_valid(lines: list[str]) -> None:
    for line in lines:
        kind, text = line.split(" ")
        network = ipaddress.ip_network(text, strict=True)  # raises on anything but a clean network
        assert kind == "block"
        assert network.prefixlen >= MIN_PREFIX[network.version]
        assert str(network) == text


token = st.one_of(
    st.binary(max_size=40),
    st.from_regex(r"(1:)?[0-9]{1,4}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(/[0-9]{1,3})?", fullmatch=True).map(
        str.encode
    ),
    st.from_regex(r"(2:)?[0-9a-f:]{2,40}(/[0-9]{1,3})?", fullmatch=True).map(str.encode),
    st.sampled_from([b"0.0.0.0/0", b"::/0", b"010.1.1.1", b"1.2.3.4\n", b";", b"$(x)", b"255.255.255.255"]),
)
txt_string = st.lists(token, max_size=6).map(lambda parts: b" ".join(parts)[:255])
txt_rdata = st.lists(txt_string, min_size=1, max_size=3).map(
    lambda strings: b"".join(bytes([len(s)]) + s for s in strings)
)
apl_item = st.tuples(
    st.sampled_from([1, 2, 1, 2, 3, 0]),
    st.integers(0, 255),
    st.booleans(),
    st.binary(max_size=17),
).map(lambda t: struct.pack(">HBB", t[0], t[1], (0x80 if t[2] else 0) | len(t[3])) + t[3])
apl_rdata = st.one_of(st.lists(apl_item, max_size=6).map(b"".join), st.binary(max_size=60))


@settings(max_examples=300, deadline=None)
@given(st.lists(txt_rdata, max_size=4))
def test_random_txt_prints_only_valid_networks(rdatas: list[bytes]) -> None:
    answers = {t: response(t, []) for t in dnsfetch.PART_TYPES}
    answers[dnsfetch.TXT] = response(dnsfetch.TXT, rdatas)
    assert_valid(printed_entries(answers))


@settings(max_examples=300, deadline=None)
@given(st.lists(apl_rdata, max_size=4))
def test_random_apl_prints_only_valid_networks_or_fails_whole(rdatas: list[bytes]) -> None:
    answers = {t: response(t, []) for t in dnsfetch.PART_TYPES}
    answers[dnsfetch.APL] = response(dnsfetch.APL, rdatas)
    try:
        lines = printed_entries(answers)
    except dnsfetch.Malformed:
        return  # a malformed record fails the whole part, and with it the list
    assert_valid(lines)


@settings(max_examples=300, deadline=None)
@given(apl_rdata)
def test_the_apl_fast_cut_agrees_with_the_item_by_item_reading(data: bytes) -> None:
    try:
        slow = decode._apl_items_one_by_one(data)
    except dnsfetch.Malformed:
        slow = None
    try:
        fast = [
            item
            for record in dnsfetch.apl_rdatas(response(dnsfetch.APL, [data]))
            for item in dnsfetch.cut_apl_items(record)
        ]
    except dnsfetch.Malformed:
        fast = None
    assert fast == slow


host_item = st.tuples(
    st.sampled_from([1, 1, 1, 2, 0x101]),
    st.integers(0, 255),
    st.booleans(),
    st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=3, max_size=3), st.binary(max_size=5)),
).map(lambda t: struct.pack(">HBB", t[0], t[1], (0x80 if t[2] else 0) | len(t[3])) + t[3])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(host_item, max_size=5).map(b"".join), min_size=1, max_size=4))
def test_the_apl_host_columns_agree_with_the_item_reading(records: list[bytes]) -> None:
    def items_of(records: list[bytes]) -> list[bytes] | None:
        try:
            return sorted(item for data in records for item in dnsfetch.cut_apl_items(data))
        except dnsfetch.Malformed:
            return None

    groups, others = dnsfetch.v4_column_groups(records)
    from_columns = [
        struct.pack(">HBB", 1, prefixlen, flag) + address.to_bytes(4, "big")[: flag & 0x7F]
        for columns in groups
        for address, prefixlen, flag in zip(*columns)
    ]
    rest = items_of(others)
    assert items_of(records) == (None if rest is None else sorted(from_columns + rest))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 2**32 - 1), max_size=20),
    st.integers(0, 40),
    st.booleans(),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_column_groups_enter_the_list_as_item_by_item_adds_would(
    addresses: list[int], prefixlen: int, negated: bool, uniform: bool, rng: random.Random
) -> None:
    count = len(addresses)
    mixed = bytes(rng.choice([prefixlen, 32]) for _ in addresses)
    prefixes = bytes([prefixlen]) * count if uniform else mixed
    flags = bytes((0x84 if (negated if uniform else rng.random() < 0.5) else 0x04) for _ in addresses)
    bulk = dnsfetch.FetchedList("x", ListBuilder(min_prefix=dict(MIN_PREFIX)))
    dnsfetch.add_apl_v4(bulk, array("I", addresses), prefixes, flags)
    single = ListBuilder(min_prefix=dict(MIN_PREFIX))
    for address, prefix, flag in zip(addresses, prefixes, flags):
        single.add(4, address, prefix, flag > 0x7F)
    assert bulk.builder.ranges() == single.ranges()
    counts = (single.accepted, single.invalid, single.too_broad)
    assert (bulk.builder.accepted, bulk.builder.invalid, bulk.builder.too_broad) == counts


# --- Differential: Knot serves a random zone; ipaddress computes the answer on its own ---------

ZONE = "diff.test."
V4_SPACE = ipaddress.ip_network("10.9.0.0/22")
V6_SPACE = ipaddress.ip_network("2001:db8:9::/118")


def random_network(rng: random.Random, space: ipaddress._BaseNetwork) -> ipaddress._BaseNetwork:
    bits = space.max_prefixlen
    prefixlen = rng.randint(bits - 8, bits)
    offset = rng.randrange(space.num_addresses)
    return ipaddress.ip_network((int(space.network_address) + offset, prefixlen), strict=False)


def random_list(rng: random.Random, name: str) -> tuple[dict, set[int], set[int]]:
    """Zone records for one list (PTR over parts of one type each) and its include/exclude addresses."""
    include: set[int] = set()
    exclude: set[int] = set()
    records: dict[str, dict] = {"ptr": {}, "a": {}, "apl": {}, "txt": {}}
    parts = []
    for index in range(rng.randint(1, 5)):
        part = f"{name}-p{index}"
        parts.append(f"{part}.{ZONE}")
        kind = rng.choice(["a", "apl", "txt"])
        if kind == "a":
            hosts = [
                str(random_network(rng, rng.choice([V4_SPACE, V6_SPACE])).network_address)
                for _ in range(rng.randint(1, 30))
            ]
            records["a"][part] = hosts
            include |= {int(ipaddress.ip_address(h)) for h in hosts}
        elif kind == "apl":
            items = []
            for _ in range(rng.randint(1, 30)):
                net = random_network(rng, rng.choice([V4_SPACE, V6_SPACE]))
                negated = rng.random() < 0.3
                items.append(f"{'!' if negated else ''}{1 if net.version == 4 else 2}:{net}")
                (exclude if negated else include).update(range(int(net[0]), int(net[-1]) + 1))
            records["apl"][part] = items
        else:
            nets = [random_network(rng, V4_SPACE) for _ in range(rng.randint(1, 20))]
            tokens = [
                str(n) if n.prefixlen < 32 or rng.random() < 0.5 else str(n.network_address) for n in nets
            ]
            records["txt"][part] = [" ".join(tokens[i : i + 5]) for i in range(0, len(tokens), 5)]
            for net in nets:
                include.update(range(int(net[0]), int(net[-1]) + 1))
    records["ptr"][name] = parts
    return records, include, exclude


def addresses_of(lines: Iterable[str], kind: str) -> set[int]:
    out: set[int] = set()
    for line in lines:
        tag, text = line.split(" ")
        if tag == kind:
            net = ipaddress.ip_network(text)
            out.update(range(int(net[0]), int(net[-1]) + 1))
    return out


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> KnotServer:
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    server.add_zone(ZONE, "")
    with server:
        yield server


@pytest.mark.parametrize("seed", range(8))
def test_policy_from_a_random_zone_matches_ipaddress(knot: KnotServer, seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    block_records, block_in, block_out = random_list(rng, "block")
    allow_records, allow_in, allow_out = random_list(rng, "allow")
    merged = {kind: {**block_records[kind], **allow_records[kind]} for kind in block_records}
    knot.add_zone(ZONE, make_zone_records(**merged))
    knot.reload()
    names = [f"block.{ZONE}".rstrip("."), f"allow.{ZONE}".rstrip(".")]
    fetched = dnsfetch.fetch_lists(names, ["127.0.0.1"], port=knot.port)
    policy, _ = build_policy(fetched[names[0]].builder.ranges(), fetched[names[1]].builder.ranges())
    lines = list(policy.lines())
    allowed = allow_in - allow_out
    assert addresses_of(lines, "allow") == allowed
    assert addresses_of(lines, "block") == (block_in - block_out) - allowed
