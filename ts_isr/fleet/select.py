"""Which hosts a fleet run takes: ``--limit``, ``--filter`` and ``--shard``, as Nornir filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ts_isr.errors import ConfigError
from ts_isr.fleet.inventory import as_text
from ts_isr.fleet.shard import in_shard, parse_shard

_FIELDS = ("name", "hostname", "platform", "username", "port")


def parse_filters(texts: Sequence[str]) -> list[tuple[str, str]]:
    """``KEY=VALUE`` pairs; ConfigError (one line) for anything else."""
    pairs = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter {text!r}: give KEY=VALUE, e.g. --filter group=branches")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _matches(host: Any, key: str, value: str) -> bool:
    if key in ("group", "groups"):
        return value in {group.name for group in host.extended_groups()}
    if key in _FIELDS:
        return str(getattr(host, key)) == value
    found = host.extended_data().get(key)
    return found is not None and as_text(found).lower() == value.lower()


def select(nornir: Any, limit: str | None, filters: Sequence[str], shard: str | None) -> Any:
    """The Nornir object narrowed to the hosts asked for; unknown ``--limit`` names are one line."""
    if limit:
        names = [name.strip() for name in limit.split(",") if name.strip()]
        unknown = sorted(set(names) - set(nornir.inventory.hosts))
        if unknown:
            raise ConfigError(f"--limit names hosts the inventory does not have: {', '.join(unknown)}")
        nornir = nornir.filter(filter_func=lambda host: host.name in names)
    for key, value in parse_filters(filters):
        nornir = nornir.filter(filter_func=lambda host, k=key, v=value: _matches(host, k, v))
    if shard:
        part = parse_shard(shard)
        nornir = nornir.filter(filter_func=lambda host: in_shard(host.name, part))
    return nornir
