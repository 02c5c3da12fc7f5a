"""Running a crontab line the way cron does: ``/bin/sh -c`` with cron's own small environment.

The end-to-end suites run the lines setup and tsadmin wrote, so that a line
which only works from the developer's shell (its PATH, its virtualenv) fails.
"""

from __future__ import annotations

from pathlib import Path

from crontab import CronTab


def cron_command(crontab: Path, tag: str) -> list[str]:
    """argv that runs the command of the one crontab line tagged ``tag`` (its comment), as cron would."""
    [job] = CronTab(tabfile=str(crontab)).find_comment(tag)
    return ["/bin/sh", "-c", job.command]


def cron_env(home: Path) -> dict[str, str]:
    """What cron gives a root job (Debian's cron: PATH without /sbin, no virtualenv, no proxies)."""
    return {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": str(home), "LOGNAME": "root"}
