"""Decoders of bulk answers (A, AAAA, APL, TXT, PTR), straight from the wire.

dnspython's message parser builds an object per record and takes about six
times dig's time on 4,000-record answers; these slice columns in C where the
layout allows, and are checked against dnspython by the tests.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterator, Sequence

import dns.exception
import dns.name

from ts_isr.dnsfetch.wire import AAAA, APL, PTR, TXT, A, Malformed, Response, answer_rdata


def _u32_column(region: bytes, stride: int, offset: int, count: int, length: int = 4) -> array:
    """A big-endian field of ``count`` fixed-size records, sliced in C, as unsigned 32-bit values.

    A field shorter than 4 bytes (an APL address without its trailing zeros)
    lands in the high bytes, which restores the zeros.
    """
    packed = bytearray(4 * count)
    for byte in range(length):
        packed[byte::4] = region[offset + byte :: stride]
    values = array("I", packed)
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _a_fixed_layout(response: Response) -> array | None:
    """The common case, 16 bytes a record with a compressed owner: columns sliced in C, no loop."""
    count = response.counts[1]
    start = response.answer_offset
    region = response.wire[start : start + 16 * count]
    if len(region) != 16 * count or count == 0:
        return None
    zeros, ones = bytes(count), b"\x01" * count
    if (
        min(region[0::16]) < 0xC0
        or region[2::16] != zeros
        or region[3::16] != ones
        or region[4::16] != zeros
        or region[5::16] != ones
        or region[10::16] != zeros
        or region[11::16] != b"\x04" * count
    ):
        return None
    return _u32_column(region, 16, 12, count)


def a_addresses(response: Response) -> array:
    """The IPv4 addresses of the A records, as unsigned integers."""
    fast = _a_fixed_layout(response)
    if fast is not None:
        return fast
    wire = response.wire
    out = array("I")
    for start, end in answer_rdata(response, A):
        if end - start != 4:
            raise Malformed("A record that is not 4 bytes")
        out.append(int.from_bytes(wire[start:end], "big"))
    return out


def aaaa_addresses(response: Response) -> list[int]:
    wire = response.wire
    out = []
    for start, end in answer_rdata(response, AAAA):
        if end - start != 16:
            raise Malformed("AAAA record that is not 16 bytes")
        out.append(int.from_bytes(wire[start:end], "big"))
    return out


def _apl_item_pattern() -> re.Pattern[bytes]:
    """One well-formed IPv4 or IPv6 APL item, whole: family, prefix, N|length, that many bytes."""
    alternatives = [
        b"\\x00\\x%02x.[\\x%02x\\x%02x]" % (family, length, length | 0x80) + b"." * length
        for family, size in ((1, 4), (2, 16))
        for length in range(size + 1)
    ]
    return re.compile(b"|".join(alternatives), re.DOTALL)


_APL_ITEM = _apl_item_pattern()


def _apl_items_one_by_one(data: bytes) -> list[bytes]:
    """The general reading, item after item; any family, so unknown ones can be counted."""
    items = []
    offset, end = 0, len(data)
    while offset < end:
        if offset + 4 > end:
            raise Malformed("APL item header runs past its record")
        size = 4 + (data[offset + 3] & 0x7F)
        if offset + size > end:
            raise Malformed("APL address runs past its record")
        items.append(data[offset : offset + size])
        offset += size
    return items


def apl_rdatas(response: Response) -> list[bytes]:
    wire = response.wire
    return [wire[start:end] for start, end in answer_rdata(response, APL)]


def cut_apl_items(data: bytes) -> list[bytes]:
    """One APL record's items, raw: family (2 bytes), prefix, N|length, address.

    The regular expression cuts the record in C; it is only trusted when its
    items cover the record exactly (then they are the items a one-by-one
    reading finds, as each item's header fixes its length).
    """
    found = _APL_ITEM.findall(data)
    return found if sum(map(len, found)) == len(data) else _apl_items_one_by_one(data)


_HIGH_BIT_OFF = bytes(byte & 0x7F for byte in range(256))
Columns = tuple[array, bytes, bytes]  # addresses, prefix lengths, N|length bytes


def _uniform_v4_length(region: bytes) -> int | None:
    """The address length when ``region`` (whole records) is only IPv4 items of that one length."""
    if len(region) < 4:
        return None
    length = region[3] & 0x7F
    stride = 4 + length
    count = len(region) // stride
    if (
        length > 4
        or count * stride != len(region)
        or region[0::stride] != bytes(count)
        or region[1::stride] != b"\x01" * count
        or region[3::stride].translate(_HIGH_BIT_OFF) != bytes([length]) * count
    ):
        return None
    return length


def _v4_columns(region: bytes, length: int) -> Columns:
    stride = 4 + length
    count = len(region) // stride
    return _u32_column(region, stride, 4, count, length), region[2::stride], region[3::stride]


def v4_column_groups(records: list[bytes]) -> tuple[list[Columns], list[bytes]]:
    """Records made only of IPv4 items of one address length, as columns per length; the rest.

    Records whose lengths are multiples of the item size stay item-aligned
    when joined, so a whole answer is checked and sliced in C at once; only
    when that fails are records sorted one by one.
    """
    whole = b"".join(records)
    length = _uniform_v4_length(whole)
    if length is not None and not any(len(data) % (4 + length) for data in records):
        return [_v4_columns(whole, length)], []
    by_length: dict[int, list[bytes]] = {}
    others = []
    for data in records:
        length = _uniform_v4_length(data)
        if length is None:
            others.append(data)
        else:
            by_length.setdefault(length, []).append(data)
    return [_v4_columns(b"".join(group), length) for length, group in by_length.items()], others


def txt_strings(response: Response) -> list[bytes]:
    """Every character-string of every TXT record, as raw bytes."""
    wire = response.wire
    strings = []
    for start, end in answer_rdata(response, TXT):
        offset = start
        while offset < end:
            length = wire[offset]
            if offset + 1 + length > end:
                raise Malformed("TXT string runs past its record")
            strings.append(wire[offset + 1 : offset + 1 + length])
            offset += 1 + length
    return strings


def ptr_targets(response: Response) -> list[dns.name.Name]:
    targets = []
    for start, _end in answer_rdata(response, PTR):
        try:
            name, _ = dns.name.from_wire(response.wire, start)
        except dns.exception.DNSException as exc:
            raise Malformed(f"bad PTR target ({exc})") from None
        targets.append(name)
    return targets


def txt_tokens(strings: Sequence[bytes]) -> Iterator[bytes]:
    """Space-separated tokens; any other byte, control characters included, stays in its token."""
    for data in strings:
        for token in data.split(b" "):
            if token:
                yield token
