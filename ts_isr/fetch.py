"""The policy fetch every command calls: name server upkeep, both lists over DNS, the built policy.

Wiring only: the reading of the DNS answers is in :mod:`ts_isr.dnsfetch`, the
model in :mod:`ts_isr.policy`, the store in :mod:`ts_isr.policystore`.  Values
are taken with ``config.get`` so the Cisco and the tsadmin configs both work.

Name server upkeep (the seed's "Testing / Comparing / Updating" lines): the
policy zone is the owner of the SOA that the block list's name falls under;
its NS records and their addresses (glue, else asked by name) are the current
servers.  When the set differs and at least one of the new servers answers
the zone, the lists are fetched from the new servers first, the configured
ones behind them; the new set replaces ``dns_server`` only once one of them
has served the lists and the policy passed its checks.

Every wait is bounded: each server gets 30 s (``6 x dns_timeout`` when that is
longer) for all it is asked, a learnt server's probe two timeouts, and the
whole fetch, upkeep and both lists, ends within :func:`policy_deadline`: the
time of every server it may ask (``dns_server`` and at most
``MAX_NAME_SERVERS`` learnt ones).  Past it the fetch fails and nothing is
recorded.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ts_isr.config import save_config
from ts_isr.dnsfetch import (
    MAX_NAME_SERVERS,
    Deadline,
    FetchedList,
    answers_for_zone,
    fetch_deadline,
    fetch_lists,
    learn_name_servers,
)
from ts_isr.errors import FetchError, TsError
from ts_isr.log import log
from ts_isr.policy import BuildReport, Policy, build_policy
from ts_isr.policystore import SparedLifeline, save_last_good
from ts_isr.ranges import BITS, Cidr, RangeSet
from ts_isr.shrinkguard import check_against_last_good, last_good


def _value(config: Any, key: str, default: Any) -> Any:
    """A key's value, its default only when unset: min_prefix=0 is a choice, not a gap."""
    value = config.get(key)
    return default if value is None or value == "" else value


def as_cidr(value: Any) -> Cidr:
    """One address (text or ``ipaddress`` object) as a host entry."""
    address = ipaddress.ip_address(str(value))
    return Cidr(address.version, int(address), BITS[address.version])


def server_list(config: Any, key: str = "dns_server") -> list[str]:
    """The addresses of a server list key (``dns_server``, ``autoconf_server``) as text."""
    value = config.get(key) or []
    items = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    return [str(ipaddress.ip_address(str(item))) for item in items]


def dns_settings(config: Any) -> tuple[list[str], int, float]:
    """Servers, port and timeout for policy questions, read the same way by every DNS caller."""
    return server_list(config), int(_value(config, "port", 53)), float(_value(config, "dns_timeout", 5.0))


def policy_deadline(timeout: float, servers: int) -> float:
    """Seconds the whole fetch may take, name server upkeep included."""
    return fetch_deadline(timeout, servers + MAX_NAME_SERVERS)


def learn_servers(
    servers: list[str], list_name: str, port: int, timeout: float, deadline: Deadline | None = None
) -> list[str] | None:
    """The policy zone's current NS set when it differs from ``servers`` and at least one answers; else None.

    Nothing is saved here: a new set is only written to the config once it
    has served the lists (see :func:`fetch_policy`).
    """
    log.info(f"Testing [{', '.join(servers)}] servers.")
    try:
        zone, learned = learn_name_servers(servers, list_name, port=port, timeout=timeout, deadline=deadline)
    except FetchError as exc:
        log.warning(f"cannot learn the policy's name servers, keeping dns_server as it is: {exc}")
        return None
    log.info("Comparing DNS lists.")
    learned_text = [str(address) for address in learned]
    if not learned_text or set(learned_text) == set(servers):
        return None
    kept = [server for server in servers if server in learned_text]
    added = [
        server
        for server in learned_text
        if server not in servers
        and answers_for_zone(server, zone, port=port, timeout=timeout, deadline=deadline)
    ]
    if not kept and not added:
        log.warning(
            f"the name servers of {zone.to_text(omit_final_dot=True)} are now "
            f"[{', '.join(learned_text)}] but none of them answers; keeping dns_server as it is"
        )
        return None
    return kept + added


def record_servers(config: Any, new: list[str]) -> None:
    """Write ``new`` to the config's ``dns_server``; a failure to save is a warning, the fetch stands."""
    log.info("Updating configuration file with new DNS servers list.")
    path = getattr(config, "path", None)
    try:
        if path is None:
            raise OSError("the config has no file")
        save_config(Path(path), {"dns_server": new})
    except (OSError, TsError) as exc:
        log.warning(f"cannot save the new dns_server list [{', '.join(new)}] to {path}: {exc}")


def url_address(url: Any) -> Cidr | None:
    """The log upload URL's host when it is an address.  A name is not looked up: which addresses it
    has is the resolver's answer at upload time, and a lookup here would be a network call per run."""
    host = urlsplit(str(url)).hostname if url else None
    try:
        return as_cidr(host) if host else None
    except ValueError:
        return None


