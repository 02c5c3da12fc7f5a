"""The DNS wire as the fetch reads it: message header, question echo, record walk, rcode checks.

Pure functions over bytes; the record decoders are in :mod:`.decode`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdatatype

A, NS, SOA, PTR, TXT, AAAA, APL = 1, 2, 6, 12, 16, 28, 42
PART_TYPES = (PTR, APL, A, AAAA, TXT)
IN = 1

_HEADER = struct.Struct(">HHHHHH")
_RR = struct.Struct(">HHIH")
_FLAG_QR, _FLAG_AA, _FLAG_TC = 0x8000, 0x0400, 0x0200


class ServerError(Exception):
    """This server could not give a whole, trustworthy answer; another server may."""

    advice = "check dns_server and port in the config, and that this host's public IP is registered"


class Malformed(ServerError):
    """The answer is not a well-formed DNS message."""


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
