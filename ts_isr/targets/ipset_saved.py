"""What ``ipset save`` prints, read strictly: our sets' types, families and members.

Root decides from it what the kernel holds, so a member that is not an
address, or a line tsadmin never writes, is refused in one line rather than
guessed at; the host's own sets are skipped unread.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Collection
from dataclasses import dataclass, field

from ts_isr.errors import DeviceError
from ts_isr.linux.names import Names
from ts_isr.log import escape
from ts_isr.ranges import BITS, Cidr
from ts_isr.targets.base import KINDS, Members

_CREATE = re.compile(r"create (\S+) (hash:ip|hash:net) family (inet6?) (.*)")
_SOCKET_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


@dataclass
class SetState:
    """One set as ``ipset save`` shows it: its type, family and members (None: not read, only its
    header, or changed in place since)."""

    hash_type: str
    family: int
    members: Collection[Cidr] | None = field(default_factory=set)


def _not_an_address(text: str) -> DeviceError:
    return DeviceError(f"ipset printed a member that is not an address: {escape(text, 80)}")


def parse_entry(text: str, family: int) -> Cidr:
    """One member as ipset prints it (``a.b.c.d[/len]`` or IPv6), strictly: inet_pton, canonical length.

    inet_pton refuses short forms, leading zeros and spaces; host bits set
    under the length are refused too, as ipset never prints them.
    """
    bits = BITS[family]
    if "/" not in text:  # a host: nearly every member of a policy, so the short path
        try:
            return Cidr(family, int.from_bytes(socket.inet_pton(_SOCKET_FAMILY[family], text), "big"), bits)
        except OSError:
            raise _not_an_address(text) from None
    address, slash, length = text.partition("/")
    try:
        value = int.from_bytes(socket.inet_pton(_SOCKET_FAMILY[family], address), "big")
    except OSError:
        value = -1
    prefixlen = bits
    if slash:
        canonical = length.isascii() and length.isdigit() and str(int(length)) == length
        prefixlen = int(length) if canonical else -1
    if value < 0 or not 0 < prefixlen <= bits or value & ((1 << (bits - prefixlen)) - 1):
        raise _not_an_address(text)
    return Cidr(family, value, prefixlen)


def parse_save(text: str, ours: frozenset[str]) -> dict[str, SetState]:
    """Our sets from ``ipset save`` output; other sets are the host's and are skipped, unread."""
    sets: dict[str, SetState] = {}
    members: dict[str, set[Cidr]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        verb, _, rest = line.partition(" ")
        name, _, value = rest.partition(" ")
        if name not in ours:
            continue
        create = _CREATE.fullmatch(line) if verb == "create" else None
        if verb == "add" and name in sets and value and " " not in value:
            members[name].add(parse_entry(value, sets[name].family))
        elif create:
            family = 6 if create.group(3) == "inet6" else 4
            members[name] = set()
            sets[name] = SetState(create.group(2), family, members[name])
        else:
            raise DeviceError(
                f"ipset save line {number} is not what tsadmin writes: {escape(line, 120)}; "
                f"someone changed the set by hand: run tsadmin remove, then tsadmin add"
            )
    return sets


def members_of(sets: dict[str, SetState], names: Names) -> Members:
    """What each list holds: the union of its address and network sets of both families."""
    held: dict[str, set[Cidr]] = {kind: set() for kind in KINDS}
    for spec in names.sets:
        if spec.name in sets:
            members = sets[spec.name].members
            if members is None:
                raise DeviceError(f"ipset {spec.name} was not read back: read the sets before their members")
            held[spec.kind].update(members)
    return {kind: frozenset(members) for kind, members in held.items()}
