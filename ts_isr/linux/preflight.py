"""What ``tsadmin add`` checks before its first change: the firewall's tools and kernel support, something
that runs the periodic jobs (cron, else systemd timers), and the syslog daemon's state.

The daemons are told apart by what they leave under ``--root``: a live pid in
their pid file, ``/run/systemd/system`` for systemd (sd_booted's test), the
syslog daemon's main configuration file.  A test root stands for a host shaped
the way the test writes it, and the real ``/`` is read the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ts_isr.errors import ConfigError, DeviceError
from ts_isr.linux.host import pid_alive, syslog_daemon, syslog_running
from ts_isr.linux.settings import Paths
from ts_isr.linux.system import run_tool
from ts_isr.tools import find_tool

# Tool, and the Debian package that installs it.
FIREWALL_TOOLS = {
    "ipset": "ipset",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "iptables-restore": "iptables",
    "ip6tables": "iptables",
    "ip6tables-save": "iptables",
    "ip6tables-restore": "iptables",
}
CRON_PIDFILES = ("/run/crond.pid", "/var/run/crond.pid")  # Debian's cron and cronie both write crond.pid
SYSTEMD_RUNNING = "/run/systemd/system"


@dataclass(frozen=True)
class HostFacts:
    """What the host runs, as far as ``add`` cares."""

    cron: bool
    systemd: bool
    syslog: str | None  # the daemon whose configuration is installed
    syslog_running: bool


def probe(paths: Paths) -> HostFacts:
    daemon = syslog_daemon(paths)
    return HostFacts(
        cron=any(pid_alive(paths.under(pidfile)) for pidfile in CRON_PIDFILES),
        systemd=paths.under(SYSTEMD_RUNNING).is_dir(),
        syslog=daemon,
        syslog_running=daemon is not None and syslog_running(paths, daemon),
    )


def missing_tools(lookup: Callable[[str], str | None] = find_tool) -> list[str]:
    """The firewall tools ``lookup`` cannot find."""
    return [tool for tool in FIREWALL_TOOLS if lookup(tool) is None]


def check_firewall(
    lookup: Callable[[str], str | None] = find_tool, run: Callable[[list[str]], str] = run_tool
) -> None:
    """Every tool the ipset + iptables firewall needs, and a kernel that has ipsets: else one line."""
    missing = missing_tools(lookup)
    if missing:
        packages = " ".join(dict.fromkeys(FIREWALL_TOOLS[tool] for tool in missing))
        raise ConfigError(
            f"{', '.join(missing)} not installed; install them (apt-get install {packages}) and run "
            "tsadmin add again; nothing was changed"
        )
    try:
        run(["ipset", "list", "-n"])
    except DeviceError as exc:
        raise DeviceError(
            f"the kernel refuses ipsets ({exc}): load the ip_set module (modprobe ip_set) or use a "
            "kernel that has it, and run tsadmin add again; nothing was changed"
        ) from None


def scheduler(facts: HostFacts) -> str:
    """``cron`` when a cron daemon runs, ``systemd`` timers when systemd runs the host, else a refusal."""
    if facts.cron:
        return "cron"
    if facts.systemd:
        return "systemd"
    raise ConfigError(
        "no cron daemon runs here and systemd does not run this host: nothing would update the policy; "
        "install and start cron (apt-get install cron), then run tsadmin add again; nothing was changed"
    )


def syslog_warning(facts: HostFacts, logfile: Path) -> str | None:
    """What an admin must hear about the block log when its daemon is not running."""
    if facts.syslog is None or facts.syslog_running:
        return None
    return (
        f"{facts.syslog} is installed but not running: until it is started (systemctl start "
        f"{facts.syslog}), the block log lines stay in the kernel log (dmesg, journalctl -k), "
        f"not in {logfile}, and tsadmin logs has nothing to upload"
    )
