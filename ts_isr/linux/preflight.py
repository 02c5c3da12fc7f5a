"""What ``tsadmin add`` checks about the host before its first change (the firewall backend checks its own
tools and kernel support): something that runs the periodic jobs (cron, else systemd timers), and the
syslog daemon's state.

The daemons are told apart by what they leave under ``--root``: a live pid in
their pid file, ``/run/systemd/system`` for systemd (sd_booted's test), the
syslog daemon's main configuration file.  A test root stands for a host shaped
the way the test writes it, and the real ``/`` is read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ts_isr.errors import ConfigError
from ts_isr.linux.host import pid_alive, syslog_daemon, syslog_running
from ts_isr.linux.settings import Paths

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
