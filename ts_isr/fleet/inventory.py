"""The fleet's devices from a Nornir inventory: threatstop.conf for what they share, each host for itself.

``nornir.yaml`` is an ordinary Nornir configuration file, so any inventory
plugin works.  A host gives the device as nornir-netmiko users write it
(``hostname``, ``port``, ``username``, ``password``, ``platform``, the enable
secret in ``connection_options: netmiko: extras: secret:``) and, in
``data:``, any per-device threatstop.conf key; groups and defaults inherit as
Nornir defines.  Each device's settings are checked by the config schema: a
bad host is one line naming the host and the key, and the others still run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ts_isr.config import CISCO_KEYS, Config, validate
from ts_isr.log import add_secret

PLATFORMS = {"cisco_ios": "ios", "cisco_xe": "ios", "ios": "ios", "cisco_asa": "asa", "asa": "asa"}
# What every device shares: the policy servers, where state and logs live, and the fleet's own pace.
FLEET_WIDE = frozenset(
    {"dns_server", "port", "dns_timeout", "state_dir", "tsoutput", "metrics_dir", "connect_rate"}
)
# Set by the host's own Nornir fields, never by its data.
CONNECTION = frozenset({"device", "ssh_port", "username", "password", "enable_pw", "personality"})
# The fleet's threatstop.conf: what a single device's config must have, its hosts give here.
FLEET_KEYS = {
    name: replace(key, required=False) if name in CONNECTION else key for name, key in CISCO_KEYS.items()
}


@dataclass(frozen=True)
class FleetDevice:
    """One inventory host with its checked settings."""

    name: str
    config: Config


@dataclass(frozen=True)
class BadHost:
    """A host whose entry cannot be used; ``reason`` says which key and what to do."""

    name: str
    reason: str


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def host_settings(host: Any) -> tuple[dict[str, str], list[str]]:
    """The threatstop.conf keys a Nornir ``host`` sets, as text, and what is wrong with it."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for key, value in host.extended_data().items():
        if key in FLEET_WIDE or key in CONNECTION:
            problems.append(
                f"{key}: is set for the whole fleet in threatstop.conf (or by the host's own fields)"
            )
        elif key in CISCO_KEYS and value is not None:
            values[key] = as_text(value)
    fields = {"device": host.hostname or host.name, "ssh_port": host.port, "username": host.username}
    values.update({key: as_text(value) for key, value in fields.items() if value is not None})
    values["password"] = host.password or ""
    secret = host.get_connection_parameters("netmiko").extras.get("secret")
    values["enable_pw"] = "" if secret is None else as_text(secret)
    platform = (host.platform or "").lower()
    if platform not in PLATFORMS:
        problems.append(
            f"platform: {platform or 'missing'!r} is not one of {', '.join(sorted(PLATFORMS))}; "
            "set the host's platform"
        )
    else:
        values["personality"] = PLATFORMS[platform]
    return values, problems


def fleet_devices(
    hosts: Iterable[Any], shared: Mapping[str, str], config_path: Path
) -> tuple[list[FleetDevice], list[BadHost]]:
    """Every host as a checked device, or as a bad host with its one line."""
    devices: list[FleetDevice] = []
    bad: list[BadHost] = []
    base = config_path.parent.resolve()
    for host in hosts:
        own, problems = host_settings(host)
        values, invalid = validate({**shared, **own}, CISCO_KEYS, base)
        problems += invalid
        if not values.get("password") and not problems:
            problems.append("password: is required to log into the device; set the host's password")
        if problems:
            bad.append(BadHost(host.name, f"host {host.name}: {problems[0]}"))
        else:
            config = Config(config_path, values)
            for secret in config.secrets(CISCO_KEYS):  # masked in every log line, as a single config's
                add_secret(secret)
            devices.append(FleetDevice(host.name, config))
    return devices, bad


def unique_devices(devices: Iterable[FleetDevice]) -> tuple[list[FleetDevice], list[BadHost]]:
    """The devices, less the hosts that share a device with another: each of those is a bad host.
    Run together they would push to one device at once, each with its own idea of the groups, and
    which one to keep is the admin's call, so none of them runs; the other hosts still do."""
    by_place: dict[tuple[str, int], list[FleetDevice]] = {}
    for device in devices:
        by_place.setdefault((str(device.config.device), device.config.ssh_port), []).append(device)
    unique: list[FleetDevice] = []
    bad: list[BadHost] = []
    for (address, port), same in by_place.items():
        if len(same) == 1:
            unique += same
            continue
        for device in same:
            others = ", ".join(other.name for other in same if other is not device)
            bad.append(
                BadHost(
                    device.name,
                    f"host {device.name}: is the same device {address}:{port} as host {others}; "
                    "keep one of them in the inventory",
                )
            )
    return unique, bad
