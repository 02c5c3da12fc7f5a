"""The policy fetch every command calls: name server upkeep, both lists over DNS, the built policy.

Wiring only: the reading of the DNS answers is in :mod:`ts_isr.dnsfetch`, the
model in :mod:`ts_isr.policy`, the store in :mod:`ts_isr.policystore`.  Values
are taken with ``config.get`` so the Cisco and the tsadmin configs both work.

Name server upkeep (the seed's "Testing / Comparing / Updating" lines): the
policy zone is the owner of the SOA that the block list's name falls under;
its NS records and their addresses (glue, else asked by name) are the current
servers.  They replace ``dns_server`` only when the set differs and at least
one of the new servers answers the zone; otherwise the config is kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ts_isr.config import save_config
from ts_isr.dnsfetch import FetchedList, answers_for_zone, fetch_lists, learn_name_servers
from ts_isr.errors import FetchError, TsError
from ts_isr.log import log
from ts_isr.policy import BuildReport, Policy, build_policy
from ts_isr.policystore import StoredPolicy, load_last_good, save_last_good
from ts_isr.ranges import BITS, Cidr, RangeSet


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


def maintain_servers(
    config: Any, servers: list[str], list_name: str, port: int, timeout: float, *, record: bool = True
) -> list[str]:
    """The servers to fetch from: the policy zone's current NS set when it changed and answers.

    With ``record`` the new set is also written to the config's ``dns_server``.
    """
    log.info(f"Testing [{', '.join(servers)}] servers.")
    try:
        zone, learned = learn_name_servers(servers, list_name, port=port, timeout=timeout)
    except FetchError as exc:
        log.warning(f"cannot learn the policy's name servers, keeping dns_server as it is: {exc}")
        return servers
    log.info("Comparing DNS lists.")
    learned_text = [str(address) for address in learned]
    if not learned_text or set(learned_text) == set(servers):
        return servers
    kept = [server for server in servers if server in learned_text]
    added = [
        server
        for server in learned_text
        if server not in servers and answers_for_zone(server, zone, port=port, timeout=timeout)
    ]
    if not kept and not added:
        log.warning(
            f"the name servers of {zone.to_text(omit_final_dot=True)} are now "
            f"[{', '.join(learned_text)}] but none of them answers; keeping dns_server as it is"
        )
        return servers
    new = kept + added
    if not record:
        log.info(f"The policy's name servers are now [{', '.join(new)}]; the config is left as it is.")
        return new
    log.info("Updating configuration file with new DNS servers list.")
    path = getattr(config, "path", None)
    try:
        if path is None:
            raise OSError("the config has no file")
        save_config(Path(path), {"dns_server": new})
    except (OSError, TsError) as exc:
        log.warning(f"cannot save the new dns_server list [{', '.join(new)}] to {path}: {exc}")
    return new


def url_address(url: Any) -> Cidr | None:
    """The log upload URL's host when it is an address.  A name is not looked up: which addresses it
    has is the resolver's answer at upload time, and a lookup here would be a network call per run."""
    host = urlsplit(str(url)).hostname if url else None
    try:
        return as_cidr(host) if host else None
    except ValueError:
        return None


def lifelines_of(config: Any, servers: Iterable[str]) -> list[Cidr]:
    """What this system needs to reach and the policy must never block: the DNS servers (old and
    new), the device, external_ip, the configuration service and the log host (when an address)."""
    addresses = {*servers, *server_list(config), *server_list(config, "autoconf_server")}
    lifelines = [as_cidr(address) for address in addresses]
    lifelines += [as_cidr(config.get(key)) for key in ("device", "external_ip") if config.get(key)]
    log_host = url_address(config.get("url"))
    return lifelines if log_host is None else [*lifelines, log_host]


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
    if fetched.empty_parts:
        log.warning(f"{kind} list: {fetched.empty_parts} parts had no entries")
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


def _last_good(state_dir: Path | None) -> StoredPolicy | None:
    if state_dir is None:
        return None
    try:
        return load_last_good(state_dir)
    except FetchError as exc:
        log.warning(str(exc))
        return None


def check_not_emptied(policy: Policy, previous: StoredPolicy | None, block_name: str, force: bool) -> None:
    """An empty block list after a non-empty one is far likelier a fault than a policy: refuse it."""
    if policy.block or force or previous is None or not previous.policy.block:
        return
    raise FetchError(
        f"the block list {block_name} came back empty but the last good one "
        f"({previous.fetched_at:%Y-%m-%d %H:%M} UTC) had {len(previous.policy.block)} entries; "
        "nothing applied. If the policy really is empty now, run again with --force"
    )


def fetch_policy(
    config: Any, *, force: bool = False, lifelines_extra: Iterable[Cidr] = (), record: bool = True
) -> Policy:
    """Fetch both lists whole and build the policy; FetchError (one line) on any failure.

    ``record=False`` (a dry run, --print-policy) changes nothing on disk: neither
    the last good policy nor a new ``dns_server`` list is saved.
    """
    block_name = config.get("block_list")
    if not block_name:
        raise FetchError("no block_list in the config; set block_list=NAME.threatstop.local or run setup")
    allow_name = config.get("allow_list")
    servers, port, timeout = dns_settings(config)
    min_prefix = {4: int(_value(config, "min_prefix", 8)), 6: int(_value(config, "min_prefix6", 16))}
    max_size = config.get("max_policy_size")
    state_dir = config.get("state_dir")
    state_dir = Path(state_dir) if state_dir else None

    if not servers:
        raise FetchError("no dns_server in the config; set dns_server=192.124.129.42 or run setup")
    log.info("Updating DNS lists.")
    servers = maintain_servers(config, servers, block_name, port, timeout, record=record)
    log.info("Building allow/deny lists.")
    names = list(dict.fromkeys(name for name in (allow_name, block_name) if name))
    fetched = fetch_lists(names, servers, port=port, timeout=timeout, min_prefix=min_prefix)
    empty = {4: RangeSet.empty(4), 6: RangeSet.empty(6)}
    allow = empty
    if allow_name:
        _log_list("allow", fetched[allow_name])
        allow = fetched[allow_name].builder.ranges()
    _log_list("block", fetched[block_name])
    block = fetched[block_name].builder.ranges()
    del fetched

    lifelines = lifelines_of(config, servers) + list(lifelines_extra)
    policy, report = build_policy(
        block, allow, lifelines=lifelines, max_size=int(max_size) if max_size else None
    )
    _log_report(report, max_size)
    check_not_emptied(policy, _last_good(state_dir), block_name, force)
    if not policy.block:
        log.warning(f"the block list {block_name} is empty: nothing will be blocked")
    if state_dir is not None and record:
        try:
            save_last_good(state_dir, policy)
        except OSError as exc:
            raise FetchError(
                f"cannot keep the last good policy in {state_dir} ({exc.strerror}); "
                "fix state_dir or its permissions"
            ) from None
    return policy
