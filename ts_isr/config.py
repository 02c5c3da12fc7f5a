"""threatstop.conf: the seed's ``key=value`` file, read and written with configobj, checked by a schema.

The schema is the single source of truth: validation, defaults, the example
file and the comments of a newly written config all come from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from configobj import ConfigObj, ConfigObjError

from ts_isr.configvalues import (
    Invalid,
    Key,
    Schema,
    choice,
    float_range,
    int_range,
    parse_bool,
    parse_command,
    parse_dns_name,
    parse_group_name,
    parse_https_url,
    parse_ip,
    parse_ip_list,
    parse_path,
    parse_path_or_off,
    parse_plain,
    parse_secret,
    parse_url,
    schema,
    url_password,
    without_password,
)
from ts_isr.errors import ConfigError
from ts_isr.files import read_trusted, trusted_path, write_atomic
from ts_isr.log import log

URL_PARSERS = (parse_url, parse_https_url)

BESIDE_CONFIG = {"known_hosts": "known_hosts", "tsoutput": "tsoutput.log", "state_dir": "state"}
PACKAGE_LAYOUT = {
    Path("/etc/threatstop"): {
        "known_hosts": "/var/lib/ts-isr/known_hosts",
        "tsoutput": "/var/log/threatstop/tsoutput.log",
        "state_dir": "/var/lib/ts-isr",
    },
    Path("/opt/threatstop"): {"state_dir": "/var/lib/ts-iptables"},
}


def path_default(name: str, base: Path) -> str | None:
    """The default of a relative_to_config key for a config in the folder ``base``."""
    return PACKAGE_LAYOUT.get(base, {}).get(name) or BESIDE_CONFIG.get(name)


# The Cisco ISR/ASA appliance's keys: the seed's example first, then the suite's own.
CISCO_KEYS = schema(
    Key(
        "dns_server",
        parse_ip_list,
        "ThreatSTOP DNS servers, tried in order (kept up to date by upload_rules).",
        "192.124.129.42",
    ),
    Key(
        "device",
        parse_ip,
        "Internal IP address of the ISR: SSH goes here and its syslog comes from here.",
        required=True,
    ),
    Key(
        "block_list",
        parse_dns_name,
        "ThreatSTOP block list name, e.g. mypolicy.1234.threatstop.local.",
        required=True,
    ),
    Key("allow_list", parse_dns_name, "ThreatSTOP allow list name (optional)."),
    Key(
        "object_group_block",
        parse_group_name,
        "Name of the network object group for the block list.",
        "threatstop-block",
    ),
    Key(
        "object_group_allow",
        parse_group_name,
        "Name of the network object group for the allow list.",
        "threatstop-allow",
    ),
    Key(
        "object_group_block_v6",
        parse_group_name,
        "IOS: name of the object-group v6-network for the block list's IPv6 entries (empty: no IPv6).",
    ),
    Key(
        "object_group_allow_v6",
        parse_group_name,
        "IOS: name of the object-group v6-network for the allow list's IPv6 entries (empty: no IPv6).",
    ),
    Key(
        "ipv6",
        parse_bool,
        "ASA: put IPv6 entries in the same groups (ASA 9.0 and later; older ones get IPv4 only).",
        "yes",
    ),
    Key("username", parse_plain, "Username for SSH access to the device.", required=True),
    Key("password", parse_secret, "Password for SSH access (this file must stay mode 0600).", secret=True),
    Key(
        "enable_pw", parse_secret, "Enable password; leave empty if the user logs in privileged.", secret=True
    ),
    Key("platform", parse_plain, "Kept from the vendor's scripts for compatibility; not used.", "FWSM3"),
    Key("personality", choice("ios", "asa"), "The type of Cisco device: ios (ISR routers) or asa.", "ios"),
    Key(
        "logfile",
        parse_path,
        "Syslog file that syslog-ng writes for the device; loguploadclient sends it.",
        "/var/log/threatstop/device.log",
    ),
    Key(
        "url",
        parse_https_url,
        "ThreatSTOP log upload URL (HTTPS only).",
        "https://logs.threatstop.com/logupload",
    ),
    Key(
        "port",
        int_range(1, 65535),
        "TCP port for DNS policy queries (53, or 5353 where 53 is filtered).",
        "53",
    ),
    Key("ssh_port", int_range(1, 65535), "TCP port of the device's SSH server.", "22"),
    Key(
        "external_ip", parse_ip, "The device's public IP address, registered with ThreatSTOP (never blocked)."
    ),
    Key(
        "max_policy_size",
        int_range(1, 2_000_000),
        "Most entries in the block group; the allow group gets a fifth of this.",
        "30000",
    ),
    Key(
        "known_hosts",
        parse_path,
        "The device's trusted SSH host key, written by setup (default: known_hosts beside this file; "
        "/var/lib/ts-isr/known_hosts for /etc/threatstop/threatstop.conf).",
        relative_to_config=True,
    ),
    Key(
        "tsoutput",
        parse_path,
        "Log file of upload_rules (default: tsoutput.log beside this file; "
        "/var/log/threatstop/tsoutput.log for /etc/threatstop/threatstop.conf).",
        relative_to_config=True,
    ),
    Key(
        "state_dir",
        parse_path,
        "Where the last good policy and upload bookkeeping are kept (default: state beside this file; "
        "/var/lib/ts-isr for /etc/threatstop/threatstop.conf, /var/lib/ts-iptables for tsadmin's).",
        relative_to_config=True,
    ),
    Key("min_prefix", int_range(0, 32), "Refuse IPv4 entries broader than this prefix length.", "8"),
    Key("min_prefix6", int_range(0, 128), "Refuse IPv6 entries broader than this prefix length.", "16"),
    Key(
        "max_shrink",
        float_range(0.0, 1.0),
        "Refuse (unless --force) a block list that shrinks the group by more than this fraction.",
        "0.5",
    ),
    Key(
        "write_memory", parse_bool, "Save the running config (write memory) after a successful change.", "no"
    ),
    Key(
        "exclusive_groups",
        parse_bool,
        "yes: the tool owns the whole groups and removes members it did not add.",
        "no",
    ),
    Key("dns_timeout", float_range(0.5, 120.0), "Seconds to wait for one DNS server before the next.", "5"),
    Key("ssh_timeout", float_range(1.0, 600.0), "Seconds to wait for the device to connect or answer.", "30"),
    Key(
        "syslog_port",
        int_range(1, 65535),
        "UDP port on which syslog-ng receives the device's syslog.",
        "514",
    ),
    Key("ca_bundle", parse_path, "CA bundle for the log upload's TLS check (default: the system's)."),
    Key("proxy", parse_url, "HTTPS proxy for the log upload (default: the environment's https_proxy)."),
    Key(
        "log_part_size",
        int_range(1024, 1 << 30),
        "Largest upload in bytes; bigger files go in parts.",
        "5000000",
    ),
    Key("keep_uploaded_days", int_range(0, 3650), "Days to keep log files after a confirmed upload.", "7"),
    Key(
        "log_reopen_command",
        parse_command,
        "Makes syslog-ng reopen the log after loguploadclient renamed it (or: pkill -USR1 -F PIDFILE).",
        "syslog-ng-ctl reopen",
    ),
    Key(
        "metrics_dir",
        parse_path_or_off,
        "Folder of node_exporter's textfile collector for the run metrics ('off': none; empty: "
        "/var/lib/prometheus/node-exporter when it exists).",
    ),
    Key(
        "connect_rate",
        float_range(0.1, 100.0),
        "Fleet runs: most new SSH logins a second, so the devices' AAA servers are not flooded.",
        "4",
    ),
)

CISCO_TITLE = "Configuration file for the ThreatSTOP Cisco ISR/ASA scripts (threatstop.conf)"

SEARCH_ORDER_HELP = (
    "--config PATH, else $TS_ISR_CONFIG, else ./threatstop.conf, "
    "else threatstop.conf beside the command, else /etc/threatstop/threatstop.conf"
)


def find_config(explicit: str | os.PathLike | None, command_dir: Path | None = None) -> Path:
    """The config to use, by the documented search order; the first that exists wins."""
    if explicit:
        return Path(explicit)
    if os.environ.get("TS_ISR_CONFIG"):
        return Path(os.environ["TS_ISR_CONFIG"])
    candidates = [Path.cwd() / "threatstop.conf"]
    if command_dir is not None:
        candidates.append(command_dir / "threatstop.conf")
    candidates.append(Path("/etc/threatstop/threatstop.conf"))
    return next((path for path in candidates if path.exists()), candidates[0])


class Config:
    """Validated values by key name: ``config.port``, ``config["device"]``."""

    def __init__(self, path: Path, values: dict[str, Any]) -> None:
        self.path = path
        self._values = values

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def secrets(self, keys: Schema) -> list[str]:
        """Every value to mask wherever the run writes: secret keys, and passwords inside URLs."""
        held = [self._values[k] for k, key in keys.items() if key.secret and self._values.get(k)]
        in_urls = (url_password(self._values.get(k)) for k, key in keys.items() if key.parse in URL_PARSERS)
        return held + [password for password in in_urls if password]


def _read(path: Path) -> ConfigObj:
    """The file's lines, once :func:`~ts_isr.files.read_trusted` has found that only root or the
    running user can change it: the config names commands root runs."""
    try:
        data = read_trusted(path, "config", kind=ConfigError)
    except OSError as exc:
        raise ConfigError(
            f"cannot read config {path}: {exc.strerror}; run setup or pass --config PATH"
        ) from None
    try:
        return ConfigObj(data.splitlines(), interpolation=False, encoding="utf-8", list_values=True)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; fix the file or run setup again") from None
    except ConfigObjError as exc:
        raise ConfigError(f"{path}: not a key=value file ({exc}); fix the line or run setup again") from None


def validate(raw: Mapping[str, Any], keys: Schema, base: Path) -> tuple[dict[str, Any], list[str]]:
    """Parse every key; returns the values and one message per problem."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, key in keys.items():
        text = raw.get(name)
        if isinstance(text, list):
            # configobj splits unquoted commas into a list; only address lists may be lists.
            text = ", ".join(text) if key.parse is parse_ip_list else None
            if text is None:
                problems.append(f"{name}: contains a comma; put the value in double quotes")
                continue
        if text is None or text == "":
            text = path_default(name, base) if key.relative_to_config else key.default
        if text is None or text == "":
            if key.required:
                problems.append(f"{name}: is required and missing; add '{name}=...' or run setup")
            values[name] = None
            continue
        try:
            value = key.parse(str(text))
        except Invalid as exc:
            shown = "******" if key.secret else repr(without_password(str(text)))[:80]
            problems.append(f"{name}: {shown} {exc}")
            continue
        if key.relative_to_config and isinstance(value, Path) and not value.is_absolute():
            value = base / value
        values[name] = value
    return values, problems


