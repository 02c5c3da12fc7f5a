"""The tsadmin chain: rendered and planned purely, installed by one ``iptables-restore --noflush`` batch.

The chain is named after the prefix and jumped to from INPUT, OUTPUT and
FORWARD at position 1 ("above all others", as the vendor's package does).
Inside it: the allow sets with the allow action, then each block set with a
LOG rule (prefix ``ThreatSTOP-<prefix>block``) and a DROP, on source and on
destination.  A batch is committed by the kernel as one step, so traffic never
sees a half-built chain; rules tsadmin did not write are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ts_isr.config import Invalid
from ts_isr.errors import DeviceError
from ts_isr.linux.names import Names
from ts_isr.linux.system import run_tool
from ts_isr.policy import Policy

BUILTIN_CHAINS = ("INPUT", "OUTPUT", "FORWARD")
# Docker's chain for the admin's rules, jumped to first from FORWARD: Docker's own FORWARD rules
# accept container traffic, and Docker puts its jump back on top when it restarts.
DOCKER_USER = "DOCKER-USER"
ALLOW_ACTIONS = ("ACCEPT", "RETURN")
DIRECTIONS = ("in", "out", "both")
TOOLS = {4: ("iptables-save", "iptables-restore"), 6: ("ip6tables-save", "ip6tables-restore")}
# LOG flags in the order iptables-save prints them, so a rendered rule compares equal to a saved one.
_LOG_FLAGS = ("--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid", "--log-macdecode")
_LOG_LEVELS = {
    **{str(n): n for n in range(8)},
    **{
        name: n
        for n, name in enumerate(("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"))
    },
    "err": 3,
    "warn": 4,
    "panic": 0,
}
DEFAULT_LOG_LEVEL = 4


def parse_logopts(text: str) -> tuple[str, ...]:
    """Extra LOG options, strictly: only the flags iptables' LOG target knows, in iptables-save order.

    The value is written into a firewall command, so anything unknown is refused
    rather than passed on.
    """
    words = text.replace("–", "--").split()
    level = DEFAULT_LOG_LEVEL
    flags: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--log-level":
            if i + 1 >= len(words) or words[i + 1].lower() not in _LOG_LEVELS:
                raise Invalid("--log-level needs a level from 0 to 7 (e.g. --log-level 6)")
            level = _LOG_LEVELS[words[i + 1].lower()]
            i += 2
            continue
        if word not in _LOG_FLAGS:
            raise Invalid(f"{word[:30]!r} is not a LOG option; use --log-level N or {', '.join(_LOG_FLAGS)}")
        flags.add(word)
        i += 1
    rendered = [] if level == DEFAULT_LOG_LEVEL else ["--log-level", str(level)]
    return (*rendered, *(flag for flag in _LOG_FLAGS if flag in flags))


@dataclass(frozen=True)
class ChainSpec:
    """What the chain holds: the allow action, and the LOG options for which direction."""

    # RETURN: an allowed address is simply not blocked; the host's own rules still apply to it.
    allow_action: str = "RETURN"
    logopts: tuple[str, ...] = ()
    logopts_direction: str = "both"


@dataclass(frozen=True)
class LastApplied:
    """What the caller believes the last good update installed: the policy it fetched then (the shrink
    guard has read it already), and the boot state saved after installing it.  A backend that can diff
    checks it against the host before it trusts it."""

    policy: Policy
    state: Path


def by_direction(counts: Iterable[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    """(direction, packets, bytes) summed by direction: ``in`` from a blocked address, ``out`` to one."""
    totals = {"in": (0, 0), "out": (0, 0)}
    for direction, packets, octets in counts:
        seen_packets, seen_octets = totals[direction]
        totals[direction] = (seen_packets + packets, seen_octets + octets)
    return totals


def render_chain(names: Names, family: int, spec: ChainSpec) -> list[str]:
    """The chain's rules for one family, exactly as ``iptables-save`` prints them."""
    rules = []
    sets = names.family_sets(family)
    for s in sets:
        if s.kind == "allow":
            for way in ("src", "dst"):
                rules.append(f"-A {names.chain} -m set --match-set {s.name} {way} -j {spec.allow_action}")
    for s in sets:
        if s.kind != "block":
            continue
        for way, direction in (("src", "in"), ("dst", "out")):
            match = f"-A {names.chain} -m set --match-set {s.name} {way}"
            extra = spec.logopts if spec.logopts_direction in (direction, "both") else ()
            log = " ".join((f'-j LOG --log-prefix "{names.log_prefix}"', *extra))
            rules.append(f"{match} {log}")
            rules.append(f"{match} -j DROP")
    return rules


