"""System integration: syslog-ng and logrotate files from templates, cron entries, syslog-ng reload.

Every file is checked by the real tool before it replaces anything, and is
written atomically, so a bad template or value never leaves a broken system
configuration behind.  ``root`` works like DESTDIR: every system path goes
under it and the crontab becomes ``root/crontab``, for tests and packaging.
Shared by setup (Cisco) and tsadmin (Linux host).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from crontab import CronTab

from ts_isr.errors import TsError
from ts_isr.files import project_file, write_atomic
from ts_isr.log import escape
from ts_isr.tools import child_env, find_tool

SYSLOG_NG_SNIPPET = Path("etc/syslog-ng/conf.d/threatstop.conf")
LOGROTATE_FILE = Path("etc/logrotate.d/threatstop")
ROOT_CRONTAB = "crontab"
TOOL_TIMEOUT = 60.0


def config_string(value: str | os.PathLike) -> str:
    """A value safe inside a double-quoted syslog-ng or logrotate string, or a clear refusal."""
    text = str(value)
    if any(ch in text for ch in '"\\$') or any(ord(ch) < 32 for ch in text):
        raise TsError(f"{escape(text)}: quotes, backslashes, '$' and control characters cannot be used here")
    return text


def render(template: str, values: Mapping[str, object]) -> str:
    """The template ``template`` (e.g. ``syslog-ng/threatstop.conf``) with its ``$names`` filled in."""
    path = project_file(template)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TsError(
            f"cannot read the template {path} ({exc.strerror}); reinstall ts_isr or run it from a checkout"
        ) from None
    try:
        return Template(text).substitute(values)
    except KeyError as exc:
        raise TsError(f"template {template} needs a value for {exc}; this is a bug in ts_isr") from None


def syslog_ng_values(
    *,
    config: Path,
    device: ipaddress.IPv4Address | ipaddress.IPv6Address,
    syslog_port: int,
    logfile: Path,
) -> dict[str, object]:
    """Template values for ``syslog-ng/threatstop.conf``: accept the device's address and nothing else."""
    if device.version == 4:
        listen, address_filter = "0.0.0.0", f'netmask("{device}/32")'
    else:
        listen, address_filter = "::", f'netmask6("{device}/128")'
    return {
        "config": config_string(config),
        "device": device,
        "listen_ip": listen,
        "ip_protocol": device.version,
        "syslog_port": syslog_port,
        "address_filter": address_filter,
        "logfile": config_string(logfile),
    }


def logrotate_values(
    *, config: Path, logfile: Path, tsoutput: Path, keep: int, reopen: Sequence[str]
) -> dict[str, object]:
    """Template values for ``logrotate/threatstop``; ``reopen`` makes syslog-ng reopen its files."""
    if not reopen or any(ch in "\n\r" for word in reopen for ch in word):
        raise TsError("the log reopen command must be one line; fix log_reopen_command in the config")
    return {
        "config": config_string(config),
        "logfile": config_string(logfile),
        "tsoutput": config_string(tsoutput),
        "fleet_logs": config_string(tsoutput.parent / "fleet" / "*.log"),  # a fleet's per-device logs
        "keep": keep,
        "reopen_command": shlex.join(reopen) + " >/dev/null",
    }


