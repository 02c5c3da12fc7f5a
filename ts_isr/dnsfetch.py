"""The ThreatSTOP policy over DNS: the project's reading of the vendor's format, kept in this one module.

The vendor does not publish its client, so this is the project's assumption
(from ../shared/notes/threatstop-protocol.md), to be changed here alone when a
real capture shows otherwise:

1. ``PTR <list>``: each target is a part of the list; no PTR answer means the
   list is its own only part.  Parts may point further (at most
   :data:`MAX_DEPTH` levels); a name already seen is not fetched again, so a
   loop ends.  A name with PTR records is an index only: its other records are not used.
2. Each part: ``APL`` items give networks (``1:`` IPv4, ``2:`` IPv6) and a
   negated item is an exclusion inside that list, never a block.  No APL:
   ``A`` and ``AAAA`` records, each one host.  Neither: ``TXT`` strings holding
   space-separated ``a.b.c.d[/len]`` or ``1:a.b.c.d/len`` tokens.
3. Every entry goes through :class:`ts_isr.policy.ListBuilder` as integers;
   anything else is counted, logged (escaped) and dropped.
4. A list is fetched whole from one server.  Any part that fails (timeout,
   SERVFAIL, NXDOMAIN, REFUSED, a referral, a malformed answer, no data at
   all) fails the list at that server; the next server is tried; when all
   fail, :class:`FetchError`.  One server gets at most :func:`server_deadline`.

Transport: TCP only (answers are up to 64 KiB).  All questions of one level
of the index go down one connection at once, as RFC 7766 allows, so a distant
server costs about one round trip per level rather than one per part.  Bulk
answers are decoded straight from the wire: dnspython's message parser builds
an object per record and takes about six times dig's time on 4,000-record
answers; the decoders below are checked against it by the tests.
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import struct
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar, cast

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from ts_isr.errors import FetchError
from ts_isr.log import escape, log
from ts_isr.policy import ListBuilder

A, NS, SOA, PTR, TXT, AAAA, APL = 1, 2, 6, 12, 16, 28, 42
PART_TYPES = (PTR, APL, A, AAAA, TXT)
IN = 1
MAX_DEPTH = 4
MAX_PARTS = 5000
FALLBACK_PORT = 5353
# Questions in flight on one connection: enough to fill a long pipe, few enough
# that our queries always fit the server's receive buffer (no send/recv deadlock).
WINDOW = 64
# Hard bound for one server, whatever it trickles: a server that sends one answer
# just inside each timeout costs seconds, not minutes, before the next is tried.
MIN_SERVER_DEADLINE = 30.0
DEADLINE_TIMEOUTS = 6
DROPPED_SAMPLES = 5
MAX_FRUITLESS_CONNECTIONS = 3

_HEADER = struct.Struct(">HHHHHH")
_RR = struct.Struct(">HHIH")
_FLAG_QR, _FLAG_AA, _FLAG_TC = 0x8000, 0x0400, 0x0200
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")


class ServerError(Exception):
    """This server could not give a whole, trustworthy answer; another server may."""


class Malformed(ServerError):
    """The answer is not a well-formed DNS message."""


# --- Pure wire decoding --------------------------------------------------------------------------


def skip_name(wire: bytes, offset: int) -> int:
    """Offset just past a (possibly compressed) domain name."""
    end = len(wire)
    while True:
        if offset >= end:
            raise Malformed("name runs past the end of the message")
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length & 0xC0:
            raise Malformed("unknown label type")
        offset += length + 1


@dataclass(frozen=True)
class Response:
    """One answer, header decoded, sections located but not yet read."""

    wire: bytes
    ident: int
    flags: int
    counts: tuple[int, int, int, int]
    answer_offset: int

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F

    @property
    def authoritative(self) -> bool:
        return bool(self.flags & _FLAG_AA)


def parse_response(wire: bytes) -> Response:
    if len(wire) < _HEADER.size:
        raise Malformed("answer shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if not flags & _FLAG_QR:
        raise Malformed("a query where an answer was expected")
    if flags & _FLAG_TC:
        raise Malformed("truncated answer over TCP")
    offset = _HEADER.size
    for _ in range(qdcount):
        offset = skip_name(wire, offset) + 4
    return Response(wire, ident, flags, (qdcount, ancount, nscount, arcount), offset)


def question_wire(name: dns.name.Name, rtype: int) -> bytes:
    """The question section as sent; an answer must echo it (case aside, RFC 4343)."""
    return name.to_wire() + struct.pack(">HH", rtype, IN)


def query_wire(ident: int, question: bytes) -> bytes:
    """A standard query with recursion desired, framed for TCP; built by hand, it costs nothing."""
    message = _HEADER.pack(ident, 0x0100, 1, 0, 0, 0) + question
    return len(message).to_bytes(2, "big") + message


def echoes(response: Response, question: bytes) -> bool:
    return response.counts[0] == 1 and response.wire[_HEADER.size : response.answer_offset].lower() == (
        question.lower()
    )


def _walk(wire: bytes, offset: int, count: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(owner offset, type, class, rdata start, rdata end) of ``count`` records from ``offset``."""
    end = len(wire)
    for _ in range(count):
        owner = offset
        offset = skip_name(wire, offset)
        if offset + _RR.size > end:
            raise Malformed("record header runs past the end of the message")
        rtype, rclass, _ttl, rdlength = _RR.unpack_from(wire, offset)
        start = offset + _RR.size
        offset = start + rdlength
        if offset > end:
            raise Malformed("record data runs past the end of the message")
        yield owner, rtype, rclass, start, offset