def read_values(path: Path) -> dict[str, str]:
    """The file's values as written, unvalidated: setup offers them again even when incomplete."""
    raw = _read(path)
    return {name: ", ".join(raw[name]) if isinstance(raw[name], list) else raw[name] for name in raw.scalars}


def load_config(path: Path, keys: Schema = CISCO_KEYS) -> Config:
    """Read and validate; raise one :class:`ConfigError` line per problem, warn on unknown keys."""
    raw = _read(path)
    for section in raw.sections:
        log.warning(f"{path}: section [{section}] is not used and is ignored")
    for name in raw.scalars:
        if name not in keys:
            log.warning(f"{path}: unknown key '{name}' is ignored (misspelt?)")
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0
    if mode & 0o077:
        log.warning(f"{path} is readable by other users and holds passwords; run: chmod 600 {path}")
    values, problems = validate(raw, keys, path.parent.resolve())
    if problems:
        raise ConfigError("\n".join(f"{path}: {problem}" for problem in problems))
    return Config(path, values)


def render_example(keys: Schema, title: str) -> str:
    """The commented example file, generated from the schema so the two never disagree."""
    lines = [
        f"# {title}",
        "# Lines are key=value; '#' starts a comment. Values with a comma or '#' go in quotes.",
        "",
    ]
    for key in keys.values():
        lines.append(f"# {key.help}" + (" (required)" if key.required else ""))
        lines.append(f"{key.name}={key.default or ''}")
        lines.append("")
    return "\n".join(lines)


def save_config(
    path: Path, updates: Mapping[str, Any], keys: Schema = CISCO_KEYS, title: str = CISCO_TITLE
) -> None:
    """Set ``updates`` in the config at ``path``, keeping its comments and unknown keys.

    A new file starts from the schema's example, so it is commented.  The
    write is atomic (temporary file, fsync, rename) and leaves mode 0600.
    """
    if path.exists():
        config = _read(path)
    else:
        text = render_example(keys, title)
        config = ConfigObj(text.splitlines(), interpolation=False, encoding="utf-8", list_values=True)
    for name, value in updates.items():
        config[name] = _to_text(value)
    config.filename = None
    path.parent.mkdir(parents=True, exist_ok=True)
    trusted_path(path, "config", kind=ConfigError)  # passwords go there: no other user may swap it
    # With an encoding set, configobj renders bytes.
    write_atomic(path, b"\n".join(config.write()).decode("utf-8") + "\n")


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)
