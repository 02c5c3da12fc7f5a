"""Member text of Cisco object-groups: parsing what a device prints, formatting what the tool sends.

Pure text in, addresses out.  A line is the tool's only in the exact form the
tool writes, so nothing the device printed is ever sent back as it was.
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ts_isr.policy import ipv4_value
from ts_isr.ranges import Cidr, int_to_text, range_to_cidrs

_V6_TEXT = re.compile(r"[0-9A-Fa-f:.]+", re.ASCII)  # no zone (``%eth0``), no brackets
_V6_PREFIX = re.compile(r"([0-9A-Fa-f:.]+)/([0-9]{1,3})", re.ASCII)


def ipv6_address(text: str) -> int | None:
    """An IPv6 address in any valid spelling (upper case, leading zeros, ``::``), or None."""
    if ":" not in text or not _V6_TEXT.fullmatch(text):
        return None
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def address_text(family: int, value: int) -> str:
    """What the tool writes: IPv6 in RFC 5952 form, no dotted tail (``::4000:0``, not ``::64.0.0.0``)."""
    return str(ipaddress.IPv6Address(value)) if family == 6 else int_to_text(4, value)


def mask_text(prefixlen: int) -> str:
    return int_to_text(4, (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF)


def mask_prefixlen(text: str) -> int | None:
    """The prefix length of a dotted netmask; None for a non-contiguous or malformed one."""
    mask = ipv4_value(text)
    if mask is None:
        return None
    inverted = ~mask & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


class Member(NamedTuple):
    """One address member line of a group, parsed: ``host X``, ``X MASK``, ``range A B`` or ``X/LEN``.

    A line is a member only when :meth:`text` rebuilds it exactly, so a
    removal sent back to the device is made of parsed values, never of the
    device's own text.  The tool writes ``host X`` for a single address and
    ``X MASK`` (IPv6: ``X/LEN``) for a wider network; any other line (a
    ``range``, an ``X 255.255.255.255``, an ``X/128``) is a user's.  IPv6
    text is read in any valid spelling and written canonically (RFC 5952).
    """

    form: str  # "host", "mask", "range" or "prefix" (IPv6 X/LEN)
    first: int
    last: int
    family: int = 4

    @classmethod
    def of(cls, cidr: Cidr) -> Member:
        if cidr.family == 6:
            return cls("host" if cidr.prefixlen == 128 else "prefix", cidr.network, cidr.last, 6)
        return cls("host" if cidr.prefixlen == 32 else "mask", cidr.network, cidr.last)

    @property
    def cidrs(self) -> tuple[Cidr, ...]:
        if self.first == self.last:  # a host: most members, by far
            return (Cidr(self.family, self.first, 32 if self.family == 4 else 128),)
        return tuple(range_to_cidrs(self.family, self.first, self.last))

    @property
    def in_tools_form(self) -> bool:
        """Written the way the tool writes members (see :meth:`of`); only such a line can be its own."""
        return self.form == "host" or (self.form in ("mask", "prefix") and self.first != self.last)

    def text(self) -> str:
        if self.form == "host":
            return f"host {address_text(self.family, self.first)}"
        if self.form == "prefix":
            prefixlen = 129 - (self.last - self.first + 1).bit_length()
            return f"{address_text(6, self.first)}/{prefixlen}"
        if self.form == "range":
            return f"range {int_to_text(4, self.first)} {int_to_text(4, self.last)}"
        prefixlen = 33 - (self.last - self.first + 1).bit_length()
        return f"{int_to_text(4, self.first)} {mask_text(prefixlen)}"


def parse_v6_member(words: list[str]) -> Member | None:
    """``host X`` or ``X/LEN`` with an IPv6 address in any spelling; None for anything else
    (a malformed address, a length past 128, host bits set: the user's line, never the tool's)."""
    if len(words) == 2 and words[0].lower() == "host":
        address = ipv6_address(words[1])
        return None if address is None else Member("host", address, address, 6)
    match = _V6_PREFIX.fullmatch(words[0]) if len(words) == 1 else None
    if match is None:
        return None
    address, prefixlen = ipv6_address(match.group(1)), int(match.group(2))
    if address is None or prefixlen > 128:
        return None
    hostmask = (1 << (128 - prefixlen)) - 1
    return None if address & hostmask else Member("prefix", address, address | hostmask, 6)


def parse_member(text: str) -> Member | None:
    """``host X``, ``X MASK``, ``range A B`` (IPv4, the device's exact form) or an IPv6 ``host X`` /
    ``X/LEN`` (any valid spelling); None for anything else."""
    words = text.split(" ")
    if ":" in text:
        return parse_v6_member(words)
    if len(words) == 2 and words[0] == "host":
        address = ipv4_value(words[1])
        return None if address is None else Member("host", address, address)
    if len(words) == 2:
        address, prefixlen = ipv4_value(words[0]), mask_prefixlen(words[1])
        if address is None or prefixlen is None:
            return None
        hostmask = (1 << (32 - prefixlen)) - 1
        return None if address & hostmask else Member("mask", address, address | hostmask)
    if len(words) == 3 and words[0] == "range":
        first, last = ipv4_value(words[1]), ipv4_value(words[2])
        if first is None or last is None or first > last:
            return None
        return Member("range", first, last)
    return None


@dataclass(frozen=True)
class GroupContents:
    """One object-group as read: each network it holds, with every member line that covers it.

    ``others`` are the lines this tool never manages: description,
    group-object, any, objects, anything not a well-formed address member.
    ``held_by_user`` are the networks a line in a form the tool never writes
    covers (a ``range``, an ``X 255.255.255.255``): a user's line, so the
    tool removes them only in an exclusive group.
    """

    members: Mapping[Cidr, tuple[Member, ...]]
    others: tuple[str, ...]
    held_by_user: frozenset[Cidr] = frozenset()

    @property
    def cidrs(self) -> frozenset[Cidr]:
        return frozenset(self.members)


ABSENT = GroupContents(members={}, others=())


def group_body(text: str, header: str, next_group: re.Pattern[str]) -> list[str] | None:
    """The stripped lines after ``header`` up to the next group's header; None without ``header``.

    ``next_group`` is matched on the line as printed: members are indented,
    so a description that reads like a header never ends the group.
    """
    lines = text.splitlines()
    wanted = header.lower()
    start = next((n for n, line in enumerate(lines) if line.strip().lower() == wanted), None)
    if start is None:
        return None
    body = []
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        if next_group.match(line):
            break
        body.append(line.strip())
    return body


def parse_members(lines: Iterable[str], prefix: str) -> GroupContents:
    """Member lines (already stripped) into networks; what is not an address member is the user's."""
    members: dict[Cidr, list[Member]] = {}
    others: list[str] = []
    users: set[Cidr] = set()
    hosts = prefix + "host "
    for line in lines:
        # ``host a.b.c.d``, nearly every line of a policy's group, skips the general parse.
        address = ipv4_value(line[len(hosts) :]) if line.startswith(hosts) else None
        if address is not None:
            members.setdefault(Cidr(4, address, 32), []).append(Member("host", address, address))
            continue
        member = parse_member(line[len(prefix) :]) if line.startswith(prefix) else None
        if member is None:
            others.append(line)
            continue
        for cidr in member.cidrs:
            members.setdefault(cidr, []).append(member)
        if not member.in_tools_form:
            users.update(member.cidrs)
    return GroupContents(
        members={cidr: tuple(lines) for cidr, lines in members.items()},
        others=tuple(others),
        held_by_user=frozenset(users),
    )


def removal_lines(
    contents: GroupContents, remove: Iterable[Cidr], keep: frozenset[Cidr], *, users_lines: bool
) -> tuple[list[Cidr], list[tuple[Member, frozenset[Cidr]]]]:
    """The members whose removal takes ``remove`` out, each with the networks it takes.

    Every line covering a network goes, so none is left behind to hold it;
    a line in a form the tool never writes only with ``users_lines``
    (exclusive groups).  A ``range`` covers several networks, so those in
    ``keep`` that no other line still holds come back first as single
    members (returned as additions, sent before).
    """
    taken: dict[Member, None] = {}
    for cidr in remove:
        for member in contents.members.get(cidr, ()):
            if users_lines or member.in_tools_form:
                taken[member] = None
    gone = {cidr for member in taken for cidr in member.cidrs}
    # A network kept but held only by lines that go: sent again as a single member.
    readd = sorted(cidr for cidr in gone & keep if all(m in taken for m in contents.members[cidr]))
    return readd, [(member, frozenset(member.cidrs)) for member in taken]


def never_empty(
    present: frozenset[Cidr], removals: Iterable[tuple[str, frozenset[Cidr]]], other_members: bool
) -> tuple[list[str], list[str]]:
    """The removals to send, and those held back so that the group keeps a member.

    ``present`` is what the group holds once the additions are in; a group
    used by an ACL may not be emptied, and an empty block group blocks nothing.
    """
    if other_members:
        return [line for line, _ in removals], []
    left = set(present)
    send, held = [], []
    for line, cidrs in removals:
        if left - cidrs:
            left -= cidrs
            send.append(line)
        else:
            held.append(line)
    return send, held


class Dialect(ABC):
    """What differs between IOS and ASA: member prefix, group types, how a group is read, session settings.

    ``v6`` names an IPv6-only group (IOS ``object-group v6-network``); the
    ASA holds both families in one ``object-group network``.
    """

    name: str
    device_type: str  # netmiko's
    member_prefix: str
    session_commands: tuple[str, ...] = ()  # terminal settings netmiko does not make in privileged EXEC

    @abstractmethod
    def read_commands(self, group: str) -> tuple[str, ...]:
        """Commands that show one group, the preferred first (the next is tried on ``% Invalid input``)."""

    @abstractmethod
    def parse_group(self, group: str, text: str, v6: bool = False) -> GroupContents:
        """The group in the output of a read command."""

    def group_type(self, v6: bool = False) -> str:
        """The word after ``object-group`` that creates or enters the group."""
        return "v6-network" if v6 else "network"

    def line(self, member: Member) -> str:
        """The configuration line of ``member`` inside the group."""
        return self.member_prefix + member.text()

    def member_line(self, cidr: Cidr) -> str:
        """The configuration line that adds ``cidr`` inside the group."""
        return self.line(Member.of(cidr))