def named_lifelines(config: Any, servers: Iterable[str]) -> list[tuple[Cidr, str]]:
    """What this system needs to reach and the policy must never block, each with what it is: the
    DNS servers (old and new), the device, external_ip, the configuration service and the log host
    (when an address)."""
    named = [(as_cidr(a), "dns_server") for a in dict.fromkeys([*servers, *server_list(config)])]
    named += [(as_cidr(a), "autoconf_server") for a in server_list(config, "autoconf_server")]
    named += [(as_cidr(config.get(key)), key) for key in ("device", "external_ip") if config.get(key)]
    log_host = url_address(config.get("url"))
    return named if log_host is None else [*named, (log_host, "log_host")]


def _log_list(kind: str, fetched: FetchedList) -> None:
    log.info(f"Getting {kind} list {fetched.name}")
    log.info(f"Received {fetched.parts} {kind} lists to process.")
    log.info(f"Received {fetched.results} {kind} results.")
    builder = fetched.builder
    if builder.invalid:
        samples = ", ".join(repr(s) for s in fetched.dropped_samples)
        log.warning(f"{kind} list: dropped {builder.invalid} invalid entries (e.g. {samples})")
    if builder.too_broad:
        log.warning(
            f"{kind} list: dropped {builder.too_broad} entries broader than "
            f"/{builder.min_prefix[4]} (IPv4) or /{builder.min_prefix[6]} (IPv6); see min_prefix"
        )
    if fetched.loops:
        log.warning(f"{kind} list: its index points back at itself {fetched.loops} times; ignored")


def _log_report(report: BuildReport, max_size: int | None) -> None:
    if report.lifelines_spared:
        log.warning(
            f"block list covered {report.lifelines_spared} of this system's lifelines "
            "(DNS servers, device, external_ip, configuration service, log host given as an address); "
            "they are left unblocked"
        )
    if report.block_truncated:
        log.warning(
            f"block list truncated to max_policy_size={max_size}: dropped {report.block_truncated} "
            "entries (the broadest are kept)"
        )
    if report.allow_truncated:
        log.warning(
            f"allow list truncated to a fifth of max_policy_size: dropped {report.allow_truncated} entries"
        )


@dataclass(frozen=True)
class FetchedLists:
    """Both lists as fetched, before any device's own build.

    Fetched once per distinct list settings and shared read-only by every
    device that uses them (a fleet); each device then builds its own policy
    with :func:`build_for` (its lifelines, its size, its last good policy).
    """

    block_name: str
    block: dict[int, RangeSet]
    allow: dict[int, RangeSet]
    servers: tuple[str, ...]  # every server asked or learnt: lifelines of every device
    learned: tuple[str, ...] | None
    served_by: str
    dropped: dict[str, dict[str, int]]  # list -> reason (invalid, too_broad) -> entries


@dataclass(frozen=True)
class BuiltPolicy:
    """One device's policy, with what building it left out (for the log, metrics and --search)."""

    policy: Policy
    dropped: dict[str, dict[str, int]]  # list -> reason (invalid, too_broad, truncated, lifeline)
    spared: tuple[SparedLifeline, ...]
    fetched_at: datetime  # as the last good policy records it
    previous: Policy | None = None  # the last good policy before this one (what a run changes from)

    def entries(self) -> dict[str, dict[str, int]]:
        """list -> family -> entries of the built policy."""
        counts: dict[str, dict[str, int]] = {}
        for kind in ("block", "allow"):
            for cidr in getattr(self.policy, kind):
                family = counts.setdefault(kind, {})
                family[str(cidr.family)] = family.get(str(cidr.family), 0) + 1
        return counts


def list_settings(config: Any) -> tuple:
    """What decides a fetch: devices whose settings are equal share one fetch."""
    servers, port, timeout = dns_settings(config)
    return (
        config.get("block_list"),
        config.get("allow_list"),
        tuple(servers),
        port,
        timeout,
        int(_value(config, "min_prefix", 8)),
        int(_value(config, "min_prefix6", 16)),
    )


