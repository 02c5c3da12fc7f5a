"""``--shard K/N``: a stable split of the fleet by host name across N management hosts.

The same name always lands in the same shard, whatever else is in the
inventory, so N cron lines (or N slices of an AWX job) take every host
exactly once, and adding a router moves no other.
"""

from __future__ import annotations

import hashlib
import re

from ts_isr.errors import ConfigError

_SHARD = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N; ConfigError (one line) otherwise."""
    match = _SHARD.fullmatch(text.strip())
    if match is None or int(match[1]) > int(match[2]):
        raise ConfigError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. --shard 2/3")
    return int(match[1]), int(match[2])


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) of the host ``name``."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def in_shard(name: str, shard: tuple[int, int]) -> bool:
    number, count = shard
    return shard_of(name, count) == number
