"""The native nftables backend: one ``inet`` table of tsadmin's own, interval sets of both families, base
chains on input, output and forward at priority ``filter - 10``.

Every change is ONE ``nft -f -`` transaction that declares the table, flushes
the chains and sets and fills them again: the kernel swaps the whole generation
at once, so no packet ever meets an empty set (a new set plus a rule swap would
fail open for a moment, and incremental element changes on big interval sets
are pathological on nft 1.0.x).  Entries come merged and disjoint from
:mod:`ts_isr.ranges`, so the sets need no ``auto-merge``.

Priority ``filter - 10`` (-10) runs before every chain at ``filter`` (0):
iptables-nft's and iptables-legacy's filter tables, ufw, Docker, firewalld.  A
drop here is final.  An accept or return here only ends *our* table's verdict:
later base chains still judge the packet, so an allowed address is only "not
blocked by us", whatever ``allow_action`` says.

What the sets hold is recorded as a digest and the entry counts in the comment of
the input chain's jump: an update compares digests and ``show`` reads the counts,
neither lists a million elements.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ts_isr.errors import ConfigError, DeviceError
from ts_isr.files import write_atomic
from ts_isr.linux.firewall import ChainSpec, LastApplied, by_direction
from ts_isr.linux.names import Limits, derive_names
from ts_isr.linux.nft_memory import run_nft
from ts_isr.linux.system import run_tool
from ts_isr.log import log
from ts_isr.policy import Policy
from ts_isr.ranges import Cidr
from ts_isr.targets.ipset_saved import parse_entry
from ts_isr.tools import find_tool

# nftables' own limits: names of 255 characters, a log prefix of 127 (NF_LOG_PREFIXLEN less the NUL).
LIMITS = Limits(set_name=255, chain_name=255, log_prefix=127)
PRIORITY = "filter - 10"
HOOKS = ("input", "output", "forward")
SETS = {("allow", 4): "allow4", ("allow", 6): "allow6", ("block", 4): "block4", ("block", 6): "block6"}
ADDRESS = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
ELEMENTS_PER_LINE = 20000  # measured at 200,000: 3.2 s in statements of 1,000, 1.8 s of 20,000, 2.1 s of one
DIGEST_TAG = "tsadmin-digest "
_RECORDED = re.compile(rf"{DIGEST_TAG}[0-9a-f]+ block (\d+) allow (\d+)")
_LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
_FLAGS = {
    "--log-tcp-sequence": "tcp sequence",
    "--log-tcp-options": "tcp options",
    "--log-ip-options": "ip options",
    "--log-uid": "skuid",
    "--log-macdecode": "ether",
}
_DROP_COUNTER = re.compile(r"(saddr|daddr) @\S+ counter packets (\d+) bytes (\d+) drop$", re.MULTILINE)
_ELEMENTS = re.compile(r"add element inet (\S+) (allow[46]|block[46]) \{ (.*) \}")


def nft_log_options(logopts: tuple[str, ...]) -> str:
    """iptables LOG options (already parsed strictly) as nft ``log`` options."""
    words = list(logopts)
    rendered = []
    if "--log-level" in words:
        rendered.append(f"level {_LEVELS[int(words[words.index('--log-level') + 1])]}")
    flags = [_FLAGS[word] for word in words if word in _FLAGS]
    tcp = [flag.split()[1] for flag in flags if flag.startswith("tcp ")]
    if tcp:
        rendered.append(f"flags tcp {','.join(tcp)}")
    rendered += [f"flags {flag}" for flag in flags if not flag.startswith("tcp ")]
    return " ".join(rendered)


def render_rules(table: str, log_prefix: str, spec: ChainSpec) -> list[str]:
    """The ``filter`` chain: the allow sets first (on source and destination), then log and drop."""
    verdict = "accept" if spec.allow_action == "ACCEPT" else "return"
    rules = []
    for family in (4, 6):
        proto = ADDRESS[family][0]
        for way in ("saddr", "daddr"):
            rules.append(f"add rule inet {table} filter {proto} {way} @{SETS['allow', family]} {verdict}")
    for family in (4, 6):
        proto = ADDRESS[family][0]
        for way, direction in (("saddr", "in"), ("daddr", "out")):
            match = f"add rule inet {table} filter {proto} {way} @{SETS['block', family]}"
            extra = nft_log_options(spec.logopts) if spec.logopts_direction in (direction, "both") else ""
            rules.append(f'{match} counter log prefix "{log_prefix}" {extra}'.rstrip())
            rules.append(f"{match} counter drop")
    return rules


def element_lines(table: str, members: dict[str, list[Cidr]]) -> Iterator[str]:
    for name, cidrs in members.items():
        texts = [str(c) if c.prefixlen < (32 if c.family == 4 else 128) else c.address_text() for c in cidrs]
        for start in range(0, len(texts), ELEMENTS_PER_LINE):
            chunk = ", ".join(texts[start : start + ELEMENTS_PER_LINE])
            yield f"add element inet {table} {name} {{ {chunk} }}\n"


def buckets(policy: Policy) -> dict[str, list[Cidr]]:
    found: dict[str, list[Cidr]] = {name: [] for name in SETS.values()}
    for kind in ("allow", "block"):
        for cidr in getattr(policy, kind):
            found[SETS[kind, cidr.family]].append(cidr)
    return found


def digest(members: dict[str, list[Cidr]], rules: list[str]) -> str:
    hashed = hashlib.sha256()
    for name, cidrs in members.items():
        hashed.update(f"{name}:{','.join(map(str, cidrs))};".encode())
    hashed.update("\n".join(rules).encode())
    return hashed.hexdigest()[:32]


def render_transaction(table: str, log_prefix: str, spec: ChainSpec, policy: Policy) -> Iterator[str]:
    """The whole table, flushed and refilled, as one ``nft -f`` script (one kernel transaction)."""
    members = buckets(policy)
    rules = render_rules(table, log_prefix, spec)
    sets = "".join(
        f"  set {name} {{ type {ADDRESS[family][1]}; flags interval; }}\n"
        for (_, family), name in SETS.items()
    )
    hooks = "".join(
        f"  chain {hook} {{ type filter hook {hook} priority {PRIORITY}; policy accept; }}\n"
        for hook in HOOKS
    )
    yield f"table inet {table} {{\n{sets}  chain filter {{ }}\n{hooks}}}\n"
    for chain in ("filter", *HOOKS):
        yield f"flush chain inet {table} {chain}\n"
    for name in SETS.values():
        yield f"flush set inet {table} {name}\n"
    yield from element_lines(table, members)
    counts = f"block {len(policy.block)} allow {len(policy.allow)}"
    mark = f'comment "{DIGEST_TAG}{digest(members, rules)} {counts}"'
    for hook in HOOKS:
        yield f"add rule inet {table} {hook} jump filter {mark if hook == 'input' else ''}".rstrip() + "\n"
    yield from (rule + "\n" for rule in rules)


def parse_state(text: str, table: str) -> Policy:
    """The policy in a saved transaction, parsed as strictly as ipset's output."""
    found: dict[str, list[Cidr]] = {name: [] for name in SETS.values()}
    for line in text.splitlines():
        match = _ELEMENTS.fullmatch(line)
        if match and match.group(1) == table:
            family = int(match.group(2)[-1])
            found[match.group(2)] += [parse_entry(item.strip(), family) for item in match.group(3).split(",")]
    return Policy(
        tuple(sorted(found["block4"] + found["block6"])), tuple(sorted(found["allow4"] + found["allow6"]))
    )