def run_system_tool(
    argv: Sequence[str], package: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a system tool found in PATH or the sbin directories (cron's PATH lacks them), in
    :func:`~ts_isr.tools.child_env` (setup's passwords stay in setup)."""
    tool = find_tool(argv[0])
    if tool is None:
        raise TsError(f"{argv[0]} is not installed; install it (Debian: apt-get install {package}) and rerun")
    try:
        return subprocess.run(
            [tool, *argv[1:]],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
            env=child_env(),
        )
    except subprocess.TimeoutExpired:
        raise TsError(f"{argv[0]} did not finish within {TOOL_TIMEOUT:.0f}s") from None


def _detail(done: subprocess.CompletedProcess[str]) -> str:
    return escape(" ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}")


def _check_with(argv: Sequence[str], package: str) -> None:
    """The tool must accept the file: exit status 0 and no ``error:`` line (logrotate exits 0 on those)."""
    done = run_system_tool(argv, package)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    if done.returncode != 0 or errors:
        detail = escape(" ".join(errors)) if errors else _detail(done)
        raise TsError(f"{argv[0]} rejects the generated file ({detail}); nothing was installed")


def check_syslog_ng_snippet(text: str) -> None:
    """Let the real syslog-ng parse ``text`` (a conf.d snippet) inside a minimal full configuration."""
    with tempfile.TemporaryDirectory(prefix="ts_isr-syslog-ng.") as tmp:
        full = Path(tmp) / "syslog-ng.conf"
        full.write_text("@version: current\n" + text, encoding="utf-8")
        _check_with(["syslog-ng", "--syntax-only", "--cfgfile", str(full)], "syslog-ng-core")


def check_logrotate(text: str) -> None:
    """Let the real logrotate parse ``text`` in debug mode (it changes nothing, not even its state)."""
    with tempfile.TemporaryDirectory(prefix="ts_isr-logrotate.") as tmp:
        conf = Path(tmp) / "threatstop"
        conf.write_text(text, encoding="utf-8")
        conf.chmod(0o644)
        _check_with(["logrotate", "-d", "-s", str(Path(tmp) / "status"), str(conf)], "logrotate")


def system_path(root: Path | None, relative: Path) -> Path:
    """Where a system file goes: under ``root`` when given (DESTDIR), else from ``/``."""
    return (root or Path("/")) / relative


def install_file(root: Path | None, relative: Path, text: str, mode: int = 0o644) -> Path:
    """Install ``text`` as the system file ``relative``; an identical file is left untouched."""
    install_file_changed(root, relative, text, mode)
    return system_path(root, relative)


def install_file_changed(root: Path | None, relative: Path, text: str, mode: int = 0o644) -> bool:
    """:func:`install_file`, telling whether anything was written (False: the file was identical)."""
    path = system_path(root, relative)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    try:
        write_atomic(path, text, mode)
    except OSError as exc:
        raise TsError(f"cannot write {path} ({exc.strerror}); run setup as root or pass --root DIR") from None
    return True


def reload_syslog_ng(control: Path | None = None) -> None:
    """Make the running syslog-ng read its configuration again (systemd's unit as the fallback)."""
    done = run_system_tool(
        ["syslog-ng-ctl", "reload"] + (["--control", str(control)] if control else []), "syslog-ng"
    )
    if done.returncode == 0:
        return
    systemd = control is None and shutil.which("systemctl") is not None
    if (
        systemd
        and run_system_tool(["systemctl", "reload-or-restart", "syslog-ng"], "systemd").returncode == 0
    ):
        return
    raise TsError(
        f"syslog-ng did not reload ({_detail(done)}); start it (systemctl start syslog-ng) "
        "so that the device's logs are received"
    )


@dataclass(frozen=True)
class CronJob:
    """One crontab line, found again by its ``tag`` (the line's comment) so that re-runs replace it."""

    schedule: str
    command: str
    tag: str


def _read_tab(root: Path | None) -> CronTab:
    """The user's crontab (read by ``crontab -l`` run as every tool is), or ``root/crontab``."""
    if root is None:
        done = run_system_tool(["crontab", "-l"], "cron")
        if done.returncode != 0 and "no crontab for" not in done.stderr:
            raise TsError(f"cannot read the crontab ({_detail(done)}); is cron installed?")
        return CronTab(tab=done.stdout if done.returncode == 0 else "")
    path = system_path(root, Path(ROOT_CRONTAB))
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return CronTab(tab=text)


def _write_tab(tab: CronTab, root: Path | None) -> None:
    if root is not None:
        write_atomic(system_path(root, Path(ROOT_CRONTAB)), tab.render(), 0o600)
        return
    done = run_system_tool(["crontab", "-"], "cron", stdin=tab.render())
    if done.returncode != 0:
        raise TsError(f"cannot write the crontab ({_detail(done)})")


def ensure_cron_jobs(jobs: Sequence[CronJob], root: Path | None = None) -> list[str]:
    """Put ``jobs`` in the user's crontab (or ``root/crontab``), replacing lines with the same tags.

    Returns the lines as written.  Other lines, comments and variables are
    kept exactly; running this twice changes nothing.
    """
    tab = _read_tab(root)
    for job in jobs:
        tab.remove_all(comment=job.tag)
        entry = tab.new(command=job.command, comment=job.tag)
        try:
            entry.setall(job.schedule)
        except (ValueError, KeyError) as exc:
            raise TsError(f"{job.schedule!r} is not a cron schedule ({exc})") from None
    _write_tab(tab, root)
    return [str(entry) for job in jobs for entry in tab.find_comment(job.tag)]


def remove_cron_jobs(tags: Sequence[str], root: Path | None = None) -> int:
    """Take out the lines carrying ``tags``; other lines stay.  Returns how many went."""
    tab = _read_tab(root)
    removed = sum(tab.remove_all(comment=tag) for tag in tags)
    if removed:
        _write_tab(tab, root)
    return removed
