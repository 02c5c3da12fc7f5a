"""Every kernel object name tsadmin derives from the prefix, checked against a backend's limits.

The vendor documents prefixes of up to 29 characters, but each firewall
backend has its own limits (ipset and iptables: a set name of 31 characters,
a chain of 28, a LOG prefix of 29; see the backend's ``LIMITS``): a prefix
that would make any derived name too long is refused here, before anything on
the host is touched.  Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ts_isr.errors import ConfigError

DEFAULT_PREFIX = "TS"
LOG_TAG = "ThreatSTOP-"
# The live sets' suffixes, in the order the chain matches them; `new` marks the swap twin.
SET_SUFFIXES = ("allowaddr", "allownet", "blockaddr", "blocknet")
NEW_SUFFIX = "new"
V6_SUFFIX = "6"
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# Names a user chain must not take: built-in chains and targets iptables knows by name.
_RESERVED = frozenset(
    {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING", "ACCEPT", "DROP", "REJECT", "RETURN"}
    | {"LOG", "QUEUE", "NFQUEUE", "MARK", "CT", "TRACE"}
)


@dataclass(frozen=True)
class Limits:
    """The longest names a backend's kernel objects may have."""

    set_name: int
    chain_name: int
    log_prefix: int


class PrefixError(ConfigError):
    """A refused prefix; ``reason`` is the message without the prefix, for the config's own line."""

    def __init__(self, prefix: str, reason: str) -> None:
        super().__init__(f"tsprefix {prefix[:40]!r} {reason}")
        self.reason = reason


@dataclass(frozen=True)
class SetName:
    """One ipset: its live name, its swap twin, its ipset type and address family."""

    name: str
    new: str
    kind: str  # "block" or "allow"
    hash_type: str  # "hash:ip" or "hash:net"
    family: int

    @property
    def ipset_family(self) -> str:
        return "inet" if self.family == 4 else "inet6"


@dataclass(frozen=True)
class Names:
    """The chain, the sets and the LOG prefix of one installation."""

    prefix: str
    chain: str
    log_prefix: str
    sets: tuple[SetName, ...]

    def family_sets(self, family: int) -> tuple[SetName, ...]:
        return tuple(s for s in self.sets if s.family == family)

    def all_set_names(self) -> frozenset[str]:
        """Live and swap names: everything tsadmin may have created."""
        return frozenset(n for s in self.sets for n in (s.name, s.new))


def _set(prefix: str, suffix: str, family: int) -> SetName:
    name = prefix + suffix + (V6_SUFFIX if family == 6 else "")
    return SetName(
        name=name,
        new=name + NEW_SUFFIX,
        kind="allow" if suffix.startswith("allow") else "block",
        hash_type="hash:ip" if suffix.endswith("addr") else "hash:net",
        family=family,
    )


def derive_names(prefix: str, limits: Limits) -> Names:
    """The names for ``prefix``, or a :class:`ConfigError` saying which name is too long and the limit."""
    if not _PREFIX.fullmatch(prefix):
        raise PrefixError(prefix, "is not usable: use letters, digits, '_' or '-', starting with a letter")
    if prefix.upper() in _RESERVED:
        raise PrefixError(prefix, "is a built-in iptables name; choose another, e.g. TS")
    sets = tuple(_set(prefix, suffix, family) for family in (4, 6) for suffix in SET_SUFFIXES)
    # The trailing space keeps the kernel's "IN=..." apart from the prefix in the log line.
    log_prefix = f"{LOG_TAG}{prefix}block "
    checks = [(s.new, "set name", limits.set_name) for s in sets]
    checks += [(prefix, "chain name", limits.chain_name), (log_prefix, "LOG prefix", limits.log_prefix)]
    for derived, what, limit in checks:
        if len(derived) > limit:
            longest = max_prefix_length(limits)
            raise PrefixError(
                prefix,
                f"is too long: it makes the {what} {derived.strip()!r} "
                f"{len(derived)} characters and the kernel allows {limit}; "
                f"use a prefix of at most {longest} characters (e.g. TS)",
            )
    return Names(prefix=prefix, chain=prefix, log_prefix=log_prefix, sets=sets)


def max_prefix_length(limits: Limits) -> int:
    """The longest prefix every derived name allows (12 for iptables, with the LOG prefix's tag)."""
    longest_set_suffix = max(len(s) for s in SET_SUFFIXES) + len(V6_SUFFIX) + len(NEW_SUFFIX)
    return min(
        limits.set_name - longest_set_suffix,
        limits.chain_name,
        limits.log_prefix - len(LOG_TAG) - len("block "),
    )