def parse_json_elements(document: str, family: int) -> list[Cidr]:
    """Set elements from ``nft -j list set``: addresses, prefixes, and ranges split into prefixes."""
    from ts_isr.ranges import range_to_cidrs

    found: list[Cidr] = []
    for item in json.loads(document).get("nftables", []):
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, str):
                found.append(parse_entry(element, family))
            elif "prefix" in element:
                found.append(parse_entry(f"{element['prefix']['addr']}/{element['prefix']['len']}", family))
            elif "range" in element:
                low, high = (parse_entry(value, family).network for value in element["range"])
                found.extend(range_to_cidrs(family, low, high))
    return found


def counted(table: str) -> dict[str, tuple[int, int]]:
    """Packets and bytes of the drop rules' counters by direction (``in``: a blocked source, ``out``:
    a blocked destination), from our table as ``nft list`` prints it."""
    return by_direction(
        ("in" if match.group(1) == "saddr" else "out", int(match.group(2)), int(match.group(3)))
        for match in _DROP_COUNTER.finditer(table)
    )


def table_text(ruleset: str, table: str) -> str | None:
    """Our table's block in an ``nft list ruleset`` listing (None: not there)."""
    lines = ruleset.splitlines()
    try:
        start = lines.index(f"table inet {table} {{")
    except ValueError:
        return None
    end = lines.index("}", start)
    return "\n".join(lines[start : end + 1]) + "\n"