def fetch_lists_of(config: Any) -> FetchedLists:
    """Name server upkeep and both lists over DNS, whole or not at all (FetchError, one line)."""
    block_name = config.get("block_list")
    if not block_name:
        raise FetchError("no block_list in the config; set block_list=NAME.threatstop.local or run setup")
    allow_name = config.get("allow_list")
    servers, port, timeout = dns_settings(config)
    min_prefix = {4: int(_value(config, "min_prefix", 8)), 6: int(_value(config, "min_prefix6", 16))}
    if not servers:
        raise FetchError("no dns_server in the config; set dns_server=192.124.129.42 or run setup")
    log.info("Updating DNS lists.")
    deadline = Deadline.after(policy_deadline(timeout, len(servers)), "the whole fetch's bound")
    learned = learn_servers(servers, block_name, port, timeout, deadline)
    # The new servers first, the configured ones behind them: if the new ones fail, nothing is lost.
    candidates = servers if learned is None else [*learned, *(s for s in servers if s not in learned)]
    log.info("Building allow/deny lists.")
    names = list(dict.fromkeys(name for name in (allow_name, block_name) if name))
    fetched = fetch_lists(
        names, candidates, port=port, timeout=timeout, min_prefix=min_prefix, deadline=deadline
    )
    allow = {4: RangeSet.empty(4), 6: RangeSet.empty(6)}
    dropped: dict[str, dict[str, int]] = {}
    for kind, name in (("allow", allow_name), ("block", block_name)):
        if name:
            _log_list(kind, fetched[name])
            builder = fetched[name].builder
            dropped[kind] = {"invalid": builder.invalid, "too_broad": builder.too_broad}
    if allow_name:
        allow = fetched[allow_name].builder.ranges()
    return FetchedLists(
        block_name=block_name,
        block=fetched[block_name].builder.ranges(),
        allow=allow,
        servers=tuple(candidates),
        learned=None if learned is None else tuple(learned),
        served_by=fetched[block_name].host,
        dropped=dropped,
    )


def build_for(
    fetched: FetchedLists,
    config: Any,
    *,
    force: bool = False,
    lifelines_extra: Iterable[tuple[Cidr, str]] = (),
    record: bool = True,
    families: Collection[int] = (4, 6),
    store_key: str = "",
) -> BuiltPolicy:
    """One device's policy from the shared lists: block minus allow minus its lifelines, cut to its
    size, checked against its last good policy (kept in ``state_dir`` under ``store_key``).

    ``families`` are the address families the target takes: only they count
    for truncation and the shrink guard.  ``record=False`` (a dry run,
    --print-policy) saves nothing.
    """
    max_size = config.get("max_policy_size")
    state_dir = config.get("state_dir")
    state_dir = Path(state_dir) if state_dir else None
    named = named_lifelines(config, fetched.servers) + list(lifelines_extra)
    policy, report = build_policy(
        fetched.block,
        fetched.allow,
        lifelines=[cidr for cidr, _ in named],
        max_size=int(max_size) if max_size else None,
        families=families,
    )
    _log_report(report, max_size)
    what = dict(reversed(named))  # the first name given for a lifeline wins
    spared = tuple(SparedLifeline(life, listed_by, what[life]) for life, listed_by in report.spared)
    previous, damage = last_good(state_dir, store_key)
    check_against_last_good(
        policy,
        previous,
        damage,
        block_name=fetched.block_name,
        families=families,
        max_shrink=float(_value(config, "max_shrink", 0.5)),
        force=force,
    )
    if not policy.block:
        log.warning(f"the block list {fetched.block_name} is empty: nothing will be blocked")
    fetched_at = datetime.now(UTC)
    if state_dir is not None and record:
        try:
            save_last_good(state_dir, policy, fetched_at, spared, key=store_key)
        except OSError as exc:
            raise FetchError(
                f"cannot keep the last good policy in {state_dir} ({exc.strerror}); "
                "fix state_dir or its permissions"
            ) from None
    dropped = {kind: dict(reasons) for kind, reasons in fetched.dropped.items()}
    dropped.setdefault("block", {}).update(truncated=report.block_truncated, lifeline=len(spared))
    if "allow" in dropped or report.allow_truncated:
        dropped.setdefault("allow", {})["truncated"] = report.allow_truncated
    return BuiltPolicy(policy, dropped, spared, fetched_at, previous.policy if previous else None)


def fetch_policy(
    config: Any,
    *,
    force: bool = False,
    lifelines_extra: Iterable[tuple[Cidr, str]] = (),
    record: bool = True,
    families: Collection[int] = (4, 6),
    store_key: str = "",
) -> BuiltPolicy:
    """A single device's run: fetch both lists whole, build its policy, adopt learnt servers.

    ``store_key`` names its last good policy where configs share a ``state_dir``."""
    fetched = fetch_lists_of(config)
    built = build_for(
        fetched,
        config,
        force=force,
        lifelines_extra=lifelines_extra,
        record=record,
        families=families,
        store_key=store_key,
    )
    settle_servers(config, fetched, record)
    return built


def settle_servers(config: Any, fetched: FetchedLists, record: bool) -> None:
    """Adopt the learned servers only when one of them served the lists."""
    learned, served_by = fetched.learned, fetched.served_by
    if learned is None:
        return
    if served_by not in learned:
        log.warning(
            f"the policy's name servers are now [{', '.join(learned)}] but the lists came from "
            f"{served_by}; dns_server is kept as it is"
        )
    elif record:
        record_servers(config, learned)
    else:
        log.info(f"The policy's name servers are now [{', '.join(learned)}]; the config is left as it is.")
