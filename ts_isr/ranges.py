"""Sets of IP addresses as sorted, disjoint integer ranges.

Policies hold up to a million entries; integer ranges in compact arrays keep
aggregation and allow-list subtraction linear and small, where a million
``ipaddress`` objects would not be.  Everything here is pure.
"""

from __future__ import annotations

import functools
import socket
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import NamedTuple

BITS = {4: 32, 6: 128}


class Cidr(NamedTuple):
    """One network, ordered by family, then address, then prefix length."""

    family: int
    network: int
    prefixlen: int

    @property
    def last(self) -> int:
        return self.network | ((1 << (BITS[self.family] - self.prefixlen)) - 1)

    def address_text(self) -> str:
        return int_to_text(self.family, self.network)

    def __str__(self) -> str:
        return cidr_text(self)


@functools.lru_cache(maxsize=8192)  # a fleet writes the same policy into every device's records
def cidr_text(cidr: Cidr) -> str:
    return f"{int_to_text(cidr.family, cidr.network)}/{cidr.prefixlen}"


def int_to_text(family: int, value: int) -> str:
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def _new_store(family: int) -> array | list:
    # 32-bit addresses fit an unsigned int array; IPv6 needs Python ints.
    return array("I") if family == 4 else []


def range_to_cidrs(family: int, start: int, end: int) -> Iterator[Cidr]:
    """The fewest CIDR blocks that cover exactly [start, end]."""
    bits = BITS[family]
    while start <= end:
        # Largest block aligned at start, then shrink it until it fits.
        size_bits = (start & -start).bit_length() - 1 if start else bits
        span_bits = (end - start + 1).bit_length() - 1
        size_bits = min(size_bits, span_bits)
        yield Cidr(family, start, bits - size_bits)
        start += 1 << size_bits


class RangeSet:
    """An immutable set of addresses of one family, kept as merged ranges."""

    __slots__ = ("_ends", "_starts", "family")

    def __init__(self, family: int, starts: array | list, ends: array | list) -> None:
        # Trusted constructor: starts/ends sorted, disjoint, non-adjacent.
        self.family = family
        self._starts = starts
        self._ends = ends

    @classmethod
    def empty(cls, family: int) -> RangeSet:
        return cls(family, _new_store(family), _new_store(family))

    @classmethod
    def from_ranges(cls, family: int, ranges: Iterable[tuple[int, int]]) -> RangeSet:
        """Sort, deduplicate and merge overlapping or adjacent ranges."""
        if family == 4:
            return cls.from_packed_v4((start << 32) | end for start, end in ranges)
        return cls._merged(family, sorted(ranges))

    @classmethod
    def from_packed_v4(cls, keys: Iterable[int]) -> RangeSet:
        """IPv4 ranges packed as ``(start << 32) | end``: a million entries sort in a third
        of the memory (and time) a list of tuples would take."""
        ordered = sorted(keys)
        return cls._merged(4, ((k >> 32, k & 0xFFFFFFFF) for k in ordered))

    @classmethod
    def _merged(cls, family: int, pairs: Iterable[tuple[int, int]]) -> RangeSet:
        """Sorted ranges merged where they overlap or touch."""
        starts, ends = _new_store(family), _new_store(family)
        cur_start = cur_end = -2
        for start, end in pairs:
            if start <= cur_end + 1:
                if end > cur_end:
                    cur_end = end
                continue
            if cur_end >= 0:
                starts.append(cur_start)
                ends.append(cur_end)
            cur_start, cur_end = start, end
        if cur_end >= 0:
            starts.append(cur_start)
            ends.append(cur_end)
        return cls(family, starts, ends)

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[Cidr], family: int) -> RangeSet:
        return cls.from_ranges(family, ((c.network, c.last) for c in cidrs if c.family == family))

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends)

    def __len__(self) -> int:
        """Number of disjoint ranges (not addresses)."""
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return (
            self.family == other.family
            and list(self._starts) == list(other._starts)
            and list(self._ends) == list(other._ends)
        )

    def __repr__(self) -> str:
        return f"RangeSet(family={self.family}, ranges={len(self)})"

    def __contains__(self, address: int) -> bool:
        i = bisect_right(self._starts, address) - 1
        return i >= 0 and address <= self._ends[i]

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, end) - 1
        return i >= 0 and self._ends[i] >= start

    def cidr_containing(self, address: int) -> Cidr | None:
        """The network of the set's fewest-CIDR form that holds ``address``: how a list names it."""
        i = bisect_right(self._starts, address) - 1
        if i < 0 or address > self._ends[i]:
            return None
        return next(
            c for c in range_to_cidrs(self.family, self._starts[i], self._ends[i]) if c.last >= address
        )

    def first_common(self, start: int, end: int) -> int | None:
        """The lowest address of [start, end] in the set, or None."""
        i = bisect_right(self._starts, end) - 1
        if i < 0 or self._ends[i] < start:
            return None
        j = bisect_right(self._starts, start) - 1
        return start if j >= 0 and self._ends[j] >= start else self._starts[j + 1]

    def covers(self, start: int, end: int) -> bool:
        """Whether every address from ``start`` to ``end`` is in the set (ranges are merged)."""
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def subtract(self, other: RangeSet) -> RangeSet:
        """Self minus other: a hole costs a split, not an explosion.

        Ranges that no cut touches are copied in slices (C speed); only ranges
        a cut overlaps are visited, so a few lifelines or a small allow list
        cost next to nothing on a million-entry block list.
        """
        if not other or not self:
            return self
        starts, ends = self._starts, self._ends
        count = len(starts)
        out_starts, out_ends = _new_store(self.family), _new_store(self.family)
        i, current = 0, starts[0]  # range i, its start raised by cuts already made
        for cut_start, cut_end in other.ranges():
            first = bisect_left(ends, cut_start, i)
            if first > i:
                out_starts.append(current)
                out_ends.append(ends[i])
                out_starts.extend(starts[i + 1 : first])
                out_ends.extend(ends[i + 1 : first])
                i = first
                if i == count:
                    break
                current = starts[i]
            while i < count and current <= cut_end:
                if current < cut_start:
                    out_starts.append(current)
                    out_ends.append(cut_start - 1)
                if ends[i] > cut_end:
                    current = cut_end + 1
                    break
                i += 1
                if i < count:
                    current = starts[i]
            if i == count:
                break
        if i < count:
            out_starts.append(current)
            out_ends.append(ends[i])
            out_starts.extend(starts[i + 1 :])
            out_ends.extend(ends[i + 1 :])
        return RangeSet(self.family, out_starts, out_ends)

    def cidrs(self) -> Iterator[Cidr]:
        family, bits = self.family, BITS[self.family]
        # tuple.__new__ skips the NamedTuple's Python-level __new__: half the
        # cost of a million-entry policy's Cidr objects.
        new = tuple.__new__
        for start, end in zip(self._starts, self._ends):
            size = end - start + 1
            if not size & (size - 1) and not start & (size - 1):
                # Already one aligned block (every host, most networks): no generator.
                yield new(Cidr, (family, start, bits + 1 - size.bit_length()))
            else:
                yield from range_to_cidrs(family, start, end)