def answer_rdata(response: Response, rtype: int) -> list[tuple[int, int]]:
    """(start, end) of each answer record of ``rtype`` in class IN; other records are ignored."""
    return [
        (start, end)
        for _, t, c, start, end in _walk(response.wire, response.answer_offset, response.counts[1])
        if t == rtype and c == IN
    ]


def is_referral(response: Response) -> bool:
    """No answer, not authoritative, NS records in authority: the server sent us elsewhere."""
    if response.counts[1] or response.authoritative or not response.counts[2]:
        return False
    wire = response.wire
    offset = response.answer_offset
    records = list(_walk(wire, offset, response.counts[2]))
    return any(t == NS for _, t, _, _, _ in records)


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


# --- Transport --------------------------------------------------------------------------------


def server_deadline(timeout: float) -> float:
    """How long one server may take for all its answers: 30 s, more only with a long ``dns_timeout``."""
    return max(MIN_SERVER_DEADLINE, DEADLINE_TIMEOUTS * timeout)


class DnsConnection:
    """One TCP connection to one server, questions pipelined on it (RFC 7766, 6.2.1.1)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.deadline_seconds = server_deadline(timeout)
        self.deadline = time.monotonic() + self.deadline_seconds
        self._sock, self._reader = self._open()

    def _open(self) -> tuple[socket.socket, BinaryIO]:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, sock.makefile("rb", buffering=1 << 18)

    def _reconnect(self) -> None:
        self.close()
        try:
            self._sock, self._reader = self._open()
        except OSError as exc:
            raise ServerError(f"cannot reconnect ({_reason(exc)})") from None

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def _read_exact(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ServerError(f"no whole answer within {self.deadline_seconds:.0f}s")
        self._sock.settimeout(min(self.timeout, remaining))
        if _QUICKACK is not None:
            # Acknowledge at once: a server that sends small answers with Nagle's
            # algorithm would otherwise wait out our delayed ACK (40 ms) each time.
            self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        try:
            data = self._reader.read(size)
        except TimeoutError:
            raise ServerError(f"no answer within {self.timeout:g}s") from None
        if len(data) < size:
            raise EOFError
        return data

    def _send(self, ident: int, question: bytes) -> None:
        self._sock.settimeout(self.timeout)
        self._sock.sendall(query_wire(ident, question))

    def exchange(self, questions: Sequence[tuple[dns.name.Name, int]]) -> list[Response]:
        """Ask every question, up to :data:`WINDOW` in flight; answers in the order of the questions."""
        wires = [question_wire(name, rtype) for name, rtype in questions]
        results: list[Response | None] = [None] * len(questions)
        base = random.randrange(0x10000)
        queue = deque(range(len(questions)))
        pending: dict[int, int] = {}
        fruitless_connections = 0
        while queue or pending:
            try:
                while queue and len(pending) < WINDOW:
                    index = queue.popleft()
                    ident = (base + index) & 0xFFFF
                    pending[ident] = index
                    self._send(ident, wires[index])
                (length,) = struct.unpack(">H", self._read_exact(2))
                response = parse_response(self._read_exact(length))
            except (EOFError, ConnectionError) as exc:
                # The server may close between answers (RFC 7766 lets it, and a reset
                # loses answers not yet read): ask again on a new connection, but only
                # while connections keep giving answers.
                fruitless_connections += 1
                if fruitless_connections > MAX_FRUITLESS_CONNECTIONS:
                    raise ServerError(f"connection closed ({type(exc).__name__})") from None
                queue.extendleft(sorted(pending.values(), reverse=True))
                pending.clear()
                self._reconnect()
                continue
            except OSError as exc:
                raise ServerError(f"connection failed ({_reason(exc)})") from None
            index = pending.pop(response.ident, -1)
            if index < 0:
                raise Malformed("answer to a question that was not asked")
            if not echoes(response, wires[index]):
                raise Malformed("answer does not match its question")
            results[index] = response
            fruitless_connections = 0
        return cast(list[Response], results)


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def with_failover(
    servers: Sequence[str],
    port: int,
    timeout: float,
    work: Callable[[DnsConnection], T],
    what: str,
    fallback_port: int = FALLBACK_PORT,
) -> T:
    """``work`` on the first server that does it whole: configured port, then 5353 if unreachable.

    A server that answers but fails (timeout, SERVFAIL, NXDOMAIN...) is not
    asked again on 5353: the port works, the data does not.
    """
    problems = []
    for server in servers:
        ports = [port] if port == fallback_port else [port, fallback_port]
        for attempt in ports:
            try:
                connection = DnsConnection(server, attempt, timeout)
            except OSError as exc:
                problems.append(f"{server} port {attempt}: {_reason(exc)}")
                continue
            try:
                return work(connection)
            except ServerError as exc:
                problems.append(f"{server} port {attempt}: {exc}")
                log.warning(f"DNS server {server} port {attempt} failed {what}: {exc}; trying the next")
                break
            finally:
                connection.close()
    raise FetchError(
        f"cannot get {what} from any DNS server ({'; '.join(problems) or 'none configured'}); "
        "check dns_server and port in the config, and that this host's public IP is registered"
    )


def check_rcode(response: Response, name: dns.name.Name, rtype: int) -> None:
    rcode = response.rcode
    if rcode == dns.rcode.NXDOMAIN:
        raise ServerError(f"{name.to_text(omit_final_dot=True)} does not exist (NXDOMAIN)")
    if rcode != dns.rcode.NOERROR:
        raise ServerError(
            f"{dns.rcode.to_text(rcode)} for {name.to_text(omit_final_dot=True)} "
            f"{dns.rdatatype.to_text(rtype)}"
        )
    if is_referral(response):
        raise ServerError(f"not authoritative for {name.to_text(omit_final_dot=True)} (a referral)")


# --- The list reading ------------------------------------------------------------------------


@dataclass
class FetchedList:
    """One list as read from DNS: its entries (in ``builder``), its parts, and what was dropped."""

    name: str
    builder: ListBuilder
    parts: int = 0
    loops: int = 0
    server: str = ""
    host: str = ""
    dropped_samples: list[str] = field(default_factory=list)

    @property
    def results(self) -> int:
        return self.builder.accepted - self.builder.excluded


def _note_dropped(fetched: FetchedList, text: str) -> None:
    if len(fetched.dropped_samples) < DROPPED_SAMPLES:
        fetched.dropped_samples.append(escape(text, 80))
    log.debug(f"list {fetched.name}: dropped {escape(text, 120)}")


def add_apl_items(fetched: FetchedList, items: list[bytes]) -> None:
    """APL items into the list; an unknown family or an over-long address is counted and dropped.

    The address is the item's bytes after its 4-byte header, trailing zero
    bytes omitted (RFC 3123): shifting restores them.  Hot loop: kept flat.
    """
    builder = fetched.builder
    add = builder.add
    from_bytes = int.from_bytes
    for item in items:
        size = len(item)
        invalid = builder.invalid
        if item[0] == 0 and item[1] == 1 and size <= 8:
            add(4, from_bytes(item[4:]) << (64 - 8 * size), item[2], item[3] > 0x7F)
        elif item[0] == 0 and item[1] == 2 and size <= 20:
            add(6, from_bytes(item[4:]) << (160 - 8 * size), item[2], item[3] > 0x7F)
        else:
            builder.invalid += 1
        if builder.invalid == invalid:
            continue
        family, negation = (item[0] << 8) | item[1], "!" if item[3] > 0x7F else ""
        _note_dropped(fetched, f"APL item {negation}{family}:/{item[2]} of {size - 4} address bytes")


def add_apl_v4(fetched: FetchedList, addresses: array, prefixes: bytes, flags: bytes) -> None:
    """A column group into the list: in one call when its items share prefix and negation."""
    builder = fetched.builder
    count = len(prefixes)
    if count and prefixes == prefixes[:1] * count and flags == flags[:1] * count:
        prefixlen, negated = prefixes[0], flags[0] > 0x7F
        if prefixlen == 32 and not negated:
            builder.add_v4_hosts(addresses)  # hosts, exactly as A records give them
            return
        invalid = builder.invalid
        builder.add_v4_networks(addresses, prefixlen, negated)
        if builder.invalid > invalid:
            _note_dropped(fetched, f"{count} APL items {'!' if negated else ''}1:/{prefixlen}")
        return
    add = builder.add
    for address, prefixlen, flag in zip(addresses, prefixes, flags):
        invalid = builder.invalid
        if not add(4, address, prefixlen, flag > 0x7F) and builder.invalid > invalid:
            _note_dropped(fetched, f"APL item {'!' if flag > 0x7F else ''}1:/{prefixlen}")


def read_part(fetched: FetchedList, answers: dict[int, Response], name: dns.name.Name) -> None:
    """One part's data into its list, by the reading's order: APL, else A/AAAA, else TXT.

    A part with no data at all (no records, or TXT with only empty strings)
    is likelier a server mid-transfer than a policy: it fails this server.
    """
    builder = fetched.builder
    records = apl_rdatas(answers[APL])
    if records:
        groups, others = v4_column_groups(records)
        for columns in groups:
            add_apl_v4(fetched, *columns)
        add_apl_items(fetched, [item for data in others for item in cut_apl_items(data)])
        return
    hosts = a_addresses(answers[A])
    hosts6 = aaaa_addresses(answers[AAAA])
    if hosts or hosts6:
        builder.add_v4_hosts(hosts)
        for address in hosts6:
            builder.add(6, address, 128)
        return
    tokens = 0
    for token in txt_tokens(txt_strings(answers[TXT])):
        tokens += 1
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            builder.invalid += 1
            _note_dropped(fetched, token.decode("latin-1"))
            continue
        invalid = builder.invalid
        if not builder.add_token(text) and builder.invalid > invalid:
            _note_dropped(fetched, text)
    if not tokens:
        raise ServerError(
            f"part {name.to_text(omit_final_dot=True)} has no data (no APL, A, AAAA or TXT entries); "
            "the server may be part way through a zone transfer"
        )


def fetch_from(
    connection: DnsConnection, names: Sequence[str], min_prefix: dict[int, int]
) -> dict[str, FetchedList]:
    """Every list in ``names`` from this one server, level by level of the PTR index."""
    lists = {name: FetchedList(name, ListBuilder(min_prefix=dict(min_prefix))) for name in names}
    seen: dict[str, set[dns.name.Name]] = {}
    # (name to ask, its list, its ancestors in the index)
    frontier: list[tuple[dns.name.Name, str, tuple[dns.name.Name, ...]]] = []
    for list_name in names:
        root = dns.name.from_text(list_name)
        seen[list_name] = {root}
        frontier.append((root, list_name, ()))
    while frontier:
        questions = [(name, rtype) for name, _, _ in frontier for rtype in PART_TYPES]
        responses = connection.exchange(questions)
        next_frontier = []
        for position, (name, list_name, path) in enumerate(frontier):
            fetched = lists[list_name]
            answers = dict(zip(PART_TYPES, responses[position * len(PART_TYPES) :]))
            for rtype, response in answers.items():
                check_rcode(response, name, rtype)
            targets = ptr_targets(answers[PTR])
            if not targets:
                fetched.parts += 1
                if fetched.parts > MAX_PARTS:
                    raise ServerError(f"list {list_name} has more than {MAX_PARTS} parts")
                read_part(fetched, answers, name)
                continue
            if len(path) >= MAX_DEPTH:
                raise ServerError(f"list {list_name} points deeper than {MAX_DEPTH} levels at {name}")
            for target in targets:
                if target in path or target == name:
                    fetched.loops += 1
                    continue
                if target not in seen[list_name]:
                    seen[list_name].add(target)
                    next_frontier.append((target, list_name, (*path, name)))
        frontier = next_frontier
    server = f"{connection.host} port {connection.port}"
    for fetched in lists.values():
        fetched.server, fetched.host = server, connection.host
    return lists


def fetch_lists(
    names: Sequence[str],
    servers: Sequence[str],
    *,
    port: int = 53,
    timeout: float = 5.0,
    min_prefix: dict[int, int] | None = None,
    fallback_port: int = FALLBACK_PORT,
) -> dict[str, FetchedList]:
    """All the named lists, whole, from the first server that gives them whole."""
    prefixes = min_prefix or {4: 8, 6: 16}
    return with_failover(
        servers,
        port,
        timeout,
        lambda c: fetch_from(c, names, prefixes),
        f"the lists {', '.join(names)}",
        fallback_port,
    )


# --- Name server upkeep ----------------------------------------------------------------------


def full_message(response: Response) -> dns.message.Message:
    """dnspython's reading of a small answer (SOA, NS, addresses); a bad one fails this server only."""
    try:
        return dns.message.from_wire(response.wire)
    except dns.exception.DNSException as exc:
        raise Malformed(f"unreadable answer ({type(exc).__name__}: {exc})") from None


