"""What runs ``tsadmin update`` and ``tsadmin logs`` later: cron lines, or systemd timers on hosts without
cron.  ``add`` installs the one the host can run (and takes out the other); ``remove`` takes out both.

Every change is noted in the add's :class:`~ts_isr.linux.rollback.Rollback`
first.  systemctl is only run on the real ``/``: under a test's ``--root`` the
unit files are written and checked, nothing is started.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from string import Template

from ts_isr.linux.host import render_words, systemctl_told, systemd_runs, tsadmin_command
from ts_isr.linux.rollback import Rollback
from ts_isr.linux.settings import Paths
from ts_isr.linux.system import run_tool
from ts_isr.sysconf import CronJob, ensure_cron_jobs, install_file_changed, remove_cron_jobs, run_system_tool
from ts_isr.tools import find_tool

CRON_TAGS = ("threatstop tsadmin update", "threatstop tsadmin logs")
# command: (when, systemd calendar); the policy every 2 hours at :23, the block log hourly.
TIMERS = {"update": ("every 2 hours at :23", "*-*-* 00/2:23:00"), "logs": ("hourly", "*-*-* *:07:00")}
_SERVICE = """# ThreatSTOP ts-iptables: tsadmin $command, started by threatstop-$command.timer.
# Written by `tsadmin add` on a host without cron; removed by `tsadmin remove`.
[Unit]
Description=ThreatSTOP IP Defense: tsadmin $command
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
# Every wait of a run is bounded on its own; this is the last word on one that still hangs.
TimeoutStartSec=1800
ExecStart=$python $tsadmin $command --root $root --config $config
"""
_TIMER = """# ThreatSTOP ts-iptables: tsadmin $command $when.
# Written by `tsadmin add` on a host without cron; removed by `tsadmin remove`.
[Unit]
Description=ThreatSTOP IP Defense: tsadmin $command $when

[Timer]
OnCalendar=$calendar
Persistent=true

[Install]
WantedBy=timers.target
"""


def cron_jobs(paths: Paths, config_file: Path) -> list[CronJob]:
    """The interpreter running now and this script: cron's bare environment needs both spelled out."""
    command = [*tsadmin_command(), "--root", str(paths.root), "--config", str(config_file.resolve())]
    return [
        CronJob("17 */2 * * *", shlex.join([*command[:2], "update", *command[2:]]), CRON_TAGS[0]),
        CronJob("7 * * * *", shlex.join([*command[:2], "logs", *command[2:]]), CRON_TAGS[1]),
    ]


def cron_root(paths: Paths) -> Path | None:
    return None if paths.root == Path("/") else paths.root


def timer_names() -> list[str]:
    return [f"threatstop-{command}.timer" for command in TIMERS]


def timer_units(paths: Paths, config_file: Path) -> dict[Path, str]:
    """Each command's service and timer, rendered (and refused) before anything is installed."""
    units = {}
    words = render_words(paths, config_file)
    for command, (when, calendar) in TIMERS.items():
        base = paths.under(f"/etc/systemd/system/threatstop-{command}")
        units[base.with_suffix(".service")] = Template(_SERVICE).substitute(words, command=command)
        units[base.with_suffix(".timer")] = Template(_TIMER).substitute(
            command=command, when=when, calendar=calendar
        )
    return units


def timer_units_paths(paths: Paths) -> list[Path]:
    bases = [paths.under(f"/etc/systemd/system/threatstop-{command}") for command in TIMERS]
    return [base.with_suffix(suffix) for base in bases for suffix in (".service", ".timer")]


def crontab_text(paths: Paths) -> str | None:
    """The crontab as it is now (None: there is none, or cron is not installed)."""
    root = cron_root(paths)
    if root is not None:
        path = root / "crontab"
        return path.read_text(encoding="utf-8") if path.exists() else None
    if find_tool("crontab") is None:
        return None
    done = run_system_tool(["crontab", "-l"], "cron")
    return done.stdout if done.returncode == 0 else None


def put_crontab_back(paths: Paths, text: str | None) -> None:
    """Undo for the real crontab (a test root's is a file, put back like any other)."""
    if text is None:
        run_system_tool(["crontab", "-r"], "cron")
    else:
        run_tool(["crontab", "-"], text)


def note_crontab(paths: Paths, undo: Rollback) -> None:
    root = cron_root(paths)
    if root is not None:
        undo.file(root / "crontab")
    else:
        before = crontab_text(paths)
        undo.add("put the crontab back", lambda: put_crontab_back(paths, before))


def install_schedule(paths: Paths, kind: str, config_file: Path, undo: Rollback) -> bool:
    """Cron lines (``kind`` cron) or timers (systemd), the other taken out; True when anything changed."""
    if kind == "cron":
        changed = remove_timers(paths, undo)
        before = crontab_text(paths)
        note_crontab(paths, undo)
        ensure_cron_jobs(cron_jobs(paths, config_file), cron_root(paths))
        return changed or crontab_text(paths) != before
    changed = remove_cron_lines(paths, undo)
    return install_timers(paths, timer_units(paths, config_file), undo) or changed


def install_timers(paths: Paths, units: dict[Path, str], undo: Rollback) -> bool:
    changed = False
    for path, text in units.items():
        undo.file(path)
        changed |= install_file_changed(paths.root, paths.relative(path), text)
    if changed and systemd_runs(paths):
        undo.add("disable the timers", lambda: systemctl_told("disable", "--now", *timer_names()))
        run_tool(["systemctl", "daemon-reload"])
        run_tool(["systemctl", "enable", "--now", *timer_names()])
    return changed


def remove_timers(paths: Paths, undo: Rollback | None = None) -> bool:
    """Take the timers out (stopped first); a failing systemctl is a warning, never a stop half-way."""
    present = [path for path in timer_units_paths(paths) if path.exists()]
    if not present:
        return False
    if systemd_runs(paths):
        systemctl_told("disable", "--now", *timer_names())
        if undo is not None:
            undo.add("enable the timers again", lambda: systemctl_told("enable", "--now", *timer_names()))
    for path in present:
        if undo is not None:
            undo.file(path)
        path.unlink(missing_ok=True)
    if systemd_runs(paths):
        systemctl_told("daemon-reload")
    return True


def remove_cron_lines(paths: Paths, undo: Rollback | None = None) -> bool:
    """Take our cron lines out, when there is a crontab to read at all."""
    text = crontab_text(paths)
    if text is None or not any(tag in text for tag in CRON_TAGS):
        return False
    if undo is not None:
        note_crontab(paths, undo)
    return bool(remove_cron_jobs(CRON_TAGS, cron_root(paths)))
