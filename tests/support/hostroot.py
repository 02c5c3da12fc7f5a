"""A test root shaped like a host: which daemons run is what tsadmin's preflight reads under ``--root``.

A daemon "runs" when its pid file names a live process: the test process itself.
"""

from __future__ import annotations

import os
from pathlib import Path

PIDFILES = {"cron": "run/crond.pid", "syslog-ng": "run/syslog-ng.pid", "rsyslog": "run/rsyslogd.pid"}
SYSLOG_CONFIGS = {"syslog-ng": "etc/syslog-ng/syslog-ng.conf", "rsyslog": "etc/rsyslog.conf"}


def shape_host(
    root: Path,
    *,
    cron: bool = True,
    systemd: bool = False,
    syslog: str | None = None,
    syslog_running: bool = True,
) -> Path:
    """Write the marks of a host with cron and/or systemd, and a syslog daemon installed (and running)."""
    running = [name for name, wanted in (("cron", cron), (syslog, syslog and syslog_running)) if wanted]
    for name in running:
        pidfile = root / PIDFILES[str(name)]
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{os.getpid()}\n")
    if systemd:
        (root / "run/systemd/system").mkdir(parents=True, exist_ok=True)
    if syslog:
        config = root / SYSLOG_CONFIGS[syslog]
        config.parent.mkdir(parents=True, exist_ok=True)
        if not config.exists():
            config.write_text("@version: current\n" if syslog == "syslog-ng" else "")
    return root


def write_config(root: Path, text: str) -> Path:
    """tsadmin's config under the root, mode 0600 as tsadmin requires of a file holding secrets."""
    config = root / "opt/threatstop/threatstop.conf"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    config.chmod(0o600)
    return config