def zone_of(connection: DnsConnection, name: dns.name.Name) -> dns.name.Name:
    """The zone holding ``name``: the owner of the SOA that answers (apex) or is in authority (below)."""
    (response,) = connection.exchange([(name, SOA)])
    check_rcode(response, name, SOA)
    message = full_message(response)
    for rrset in (*message.answer, *message.authority):
        if rrset.rdtype == SOA:
            return rrset.name
    raise ServerError(f"no SOA for {name.to_text(omit_final_dot=True)}: cannot tell its zone")


def _usable(address: Address) -> bool:
    return not (address.is_unspecified or address.is_multicast or address.is_reserved)


def name_servers_from(connection: DnsConnection, list_name: str) -> tuple[dns.name.Name, list[Address]]:
    """The policy zone and the addresses of its NS set, glue first, then asked for by name."""
    zone = zone_of(connection, dns.name.from_text(list_name))
    (response,) = connection.exchange([(zone, NS)])
    check_rcode(response, zone, NS)
    message = full_message(response)
    targets = [rdata.target for rrset in message.answer if rrset.rdtype == NS for rdata in rrset]
    if not targets:
        raise ServerError(f"no NS records for {zone.to_text(omit_final_dot=True)}")
    glue: dict[dns.name.Name, list[Address]] = {}
    for rrset in message.additional:
        if rrset.rdtype in (A, AAAA):
            glue.setdefault(rrset.name, []).extend(ipaddress.ip_address(r.address) for r in rrset)
    missing = [(target, rtype) for target in targets if target not in glue for rtype in (A, AAAA)]
    for (target, _), answer in zip(missing, connection.exchange(missing) if missing else []):
        if answer.rcode != dns.rcode.NOERROR:
            continue
        glue.setdefault(target, []).extend(ipaddress.ip_address(r.address) for r in _address_rdatas(answer))
    addresses: list[Address] = []
    for target in sorted(set(targets)):
        for address in glue.get(target, []):
            if _usable(address) and address not in addresses:
                addresses.append(address)
    return zone, addresses


def _address_rdatas(response: Response) -> Iterator[object]:
    message = full_message(response)
    for rrset in message.answer:
        if rrset.rdtype in (A, AAAA):
            yield from rrset


def learn_name_servers(
    servers: Sequence[str], list_name: str, *, port: int = 53, timeout: float = 5.0
) -> tuple[dns.name.Name, list[Address]]:
    """The policy zone's current name servers, asked of the configured ones in order."""
    return with_failover(
        servers, port, timeout, lambda c: name_servers_from(c, list_name), f"the name servers of {list_name}"
    )


def answers_for_zone(server: str, zone: dns.name.Name, *, port: int, timeout: float) -> bool:
    """Whether ``server`` answers the zone's SOA: a learned server is only adopted if it does."""

    def ask(connection: DnsConnection) -> bool:
        (response,) = connection.exchange([(zone, SOA)])
        check_rcode(response, zone, SOA)
        return bool(answer_rdata(response, SOA))

    try:
        return with_failover([server], port, timeout, ask, f"the SOA of {zone}")
    except FetchError:
        return False
