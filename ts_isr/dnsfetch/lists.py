"""The reading of the lists: the walk of the PTR index, level by level, and each part's entries."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.name

from ts_isr.dnsfetch.connection import FALLBACK_PORT, Account, Deadline, DnsConnection, with_failover
from ts_isr.dnsfetch.decode import (
    a_addresses,
    aaaa_addresses,
    apl_rdatas,
    cut_apl_items,
    ptr_targets,
    txt_strings,
    txt_tokens,
    v4_column_groups,
)
from ts_isr.dnsfetch.wire import AAAA, APL, PTR, TXT, A, Response, ServerError, check_rcode
from ts_isr.log import escape, log
from ts_isr.policy import ListBuilder

PART_TYPES = (PTR, APL, A, AAAA, TXT)
DROPPED_SAMPLES = 5
# Bounds on one list, far above the largest real policy (the vendor's extended
# lists: a few hundred parts of ~4,000 addresses; max_policy_size at most
# 2,000,000): past any of them the answers are not a policy, and reading on
# would only spend memory (an index fanning out 1,000 x 400 took 1.6 GB).
MAX_DEPTH = 4
MAX_PARTS = 5000
MAX_WIDTH = 5000  # names of one level of the index
MAX_NAMES = 10_000  # names of the whole index, parts included
MAX_ANSWER_RECORDS = 4_000_000  # records in all its answers: twice the largest max_policy_size
MAX_ANSWER_BYTES = 128 << 20  # bytes of all its answers: 4,000,000 A records take 64 MiB


class TooLarge(ServerError):
    """A list past one of the bounds on its size: not a policy this tool can take."""

    advice = (
        "nothing was applied; check block_list and allow_list in the config, and the policy with ThreatSTOP"
    )


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


@dataclass
class _Walk:
    """One list's walk of its index: the names seen and what its answers have cost so far."""

    fetched: FetchedList
    seen: set[dns.name.Name]
    answer_bytes: int = 0
    answer_records: int = 0

    def bound(self, text: str, name: str) -> TooLarge:
        return TooLarge(f"list {self.fetched.name}: {text} ({name}); far past any real policy")

    def account(self, response: Response) -> None:
        """Charge an answer as it arrives, so a list past its bounds stops before it fills memory."""
        self.answer_bytes += len(response.wire)
        self.answer_records += sum(response.counts[1:])
        if self.answer_bytes > MAX_ANSWER_BYTES:
            raise self.bound(f"its answers pass {MAX_ANSWER_BYTES >> 20} MiB", "MAX_ANSWER_BYTES")
        if self.answer_records > MAX_ANSWER_RECORDS:
            raise self.bound(f"its answers pass {MAX_ANSWER_RECORDS:,} records", "MAX_ANSWER_RECORDS")

    def add_name(self, name: dns.name.Name, width: int) -> bool:
        """Whether ``name`` is new to this index; TooLarge past its width or its names."""
        if name in self.seen:
            return False
        if len(self.seen) >= MAX_NAMES:
            raise self.bound(f"its index has more than {MAX_NAMES:,} names", "MAX_NAMES")
        if width >= MAX_WIDTH:
            raise self.bound(f"one level of its index has more than {MAX_WIDTH:,} names", "MAX_WIDTH")
        self.seen.add(name)
        return True


def _charging(owners: list[_Walk]) -> Account:
    """Each answer charged to the list whose name it answers (``PART_TYPES`` questions a name)."""
    return lambda index, response: owners[index // len(PART_TYPES)].account(response)


def fetch_from(
    connection: DnsConnection, names: Sequence[str], min_prefix: dict[int, int]
) -> dict[str, FetchedList]:
    """Every list in ``names`` from this one server, level by level of the PTR index."""
    walks: dict[str, _Walk] = {}
    # (name to ask, its list, its ancestors in the index)
    frontier: list[tuple[dns.name.Name, str, tuple[dns.name.Name, ...]]] = []
    for list_name in names:
        root = dns.name.from_text(list_name)
        walks[list_name] = _Walk(FetchedList(list_name, ListBuilder(min_prefix=dict(min_prefix))), {root})
        frontier.append((root, list_name, ()))
    while frontier:
        questions = [(name, rtype) for name, _, _ in frontier for rtype in PART_TYPES]
        responses = connection.exchange(
            questions, _charging([walks[list_name] for _, list_name, _ in frontier])
        )
        next_frontier = []
        widths = dict.fromkeys(walks, 0)
        for position, (name, list_name, path) in enumerate(frontier):
            fetched = walks[list_name].fetched
            answers = dict(zip(PART_TYPES, responses[position * len(PART_TYPES) :]))
            for rtype, response in answers.items():
                check_rcode(response, name, rtype)
            targets = ptr_targets(answers[PTR])
            if not targets:
                fetched.parts += 1
                if fetched.parts > MAX_PARTS:
                    raise walks[list_name].bound(f"it has more than {MAX_PARTS:,} parts", "MAX_PARTS")
                read_part(fetched, answers, name)
                continue
            if len(path) >= MAX_DEPTH:
                raise ServerError(f"list {list_name} points deeper than {MAX_DEPTH} levels at {name}")
            for target in targets:
                if target in path or target == name:
                    fetched.loops += 1
                elif walks[list_name].add_name(target, widths[list_name]):
                    widths[list_name] += 1
                    next_frontier.append((target, list_name, (*path, name)))
        del responses
        frontier = next_frontier
    server = f"{connection.host} port {connection.port}"
    for walk in walks.values():
        walk.fetched.server, walk.fetched.host = server, connection.host
    return {name: walk.fetched for name, walk in walks.items()}


def fetch_lists(
    names: Sequence[str],
    servers: Sequence[str],
    *,
    port: int = 53,
    timeout: float = 5.0,
    min_prefix: dict[int, int] | None = None,
    fallback_port: int = FALLBACK_PORT,
    deadline: Deadline | None = None,
) -> dict[str, FetchedList]:
    """All the named lists, whole, from the first server that gives them whole, by ``deadline``."""
    prefixes = min_prefix or {4: 8, 6: 16}
    return with_failover(
        servers,
        port,
        timeout,
        lambda c: fetch_from(c, names, prefixes),
        f"the lists {', '.join(names)}",
        fallback_port,
        deadline=deadline,
    )