@dataclass(frozen=True)
class FilterTable:
    """The filter table as ``iptables-save`` shows it: declared chains and their rules in order."""

    chains: tuple[str, ...]
    rules: dict[str, tuple[str, ...]]

    def chain_rules(self, chain: str) -> tuple[str, ...]:
        return self.rules.get(chain, ())


def parse_filter(text: str) -> FilterTable:
    """The filter table from ``iptables-save -t filter`` (an absent table is an empty one)."""
    chains: list[str] = []
    rules: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            chains.append(line[1:].split(" ", 1)[0])
        elif line.startswith("-A "):
            rules.setdefault(line.split(" ", 2)[1], []).append(line)
    return FilterTable(tuple(chains), {chain: tuple(lines) for chain, lines in rules.items()})


def jump_rule(builtin: str, chain: str) -> str:
    return f"-A {builtin} -j {chain}"


def hooked_chains(table: FilterTable) -> tuple[str, ...]:
    """Where our chain is jumped to from: the built-in chains, and DOCKER-USER when Docker made it."""
    return BUILTIN_CHAINS + ((DOCKER_USER,) if DOCKER_USER in table.chains else ())


def chain_in_place(table: FilterTable, names: Names, rules: list[str]) -> bool:
    """The chain holds exactly ``rules`` and is the first and only jump of each hooked chain."""
    if table.chain_rules(names.chain) != tuple(rules) or names.chain not in table.chains:
        return False
    for hooked in hooked_chains(table):
        current = table.chain_rules(hooked)
        jumps = [rule for rule in current if rule == jump_rule(hooked, names.chain)]
        if len(jumps) != 1 or current[0] != jumps[0]:
            return False
    return True


def _delete_jumps(table: FilterTable, chain: str) -> list[str]:
    return [
        f"-D {hooked} -j {chain}"
        for hooked in hooked_chains(table)
        for rule in table.chain_rules(hooked)
        if rule == jump_rule(hooked, chain)
    ]


def foreign_rules(table: FilterTable, names: Names) -> list[str]:
    """Rules inside a chain of our name that tsadmin never writes: a host chain that happens to share it.

    tsadmin only writes rules matching one of its own sets; anything else
    means the chain is the host's, and emptying or deleting it would drop the
    host's own firewall.
    """
    ours = tuple(
        f"-A {names.chain} -m set --match-set {s.name} {way} -j "
        for s in names.sets
        for way in ("src", "dst")
    )
    return [rule for rule in table.chain_rules(names.chain) if not rule.startswith(ours)]


def foreign_references(table: FilterTable, names: Names) -> list[str]:
    """Rules outside our chain that jump to it, other than our own jumps from the hooked chains."""
    targets = {f"-j {names.chain}", f"-g {names.chain}"}
    hooked = hooked_chains(table)
    return [
        rule
        for chain, rules in table.rules.items()
        if chain != names.chain
        for rule in rules
        if rule != jump_rule(chain, names.chain) or chain not in hooked
        if any(rule.endswith(target) or f"{target} " in rule for target in targets)
    ]


