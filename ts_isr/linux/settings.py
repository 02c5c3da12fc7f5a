"""tsadmin's threatstop.conf schema and where its files live (under ``--root`` for tests and packaging).

Keys that mean the same as the Cisco suite's reuse its entries by name; the
Linux-only keys are the seed's ``tsadmin add`` parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ts_isr.config import CISCO_KEYS
from ts_isr.configvalues import (
    Invalid,
    Key,
    choice,
    int_range,
    parse_bool,
    parse_dns_name,
    parse_ip_list,
    parse_plain,
    parse_secret,
    schema,
)
from ts_isr.linux.firewall import ALLOW_ACTIONS, DIRECTIONS, parse_logopts
from ts_isr.linux.iptables_backend import LIMITS as STRICTEST_LIMITS
from ts_isr.linux.names import DEFAULT_PREFIX, PrefixError, derive_names

LINUX_TITLE = "Configuration file of ThreatSTOP ts-iptables (tsadmin), /opt/threatstop/threatstop.conf"


def parse_prefix(text: str) -> str:
    """A prefix every backend's derived names fit (the reason is the ConfigError's text)."""
    try:
        derive_names(text, STRICTEST_LIMITS)
    except PrefixError as exc:
        raise Invalid(exc.reason) from None
    return text


def parse_allow_action(text: str) -> str:
    if text.upper() not in ALLOW_ACTIONS:
        raise Invalid(f"must be one of: {', '.join(ALLOW_ACTIONS)}")
    return text.upper()


def parse_logopts_text(text: str) -> str:
    """Kept as canonical text in the config; the chain renders it from the parsed tuple."""
    return " ".join(parse_logopts(text))


def _cisco(name: str, **changes: object) -> Key:
    return dataclasses.replace(CISCO_KEYS[name], **changes)


LINUX_KEYS = schema(
    Key("type", choice("manual", "auto"), "manual: this file; auto: from the portal.", "manual"),
    Key("device_id", parse_plain, "ThreatSTOP device ID (TDID), from the portal's device page."),
    Key("auto_key", parse_secret, "Web Automation key (this file stays mode 0600).", secret=True),
    _cisco("block_list"),
    _cisco("allow_list"),
    _cisco("dns_server"),
    _cisco("port"),
    # A host's ipsets hold far more than a router's object-group: the Cisco default (30,000) would truncate.
    _cisco(
        "max_policy_size",
        default="1000000",
        help="Most block entries (maxpolicysize); the allow list gets a fifth.",
    ),
    Key(
        "tsprefix",
        parse_prefix,
        "Prefix of the chain, the ipsets and the LOG prefix (at most 12 characters).",
        DEFAULT_PREFIX,
    ),
    Key(
        "firewall",
        choice("auto", "iptables", "nftables"),
        "auto (keep the installed one; else ipset + iptables where iptables exists), iptables or nftables.",
        "auto",
    ),
    # RETURN by default: an allowed address is not blocked, and the host's own rules still judge it.
    Key(
        "allow_action",
        parse_allow_action,
        "Action for allow-list matches: RETURN (not blocked; the host's rules decide) or ACCEPT.",
        "RETURN",
    ),
    Key("logopts", parse_logopts_text, "Extra iptables LOG options, e.g. --log-uid --log-level 6."),
    Key("logopts_direction", choice(*DIRECTIONS), "Direction the logopts apply to: in, out, both.", "both"),
    Key("load_br_netfilter", parse_bool, "Load br_netfilter at boot so bridged traffic is filtered.", "no"),
    Key("skip_checkvalidip", parse_bool, "Do not check the public IP when adding (offsite installs).", "no"),
    _cisco("external_ip"),
    Key(
        "keep_reachable",
        parse_ip_list,
        "Addresses never blocked; tsadmin add puts its SSH client here so you cannot lock yourself out.",
    ),
    _cisco("min_prefix"),
    _cisco("min_prefix6"),
    _cisco(
        "max_shrink",
        help="Refuse (unless --force) a block list that loses more than this fraction of the last good one.",
    ),
    _cisco("dns_timeout"),
    Key(
        "autoconf_server",
        _cisco("dns_server").parse,
        "Configuration service (DNS over TLS) for --type auto.",
        "192.124.129.42",
    ),
    Key("autoconf_port", int_range(1, 65535), "TCP port of the configuration service.", "5353"),
    Key(
        "autoconf_hostname",
        parse_dns_name,
        "Name the configuration service's TLS certificate must carry.",
        "config.threatstop.com",
    ),
    _cisco("ca_bundle", help="CA bundle for the configuration service and the log upload's TLS checks."),
    _cisco("logfile", default="/var/log/threatstop/threatstop.log", help="Block log lines."),
    _cisco("url"),
    _cisco("proxy"),
    _cisco("log_part_size"),
    _cisco("keep_uploaded_days"),
    _cisco(
        "log_reopen_command",
        default=None,
        help="Makes the syslog daemon reopen the log after tsadmin logs renamed it (default: by daemon).",
    ),
    _cisco("state_dir"),
    _cisco("metrics_dir"),
    Key(
        "journal_dir",
        parse_plain,
        "Journal files to read the block log from where no syslog daemon runs (default: the system's).",
    ),
)

# What `tsadmin add` asks in manual mode, in order; the advanced ones only with --advanced.
# What --type auto needs before it can ask the configuration service.
AUTOCONF_KEYS = (
    "device_id",
    "auto_key",
    "autoconf_server",
    "autoconf_port",
    "autoconf_hostname",
    "ca_bundle",
    "dns_timeout",
)
# The device ID first: the portal's device page gives it, and the uploaded logs are attributed by it.
PROMPTS = ("device_id", "block_list", "allow_list", "tsprefix", "allow_action", "max_policy_size")
ADVANCED_PROMPTS = ("port", "dns_server", "load_br_netfilter", "logopts", "logopts_direction")


@dataclass(frozen=True)
class Paths:
    """Every file tsadmin reads or writes; ``root`` is ``/`` on a host and a scratch dir in tests."""

    root: Path

    def under(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def install_dir(self) -> Path:
        return self.under("/opt/threatstop")

    @property
    def config(self) -> Path:
        return self.install_dir / "threatstop.conf"

    @property
    def lock(self) -> Path:
        return self.install_dir / "tsadmin.lock"

    @property
    def state(self) -> Path:
        """Our live sets as saved after every update: the boot-time restore reads it."""
        return self.install_dir / "threatstop_ipset.save"

    @property
    def state_pending(self) -> Path:
        """Present while the sets hold something the saved state does not (a save that failed)."""
        return self.install_dir / "threatstop_ipset.save.pending"

    @property
    def installed_firewall(self) -> Path:
        """The backend whose objects are installed: a change of backend retires that one."""
        return self.install_dir / "installed_firewall"

    @property
    def installed_prefix(self) -> Path:
        """The prefix whose chain and sets are installed: a prefix change retires that one."""
        return self.install_dir / "installed_prefix"

    def backup(self, what: str) -> Path:
        """``pre-threatstop_ipset``, ``pre-threatstop_iptables``, ``pre-threatstop_ip6tables``."""
        return self.install_dir / f"pre-threatstop_{what}"

    @property
    def tsadmin_log(self) -> Path:
        return self.under("/var/log/threatstop/tsadmin.log")

    @property
    def modules_load(self) -> Path:
        return self.under("/etc/modules-load.d/threatstop.conf")

    @property
    def systemd_unit(self) -> Path:
        return self.under("/etc/systemd/system/threatstop.service")

    def relative(self, path: Path) -> Path:
        """``path`` as a system path relative to the root, for sysconf's DESTDIR-style helpers."""
        return path.relative_to(self.root)
