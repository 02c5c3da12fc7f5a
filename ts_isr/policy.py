"""The policy model: tokens from DNS answers become block and allow lists.

Pure functions only.  Every token is parsed strictly into integers before it
is used; anything else is counted and dropped, so no answer can put text on a
device's command line.  The reading of the vendor's format is in
``ts_isr.dnsfetch``; this module only knows addresses.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from array import array
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from ts_isr.ranges import BITS, Cidr, RangeSet

_V6 = re.compile(r"([0-9A-Fa-f:.]{2,47})(?:/(0|[1-9][0-9]{0,2}))?")
MAX_TOKEN = 64


_PREFIX_LENGTHS = {str(n): n for n in range(33)}  # only the canonical spellings: no "08", "+8"
# Parsed texts are remembered: a fleet reads the same policy from every device, its ownership record
# and its last good policy (a look-up costs a tenth of a parse).  Bounded, and small, as a policy is
# not: a 200,000-entry list read in order only passes through.
PARSED_TEXTS = 8192
_LONGEST_QUAD = len("255.255.255.255")


def ipv4_value(text: str) -> int | None:
    """``a.b.c.d`` strictly (glibc's inet_pton: four decimal octets, no leading zero, sign or space)."""
    return None if len(text) > _LONGEST_QUAD else _ipv4_value(text)  # a long text is never kept


@functools.lru_cache(maxsize=PARSED_TEXTS)
def _ipv4_value(text: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None


def parse_v4(text: str) -> tuple[int, int] | None:
    """``a.b.c.d[/len]`` (optionally ``1:``-prefixed) as (network, prefixlen), host bits cleared.

    Leading zeros are refused: ``010.1.1.1`` means octal to some parsers and
    decimal to others, and a policy must not depend on which.
    """
    address, slash, length = text.removeprefix("1:").partition("/")
    value = ipv4_value(address)
    prefixlen = _PREFIX_LENGTHS.get(length) if slash else 32
    if value is None or prefixlen is None:
        return None
    return value & (((1 << prefixlen) - 1) << (32 - prefixlen)), prefixlen


def _v6_value(text: str) -> int | None:
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def parse_v6(text: str, *, family_prefix: bool = True) -> tuple[int, int] | None:
    """``x::y[/len]`` (optionally ``2:``-prefixed) as (network, prefixlen), host bits cleared.

    ``2:1::/64`` reads as ``1::/64`` with the prefix and as ``2:1::/64``
    without: a token that is valid both ways is refused, as no reading of it
    can be trusted.  ``family_prefix=False`` reads the plain form only (our own files).
    """
    m = _V6.fullmatch(text)
    if not m or ":" not in m.group(1):
        return None
    body = m.group(1)
    readings = [_v6_value(body)]
    if family_prefix and body.startswith("2:"):
        readings.append(_v6_value(body[2:]))
    valid = [value for value in readings if value is not None]
    if len(valid) != 1:
        return None
    prefixlen = int(m.group(2)) if m.group(2) is not None else 128
    if prefixlen > 128:
        return None
    return valid[0] & (((1 << prefixlen) - 1) << (128 - prefixlen)), prefixlen


def parse_token(text: str, *, family_prefix: bool = True) -> Cidr | None:
    """A TXT token (``a.b.c.d[/len]``, ``1:a.b.c.d/len``, IPv6 forms) or None.

    ``family_prefix=False`` accepts only the plain forms ``str(Cidr)`` writes.
    """
    return None if len(text) > MAX_TOKEN else _parse_token(text, family_prefix)  # a long text is never kept


@functools.lru_cache(maxsize=PARSED_TEXTS)
def _parse_token(text: str, family_prefix: bool) -> Cidr | None:
    if not family_prefix and text.startswith("1:"):
        return None
    parsed4 = parse_v4(text)
    if parsed4 is not None:
        return Cidr(4, *parsed4)
    parsed6 = parse_v6(text, family_prefix=family_prefix)
    return None if parsed6 is None else Cidr(6, *parsed6)


def _stores() -> dict[int, array | list[tuple[int, int]]]:
    # IPv4 ranges are packed as (first << 32) | last in 8 bytes each: a million
    # entries cost 8 MB here instead of about 100 MB of tuples.
    return {4: array("Q"), 6: []}


@dataclass
class ListBuilder:
    """Accumulates one list's entries; refuses over-broad ones and counts what it drops."""

    min_prefix: dict[int, int] = field(default_factory=lambda: {4: 8, 6: 16})
    include: dict[int, array | list[tuple[int, int]]] = field(default_factory=_stores)
    exclude: dict[int, array | list[tuple[int, int]]] = field(default_factory=_stores)
    accepted: int = 0
    excluded: int = 0  # of ``accepted``: exclusions, not results
    invalid: int = 0
    too_broad: int = 0

    def add(self, family: int, network: int, prefixlen: int, negated: bool = False) -> bool:
        """Add one parsed entry; a negated one is an exclusion within this list."""
        bits = BITS[family]
        if not 0 <= prefixlen <= bits or not 0 <= network < (1 << bits):
            self.invalid += 1
            return False
        network &= ((1 << prefixlen) - 1) << (bits - prefixlen)
        last = network | ((1 << (bits - prefixlen)) - 1)
        entry = (network << 32) | last if family == 4 else (network, last)
        if negated:
            self.exclude[family].append(entry)
            self.excluded += 1
        elif prefixlen < self.min_prefix[family]:
            self.too_broad += 1
            return False
        else:
            self.include[family].append(entry)
        self.accepted += 1
        return True

    def add_token(self, text: str) -> bool:
        cidr = parse_token(text)
        if cidr is None:
            self.invalid += 1
            return False
        return self.add(*cidr)

    def add_v4_networks(self, networks: Iterable[int], prefixlen: int, negated: bool = False) -> None:
        """Fast path for APL answers: IPv4 networks of one prefix length, checked once, not each."""
        if not 0 <= prefixlen <= 32 or (not negated and prefixlen < self.min_prefix[4]):
            dropped = sum(1 for _ in networks)
            if 0 <= prefixlen <= 32:
                self.too_broad += dropped
            else:
                self.invalid += dropped
            return
        mask = ((1 << prefixlen) - 1) << (32 - prefixlen)
        host = (1 << (32 - prefixlen)) - 1
        target = self.exclude[4] if negated else self.include[4]
        before = len(target)
        target.extend((n & mask) * 0x100000001 | host for n in networks)
        self.accepted += len(target) - before
        if negated:
            self.excluded += len(target) - before

    def add_v4_hosts(self, addresses: Iterable[int]) -> None:
        """Fast path for A records: each is a /32 already known to be valid."""
        hosts = self.include[4]
        before = len(hosts)
        hosts.extend(a * 0x100000001 for a in addresses)  # (a << 32) | a
        self.accepted += len(hosts) - before

    def ranges(self) -> dict[int, RangeSet]:
        return {
            4: RangeSet.from_packed_v4(self.include[4]).subtract(RangeSet.from_packed_v4(self.exclude[4])),
            6: RangeSet.from_ranges(6, self.include[6]).subtract(RangeSet.from_ranges(6, self.exclude[6])),
        }


@dataclass(frozen=True)
class Policy:
    """The resolved policy: what to block and what to allow, as CIDR lists sorted by address."""

    block: tuple[Cidr, ...]
    allow: tuple[Cidr, ...]

    def lines(self) -> Iterator[str]:
        """The ``--print-policy`` form: ``block <cidr>``/``allow <cidr>``, by address."""
        tagged = [(c, "block") for c in self.block] + [(c, "allow") for c in self.allow]
        tagged.sort()
        for cidr, kind in tagged:
            yield f"{kind} {cidr}"

    def summary(self) -> str:
        """How many entries each list holds, IPv4 and IPv6 apart where both are present."""
        return "the policy holds " + " and ".join(
            f"{count_by_family(getattr(self, kind))} {kind} entries" for kind in ("block", "allow")
        )


def count_by_family(cidrs: Iterable[Cidr]) -> str:
    """``12``, or ``12 (10 IPv4, 2 IPv6)`` where both families are present."""
    v4 = v6 = 0
    for cidr in cidrs:
        v4, v6 = (v4 + 1, v6) if cidr.family == 4 else (v4, v6 + 1)
    return split_count(v4, v6)


def split_count(v4: int, v6: int) -> str:
    """``12``, or ``12 (10 IPv4, 2 IPv6)`` where both families count."""
    return f"{v4 + v6} ({v4} IPv4, {v6} IPv6)" if v4 and v6 else str(v4 + v6)


class Dropped(int):
    """How many entries truncation dropped, an ``int`` that also says how many of each family:
    ``str()`` reads ``12 (10 IPv4, 2 IPv6)`` when both families lost entries, so every log line
    that prints the count says the split."""

    v4: int
    v6: int

    def __new__(cls, v4: int, v6: int) -> Dropped:
        dropped = super().__new__(cls, v4 + v6)
        dropped.v4, dropped.v6 = v4, v6
        return dropped

    def __getnewargs__(self) -> tuple[int, int]:  # type: ignore[override]  # copy and pickle
        return self.v4, self.v6

    def __str__(self) -> str:
        return split_count(self.v4, self.v6)


@dataclass(frozen=True)
class BuildReport:
    """What building a policy dropped, for the log and ``--search``: never fail silently.

    ``spared`` pairs each lifeline the block list covered with the block
    entry that listed it.
    """

    spared: tuple[tuple[Cidr, Cidr], ...]
    block_truncated: Dropped | int
    allow_truncated: Dropped | int

    @property
    def lifelines_spared(self) -> int:
        return len(self.spared)


def keep_broadest(cidrs: list[Cidr], limit: int) -> tuple[list[Cidr], int]:
    """Keep at most ``limit`` entries: the broadest first, then the lowest address.

    Broad entries cover the most addresses per slot of a device's limited
    group; the rule is stable, so a truncated policy does not churn between runs.
    """
    if len(cidrs) <= limit:
        return cidrs, 0
    kept = sorted(cidrs, key=lambda c: (c.prefixlen - BITS[c.family], c.family, c.network))[:limit]
    kept.sort()
    return kept, len(cidrs) - limit


def build_policy(
    block: dict[int, RangeSet],
    allow: dict[int, RangeSet],
    *,
    lifelines: Iterable[Cidr] = (),
    max_size: int | None = None,
    families: Collection[int] = (4, 6),
) -> tuple[Policy, BuildReport]:
    """Block minus allow minus lifelines, aggregated, then truncated to the device's size.

    ``max_size`` bounds the block list; the allow list gets a fifth of it, as
    the vendor's ts-iptables does.  Only the ``families`` the target takes
    compete for those slots: an IPv6 /32 must not push out the IPv4 entries
    of a device that never receives IPv6.  Entries of other families stay in
    the policy as they are, so the target can say what it skipped.
    """
    lifeline_list = list(lifelines)
    spared: list[tuple[Cidr, Cidr]] = []
    block_cidrs: list[Cidr] = []
    allow_cidrs: list[Cidr] = []
    for family in (4, 6):
        remaining = block[family].subtract(allow[family])
        protect = RangeSet.from_cidrs(lifeline_list, family)
        spared.extend(_listing(remaining, lifeline_list, family))
        block_cidrs.extend(remaining.subtract(protect).cidrs())
        allow_cidrs.extend(allow[family].cidrs())
    block_truncated: Dropped | int = 0
    allow_truncated: Dropped | int = 0
    if max_size is not None:
        block_cidrs, block_truncated = _truncate(block_cidrs, max_size, families)
        allow_cidrs, allow_truncated = _truncate(allow_cidrs, max(1, max_size // 5), families)
    policy = Policy(tuple(block_cidrs), tuple(allow_cidrs))
    return policy, BuildReport(tuple(spared), block_truncated, allow_truncated)


def _listing(block: RangeSet, lifelines: list[Cidr], family: int) -> Iterator[tuple[Cidr, Cidr]]:
    """Each lifeline of ``family`` that ``block`` covers in part, with the entry that lists it."""
    for lifeline in dict.fromkeys(c for c in lifelines if c.family == family):
        address = block.first_common(lifeline.network, lifeline.last)
        if address is not None:
            yield lifeline, block.cidr_containing(address)  # type: ignore[misc]


def _truncate(cidrs: list[Cidr], limit: int, families: Collection[int]) -> tuple[list[Cidr], Dropped]:
    """The target's families share ``limit``: IPv4 entries are kept first, then IPv6 fills what is
    left, each family by :func:`keep_broadest`.  IPv4 first: it carries most traffic and the
    device's ACLs block it today, so a growing IPv6 list never pushes out an IPv4 entry.  Entries
    of other families pass untouched."""
    taken = [c for c in cidrs if c.family in families]
    if len(taken) <= limit:
        return cidrs, Dropped(0, 0)
    kept: list[Cidr] = []
    dropped = {4: 0, 6: 0}
    for family in (4, 6):
        of_family = [c for c in taken if c.family == family]
        kept_family, dropped[family] = keep_broadest(of_family, max(0, limit - len(kept)))
        kept.extend(kept_family)
    kept.extend(c for c in cidrs if c.family not in families)
    kept.sort()
    return kept, Dropped(dropped[4], dropped[6])
