"""Hostile modes of the lab device: what a broken or malicious router does to a client's reads and pushes.

- trickle: every line of ``show`` output comes ``trickle_ms`` after the one before;
- flood: a group shown is followed by members without end;
- extra_members: a group shown is followed by that many members (a million: generated, never stored);
- babble: each member line pushed in a group is answered by output without end (and no prompt);
- black_hole: member lines pushed in a group vanish (no echo, no prompt), an empty line is answered;
- fake_prompt: a group shown prints the prompt before its last two members, pauses, then goes on.

Pure: each mode is a plan of ``(text, delay before it)`` pieces that device.py writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ts_isr.lab.model import ASA
from ts_isr.lab.words import format_ipv4

FAKE_PROMPT_PAUSE = 0.5  # long enough for a client to take the fake prompt as the end of the answer
_GENERATED_BASE = 100 << 24 | 64 << 16  # 100.64.0.0/10 (shared address space, RFC 6598)
_GROUP_HEADERS = ("network object group ", "object-group network ")

Piece = tuple[str, float]


@dataclass(frozen=True)
class Hostile:
    trickle_ms: float = 0.0
    flood: bool = False
    extra_members: int = 0
    babble: bool = False
    black_hole: bool = False
    fake_prompt: bool = False

    def shapes_show(self) -> bool:
        return bool(self.trickle_ms or self.flood or self.extra_members or self.fake_prompt)


def is_show(line: str) -> bool:
    """``show ...`` (or an abbreviation ``sh``, ``sho``) as typed at an EXEC prompt."""
    words = line.split()
    return bool(words) and len(words[0]) >= 2 and "show".startswith(words[0].lower())


def generated_members(platform: str, count: int | None) -> Iterator[str]:
    """Member lines as the device prints them, ``count`` of them or without end (None)."""
    prefix = "network-object " if platform == ASA else ""
    numbers = itertools.count() if count is None else range(count)
    for n in numbers:
        yield f" {prefix}host {format_ipv4(_GENERATED_BASE + n % (1 << 22))}"


def show_pieces(hostile: Hostile, platform: str, lines: list[str], prompt: str) -> Iterator[Piece]:
    """A ``show`` answer (its lines, then the prompt) as the hostile device prints it."""
    shows_group = bool(lines) and lines[0].lower().startswith(_GROUP_HEADERS)
    body: Iterable[str] = lines
    if shows_group and (hostile.flood or hostile.extra_members):
        count = None if hostile.flood else hostile.extra_members
        body = itertools.chain(lines, generated_members(platform, count))
    delay = hostile.trickle_ms / 1000
    if shows_group and hostile.fake_prompt and len(lines) > 2:
        yield from ((line + "\r\n", delay) for line in lines[:-2])
        yield prompt, 0.0
        yield "\r\n", FAKE_PROMPT_PAUSE
        body = lines[-2:]
    yield from ((line + "\r\n", delay) for line in body)
    yield prompt, delay


def babble_pieces() -> Iterator[Piece]:
    """Output without end and without a prompt, as a device stuck printing debug messages."""
    for n in itertools.count(1):
        yield f"*Nov 30 00:00:00.000: %LAB-7-BABBLE: debug message {n} while reading a line\r\n", 0.0
