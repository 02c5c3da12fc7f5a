"""What a typed line means: its words (resolved by unique prefix, as the Cisco parser does), addresses
and object-group member lines, or a CliError at the column where the parser gave up."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from ts_isr.lab.model import ASA, IOS

IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


class CliError(Exception):
    """A line the parser rejects; rendered in the platform's words by ``Session._error``."""

    def __init__(self, kind: str, column: int = 0, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.column = column
        self.detail = detail


class Words:
    """The tokens of one line with their columns, consumed left to right."""

    def __init__(self, line: str) -> None:
        self.items = [(m.group(), m.start()) for m in re.finditer(r"\S+", line)]
        self.line = line
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.items)

    def column(self) -> int:
        return self.items[self.pos][1] if not self.done() else len(self.line)

    def keyword(self, choices: Iterable[str]) -> str:
        """Resolve the next word against keywords by unique prefix, as the Cisco parser does."""
        if self.done():
            raise CliError("incomplete")
        word, column = self.items[self.pos]
        choices = tuple(choices)
        lowered = word.lower()
        hits = [choice for choice in choices if choice == lowered] or [
            choice for choice in choices if choice.startswith(lowered)
        ]
        if len(hits) > 1:
            raise CliError("ambiguous")
        if not hits:
            matched = max((common_prefix(lowered, choice) for choice in choices), default=0)
            raise CliError("invalid", column + matched)
        self.pos += 1
        return hits[0]

    def word(self) -> tuple[str, int]:
        if self.done():
            raise CliError("incomplete")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def rest(self) -> str:
        """The remainder of the line as typed (descriptions keep their spacing)."""
        if self.done():
            raise CliError("incomplete")
        text = self.line[self.column() :].rstrip()
        self.pos = len(self.items)
        return text

    def end(self) -> None:
        if not self.done():
            raise CliError("invalid", self.column())


def common_prefix(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def parse_ipv4(text: str, column: int) -> int:
    """A dotted quad as an integer; anything else is invalid input at that column."""
    match = IPV4.match(text)
    if not match or any(int(octet) > 255 for octet in match.groups()):
        raise CliError("invalid", column)
    a, b, c, d = (int(octet) for octet in match.groups())
    return a << 24 | b << 16 | c << 8 | d


def parse_ipv6(text: str, column: int) -> ipaddress.IPv6Address:
    """An IPv6 address in any spelling; anything else (a zone, brackets) is invalid input there."""
    if not re.fullmatch(r"[0-9A-Fa-f:.]+", text):
        raise CliError("invalid", column)
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise CliError("invalid", column) from None


def ipv6_network(text: str, column: int) -> str:
    """``X/LEN`` as the device stores it: the address canonical, host bits kept as typed (a real
    IOS-XE prints ``2001:db8:111:1::/48``, ntc-templates' capture)."""
    address, _, length = text.partition("/")
    if not length.isdigit() or int(length) > 128:
        raise CliError("invalid", column + len(address))
    return f"{parse_ipv6(address, column)}/{int(length)}"


def looks_v6(word: str) -> bool:
    return ":" in word


def format_ipv4(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def contiguous(mask: int) -> bool:
    inverted = ~mask & 0xFFFFFFFF
    return not inverted & (inverted + 1)


def ios_member(words: Words, negate: bool, v6: bool = False) -> str:
    """A member line of an IOS group; ``v6``: of an ``object-group v6-network`` (``host X``, ``X/LEN``)."""
    if v6 and looks_v6(words.items[words.pos][0]):
        text, column = words.word()
        words.end()
        return ipv6_network(text, column)
    if not v6 and IPV4.match(words.items[words.pos][0]):
        return network(words, prefix="", platform=IOS)
    verb = words.keyword(("host", "description", "group-object", "any") + (() if v6 else ("range",)))
    if verb == "any":
        words.end()
        return "any"
    if verb == "host":
        text, column = words.word()
        words.end()
        return f"host {parse_ipv6(text, column) if v6 else format_ipv4(parse_ipv4(text, column))}"
    if verb == "range":
        first, first_column = words.word()
        last, last_column = words.word()
        words.end()
        low, high = parse_ipv4(first, first_column), parse_ipv4(last, last_column)
        if high < low:
            raise CliError("invalid", last_column)
        return f"range {format_ipv4(low)} {format_ipv4(high)}"
    return named_member(verb, words, negate)


def asa_member(words: Words, negate: bool, ipv6: bool = True) -> str:
    """A ``network-object`` line; IPv6 only where ``ipv6`` (an ASA from 9.0 on)."""
    verb = words.keyword(("network-object", "description", "group-object"))
    if verb != "network-object":
        return named_member(verb, words, negate)
    following = words.items[words.pos][0] if not words.done() else ""
    if IPV4.match(following):
        return network(words, prefix="network-object ", platform=ASA)
    if looks_v6(following) and ipv6:
        text, column = words.word()
        words.end()
        return f"network-object {ipv6_network(text, column)}"
    kind = words.keyword(("host", "object"))
    text, column = words.word()
    words.end()
    if kind == "object":
        return f"network-object object {text}"
    if looks_v6(text) and ipv6:
        return f"network-object host {parse_ipv6(text, column)}"
    return f"network-object host {format_ipv4(parse_ipv4(text, column))}"


def named_member(verb: str, words: Words, negate: bool) -> str:
    if verb == "description":
        return "description" if negate and words.done() else f"description {words.rest()}"
    name, _ = words.word()
    words.end()
    return f"group-object {name}"


def network(words: Words, prefix: str, platform: str) -> str:
    address_text, address_column = words.word()
    mask_text, mask_column = words.word()
    words.end()
    address, mask = parse_ipv4(address_text, address_column), parse_ipv4(mask_text, mask_column)
    if not contiguous(mask):
        raise CliError("invalid", mask_column)
    if address & ~mask & 0xFFFFFFFF:
        if platform == ASA:
            raise CliError("message", detail="ERROR: IP address,mask doesn't pair")
        address &= mask
    return f"{prefix}{format_ipv4(address)} {format_ipv4(mask)}"