def check_owned(table: FilterTable, names: Names, family: int, *, removing: bool) -> None:
    """Refuse, before anything changes, to rewrite or delete a chain that is not tsadmin's alone."""
    tool = TOOLS[family][0]
    foreign = foreign_rules(table, names)
    if foreign:
        raise DeviceError(
            f"{tool} shows a chain {names.chain} holding rules tsadmin did not write ({foreign[0]}): "
            f"it is the host's own; choose another --tsprefix (or move those rules out); nothing was changed"
        )
    references = foreign_references(table, names) if removing else []
    if references:
        raise DeviceError(
            f"{tool} shows a rule of the host jumping to {names.chain} ({references[0]}): delete it "
            f"({tool.removesuffix('-save')} {references[0].replace('-A ', '-D ', 1)}) and run tsadmin "
            "again; nothing was changed"
        )


def render_install(table: FilterTable, names: Names, rules: list[str]) -> str | None:
    """The batch that (re)writes the chain and puts its jumps on top, or None when all is in place.

    Declaring the chain in a ``--noflush`` batch creates it or empties it; the
    old jumps are deleted and new ones inserted at 1 in the same commit.
    """
    if chain_in_place(table, names, rules):
        return None
    lines = ["*filter", f":{names.chain} - [0:0]", *_delete_jumps(table, names.chain)]
    lines += [f"-I {hooked} 1 -j {names.chain}" for hooked in reversed(hooked_chains(table))]
    lines += rules
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render_removal(table: FilterTable, names: Names) -> str | None:
    """The batch that takes out the jumps and the chain, and nothing else; None when absent."""
    if names.chain not in table.chains and not _delete_jumps(table, names.chain):
        return None
    lines = ["*filter", *_delete_jumps(table, names.chain)]
    if names.chain in table.chains:
        lines += [f"-F {names.chain}", f"-X {names.chain}"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class Firewall:
    """The chain in the host's iptables (IPv4) and ip6tables (IPv6)."""

    def __init__(self, names: Names, run: Callable[..., str] = run_tool) -> None:
        self.names = names
        self.run = run

    def table(self, family: int) -> FilterTable:
        return parse_filter(self.run([TOOLS[family][0], "-t", "filter"]))

    def optional_table(self, family: int) -> FilterTable:
        """IPv6 may be off on this host (no ip6tables, no table): then there is nothing of ours in it."""
        try:
            return self.table(family)
        except DeviceError:
            if family == 4:
                raise
            return FilterTable((), {})

    def check_owned(self, families: Iterable[int] = (4, 6), *, removing: bool = False) -> None:
        """DeviceError unless a chain of our name, where it exists, holds only tsadmin's rules."""
        for family in families:
            check_owned(self.optional_table(family), self.names, family, removing=removing)

    def install(self, families: Iterable[int], spec: ChainSpec) -> bool:
        """Bring the chain of each family to ``spec``, on top; True when anything changed."""
        tables = {family: self.table(family) for family in families}
        for family, table in tables.items():
            check_owned(table, self.names, family, removing=False)
        changed = False
        for family, table in tables.items():
            batch = render_install(table, self.names, render_chain(self.names, family, spec))
            if batch is not None:
                self.run([TOOLS[family][1], "--noflush"], batch)
                changed = True
        return changed

    def remove(self) -> bool:
        """Take the jumps and the chain out of both families; the host's own rules stay as they are."""
        tables = {family: self.optional_table(family) for family in (4, 6)}
        for family, table in tables.items():
            check_owned(table, self.names, family, removing=True)
        changed = False
        for family, table in tables.items():
            batch = render_removal(table, self.names)
            if batch is not None:
                self.run([TOOLS[family][1], "--noflush"], batch)
                changed = True
        return changed

    def installed(self) -> bool:
        return self.names.chain in self.table(4).chains

    def backup(self, family: int) -> str:
        """The family's whole ruleset as ``iptables-save`` prints it, for the pre-install backup.

        A host without IPv6 has no IPv6 ruleset: its backup is empty.
        """
        try:
            return self.run([TOOLS[family][0]])
        except DeviceError:
            if family == 4:
                raise
            return ""