class NftablesBackend:
    """tsadmin's own ``inet`` table."""

    kind = "nftables"
    why = f"nftables table of its own (inet), interval sets, base chains at priority {PRIORITY}"

    def __init__(self, prefix: str, run: Callable[..., str] = run_tool) -> None:
        self.names = derive_names(prefix, LIMITS)
        self.table = self.names.prefix
        self.run = run
        self.script: list[str] | None = None

    def check_host(self) -> None:
        if find_tool("nft") is None:
            raise ConfigError("nft is not installed; install it (apt-get install nftables) and run again")
        try:
            self.run(["nft", "-t", "list", "tables"])
        except DeviceError as exc:
            raise DeviceError(
                f"the kernel refuses nftables ({exc}): load nf_tables (modprobe nf_tables) or use "
                "firewall = iptables; nothing was changed"
            ) from None

    def _terse(self) -> str | None:
        """Our table without its elements, or None when it is absent.

        ``nft -t list ruleset`` answers at once; nft 1.0.6 still fetches every
        element for ``list table`` or ``list chain`` even with ``-t`` (5-10 s at 250,000).
        """
        return table_text(self.run(["nft", "-t", "list", "ruleset"]), self.table)

    def check_owned(self, *, removing: bool = False) -> None:
        listing = self._terse()
        if listing is not None and DIGEST_TAG not in listing:
            raise DeviceError(
                f"an nftables table inet {self.table} exists that tsadmin did not write; rename it or choose "
                "another --tsprefix; nothing was changed"
            )

    def present(self) -> bool:
        return self._terse() is not None

    def backup(self) -> dict[str, str]:
        return {"nftables": self.run(["nft", "list", "ruleset"])}

    def read_policy(self) -> Policy:
        found: dict[str, list[Cidr]] = {}
        for (kind, family), name in SETS.items():
            document = self.run(["nft", "-j", "list", "set", "inet", self.table, name])
            found.setdefault(kind, []).extend(parse_json_elements(document, family))
        return Policy(tuple(sorted(found["block"])), tuple(sorted(found["allow"])))

    def apply(
        self,
        spec: ChainSpec,
        policy: Policy | None,
        before_sets: Callable[[], None],
        last: LastApplied | None = None,  # every update refills the sets: nothing to diff against
    ) -> bool:
        if policy is None:
            policy = self.read_policy() if self.present() else Policy((), ())
        script = list(render_transaction(self.table, self.names.log_prefix, spec, policy))
        mark = next(line for line in script if DIGEST_TAG in line).split(DIGEST_TAG)[1].split('"')[0]
        self.script = script
        listing = self._terse()
        if listing is not None and f"{DIGEST_TAG}{mark}" in listing:
            log.info(f"Policy unchanged: {len(policy.block)} block and {len(policy.allow)} allow entries")
            return False
        before_sets()
        entries = len(policy.block) + len(policy.allow)
        run_nft(script, entries)
        log.info(
            f"nftables table inet {self.table}: {len(policy.block)} block and {len(policy.allow)} allow "
            "entries loaded in one transaction"
        )
        return True

    def save(self, path: Path) -> None:
        if self.script is None:
            raise DeviceError("nothing to save: apply the policy first")
        write_atomic(path, "".join(self.script))

    def load(self, path: Path) -> Policy | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            log.warning(f"no saved state {path}: the sets start empty until tsadmin update")
            return None
        return parse_state(text, self.table)

    def remove(self) -> bool:
        """Our table and nothing else: the ruleset afterwards is the one before add."""
        if not self.present():
            return False
        self.check_owned(removing=True)
        self.run(["nft", "delete", "table", "inet", self.table])
        return True

    def show(self) -> list[str]:
        listing = self._terse()
        if listing is None:
            return [f"Table inet {self.table}: not installed"]
        lines = [
            f"Table inet {self.table}: installed, base chains {', '.join(HOOKS)} at priority {PRIORITY}",
            f"  sets {', '.join(SETS.values())} (elements not listed: nft -t)",
        ]
        recorded = _RECORDED.search(listing)
        if recorded:  # the counts recorded with the digest by the last update
            lines.append(f"Block list: {recorded.group(1)} entries, allow list: {recorded.group(2)} entries")
        return lines

    def counters(self) -> dict[str, tuple[int, int]]:
        return counted(self._terse() or "")
