"""The host's files around the firewall: backups, br_netfilter at boot, syslog routing, the boot unit.

Each step is idempotent (an identical file is left alone) and each has its
undo for ``tsadmin remove``.  Daemons are only told to reload when the root
is the real ``/``: under a test's ``--root`` nothing outside it is touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import sys
from pathlib import Path
from string import Template

from ts_isr.errors import TsError
from ts_isr.files import check_dir, check_trusted, project_file, trusted_path
from ts_isr.linux.settings import Paths
from ts_isr.linux.system import run_tool
from ts_isr.log import escape, log
from ts_isr.sysconf import (
    check_logrotate,
    check_syslog_ng_snippet,
    config_string,
    install_file,
    install_file_changed,
    reload_syslog_ng,
    run_system_tool,
)

PACKAGE = Path(__file__).resolve().parent.parent  # ts_isr: root imports every module of it

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
UNIT_TEMPLATE = "systemd/threatstop.service"
MODULES_LOAD_TEXT = (
    "# ThreatSTOP: filter bridged traffic with iptables (tsadmin add --load_br_netfilter)\nbr_netfilter\n"
)
SYSLOG_NG_SNIPPET = "etc/syslog-ng/conf.d/threatstop-kernel.conf"
RSYSLOG_SNIPPET = "etc/rsyslog.d/30-threatstop.conf"
SYSLOG_PIDFILES = {"syslog-ng": "/run/syslog-ng.pid", "rsyslog": "/run/rsyslogd.pid"}
LOGROTATE_SNIPPET = "etc/logrotate.d/threatstop-tsadmin"
# rsyslog reopens its files (and rereads nothing else) on SIGHUP.
RSYSLOG_HUP = ("systemctl", "kill", "-s", "HUP", "rsyslog.service")
# tsadmin opens its log afresh on every run, so a plain rename needs no reopen.
_LOGROTATE = """# ThreatSTOP ts-iptables: tsadmin's own log (tsadmin logs rotates and sends the block log).
"$tsadmin_log" {
    weekly
    rotate 8
    compress
    delaycompress
    missingok
    notifempty
}
"""
# Debian's syslog-ng.conf defines s_src (system() and internal(), the kernel's messages included).
# Any local user can write "<4>kernel: ThreatSTOP-..." to /dev/log; such messages carry the sender's
# pid (${.unix.pid}, from the socket's credentials), the kernel's own (/dev/kmsg) carry none.
_SYSLOG_NG = """# ThreatSTOP ts-iptables: the kernel's ThreatSTOP- LOG lines, for tsadmin logs.
# Only the kernel's own messages: anything sent to /dev/log carries its sender's pid.
filter f_threatstop_kernel {
    facility(kern) and "$${.unix.pid}" eq "" and message("ThreatSTOP-" type(string) flags(substring));
};
destination d_threatstop_kernel { file("$logfile" create-dirs(yes) perm(0640) dir-perm(0750)); };
log { source(s_src); filter(f_threatstop_kernel); destination(d_threatstop_kernel); };
"""
_RSYSLOG = """# ThreatSTOP ts-iptables: the kernel's ThreatSTOP- LOG lines, for tsadmin logs.
# The kernel's input only (imklog): a local user can claim the kern facility on /dev/log, not this input.
if $$inputname == "imklog" and $$msg contains "ThreatSTOP-" then {
    action(type="omfile" file="$logfile")
}
"""


def backup_once(paths: Paths, saved: dict[str, str]) -> list[Path]:
    """Keep the host's rules as they were before the first install; later runs never overwrite them."""
    written = []
    for what, text in saved.items():
        path = paths.backup(what)
        if not path.exists():
            install_file(paths.root, paths.relative(path), text, 0o600)
            written.append(path)
    return written


def set_br_netfilter(paths: Paths, wanted: bool) -> bool:
    """Write (or remove) the modules-load file and load the module now; True when anything changed."""
    path = paths.modules_load
    if not wanted:
        return remove_file(path)
    changed = install_file_changed(paths.root, paths.relative(path), MODULES_LOAD_TEXT)
    if paths.root == Path("/"):
        run_tool(["modprobe", "br_netfilter"])
    return changed


def syslog_daemon(paths: Paths) -> str | None:
    """The syslog daemon this host runs: syslog-ng or rsyslog (their config files tell), else None."""
    if paths.under("/etc/syslog-ng/syslog-ng.conf").exists():
        return "syslog-ng"
    if paths.under("/etc/rsyslog.conf").exists():
        return "rsyslog"
    return None


def render_kernel_log(paths: Paths, logfile: Path) -> tuple[str, Path, str] | None:
    """The daemon, its snippet's path and text (checked by syslog-ng itself), before anything changes."""
    daemon = syslog_daemon(paths)
    values = {"logfile": config_string(logfile)}
    if daemon == "syslog-ng":
        text = Template(_SYSLOG_NG).substitute(values)
        check_syslog_ng_snippet("source s_src { internal(); };\n" + text)
        return daemon, paths.root / SYSLOG_NG_SNIPPET, text
    if daemon == "rsyslog":
        return daemon, paths.root / RSYSLOG_SNIPPET, Template(_RSYSLOG).substitute(values)
    return None


def route_kernel_log(
    paths: Paths, logfile: Path, rendered: tuple[str, Path, str] | None = None, *, running: bool = True
) -> str | None:
    """Send the kernel's ``ThreatSTOP-`` lines to ``logfile``; returns the daemon configured.

    A daemon that is not running gets its snippet (it reads it when started) and no reload.
    """
    rendered = rendered or render_kernel_log(paths, logfile)
    if rendered is None:
        log.warning(
            "no syslog-ng or rsyslog found: the block log lines stay in the kernel log (dmesg); "
            "install syslog-ng and run tsadmin add again to get /var/log/threatstop/threatstop.log"
        )
        return None
    daemon, path, text = rendered
    if install_file_changed(paths.root, paths.relative(path), text) and running:
        reload_syslog(paths, daemon)
    return daemon


def reopen_command(paths: Paths) -> tuple[str, ...]:
    """How the host's syslog daemon is told to reopen the block log after ``tsadmin logs`` renamed it."""
    daemon = syslog_daemon(paths)
    if daemon == "syslog-ng":
        return ("syslog-ng-ctl", "reopen")
    if daemon == "rsyslog":
        return RSYSLOG_HUP
    return ()


def render_logrotate(paths: Paths) -> str:
    """Rotation of tsadmin's own log, checked by logrotate itself before anything is installed."""
    text = Template(_LOGROTATE).substitute(tsadmin_log=config_string(paths.tsadmin_log))
    check_logrotate(text)
    return text


def install_logrotate(paths: Paths, text: str | None = None) -> bool:
    """Keep tsadmin's own log from growing without end."""
    return install_file_changed(paths.root, Path(LOGROTATE_SNIPPET), text or render_logrotate(paths))


def remove_log_config(paths: Paths) -> bool:
    """Undo route_kernel_log and install_logrotate (tsadmin remove); the log files themselves stay.

    A daemon that does not run is not reloaded, and a failed reload is a warning: removal goes on.
    """
    changed = remove_file(paths.root / LOGROTATE_SNIPPET)
    for relative, daemon in ((SYSLOG_NG_SNIPPET, "syslog-ng"), (RSYSLOG_SNIPPET, "rsyslog")):
        if remove_file(paths.root / relative):
            changed = True
            if syslog_running(paths, daemon):
                try:
                    reload_syslog(paths, daemon)
                except TsError as exc:
                    log.warning(f"{exc}; the ThreatSTOP snippet is removed all the same")
    return changed


def reload_syslog(paths: Paths, daemon: str) -> None:
    """Make the daemon read its configuration again (and reopen its files); only on the real host."""
    if paths.root != Path("/"):
        return
    if daemon == "syslog-ng":
        reload_syslog_ng()
    elif shutil.which("systemctl"):
        systemctl_told(*RSYSLOG_HUP[1:])


def systemctl_told(*args: str) -> None:
    """A systemctl call whose failure, or hang, is told, not raised: removal goes on whatever it says."""
    try:
        done = run_system_tool(["systemctl", *args], "systemd")
    except TsError as exc:
        log.warning(f"{exc}; continuing")
        return
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no error text")
        log.warning(f"systemctl {args[0]} failed: {escape(first)}; continuing")


def pid_alive(path: Path) -> bool:
    """A pid file naming a process that exists."""
    try:
        pid = int(path.read_text(encoding="ascii", errors="replace").split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def syslog_running(paths: Paths, daemon: str) -> bool:
    """The daemon runs: its pid file (under the root) names a live process."""
    return pid_alive(paths.under(SYSLOG_PIDFILES[daemon]))


def environ_value(environ: bytes, name: str) -> str | None:
    """One variable from a ``/proc/<pid>/environ`` block (NUL-separated ``NAME=value``)."""
    prefix = name.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def parent_pid(stat: str) -> int:
    """The parent's pid from ``/proc/<pid>/stat``; the command name in parentheses may hold spaces."""
    return int(stat.rsplit(")", 1)[1].split()[1])


def ancestor_variable(name: str, pid: int | None = None) -> str | None:
    """``name`` from the nearest parent process that has it (sudo resets tsadmin's own environment)."""
    pid = os.getppid() if pid is None else pid
    while pid > 1:
        proc = Path("/proc") / str(pid)
        try:
            value = environ_value((proc / "environ").read_bytes(), name)
            if value:
                return value
            pid = parent_pid((proc / "stat").read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError, IndexError):
            return None
    return None


def parse_resolvers(text: str) -> list[IPAddress]:
    """The ``nameserver`` addresses of a resolv.conf; anything unparsable is skipped."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(ipaddress.ip_address(words[1].split("%")[0]))  # no scope id in a set
    return found


def parse_gateways(route: str, route6: str) -> list[IPAddress]:
    """Default gateways from ``/proc/net/route`` (little-endian hex) and ``/proc/net/ipv6_route``."""
    found: list[IPAddress] = []
    for line in route.splitlines()[1:]:
        fields = line.split()
        if (
            len(fields) >= 8
            and fields[1] == "00000000"
            and fields[7] == "00000000"
            and fields[2] != "00000000"
        ):
            with contextlib.suppress(ValueError):
                found.append(ipaddress.IPv4Address(bytes.fromhex(fields[2])[::-1]))
    for line in route6.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0] == "0" * 32 and fields[1] == "00" and fields[4] != "0" * 32:
            with contextlib.suppress(ValueError):
                found.append(ipaddress.IPv6Address(bytes.fromhex(fields[4])))
    return found


def gateways_and_resolvers(paths: Paths) -> list[IPAddress]:
    """This host's (this network namespace's) default gateways and DNS resolvers."""

    def read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    gateways = parse_gateways(read(Path("/proc/net/route")), read(Path("/proc/net/ipv6_route")))
    return [*gateways, *parse_resolvers(read(paths.under("/etc/resolv.conf")))]


def tsadmin_command() -> list[str]:
    """This interpreter and this script: cron and systemd start with a bare PATH and no virtualenv.

    Root runs them every two hours and at boot, so they are refused (one line, before any change)
    when another user could change what they run: the interpreter's and the script's files and every
    folder on their way, every folder Python imports from, and this package's own files.
    """
    script = Path(sys.argv[0]).resolve()
    for path, role in ((Path(sys.executable), "the interpreter"), (script, "the tsadmin script")):
        what = f"{role} that cron and the boot unit would run,"
        check_trusted(trusted_path(path, what), what)
    from_environment = {
        Path(entry).resolve() for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry
    }
    for folder in dict.fromkeys(Path(entry).resolve() for entry in sys.path if entry):
        if folder.is_dir() and folder not in from_environment:  # cron's runs have no PYTHONPATH
            check_dir(folder, "the Python import folder")
    for folder, _, names in os.walk(PACKAGE):  # its folders too: whoever can write one adds a module
        check_trusted(Path(folder), "tsadmin's package folder")
        for name in names:
            if name.endswith((".py", ".pyc")):
                check_trusted(Path(folder) / name, "tsadmin's module")
    return [sys.executable, str(script)]


def unit_word(value: str | Path) -> str:
    """One ExecStart word: double-quoted so spaces stay inside, ``%`` doubled so systemd keeps it.

    config_string refuses what a systemd quoted word cannot hold (quotes, backslashes, ``$``).
    """
    return '"' + config_string(value).replace("%", "%%") + '"'


def render_words(paths: Paths, config_file: Path) -> dict[str, str]:
    """The ExecStart words every unit of ours shares: interpreter, script, root and config."""
    python, tsadmin = tsadmin_command()
    return {
        "python": unit_word(python),
        "tsadmin": unit_word(tsadmin),
        "root": unit_word(paths.root),
        "config": unit_word(config_file.resolve()),
    }


def render_unit(paths: Paths, config_file: Path) -> str:
    """The unit's text, rendered (and refused) before anything is installed."""
    template = Template(project_file(UNIT_TEMPLATE).read_text(encoding="utf-8"))
    return template.substitute(render_words(paths, config_file))


def systemd_runs(paths: Paths) -> bool:
    """systemctl is run only on the real ``/`` booted by systemd; under a test root files are enough."""
    return paths.root == Path("/") and Path("/run/systemd/system").is_dir()


def install_unit(paths: Paths, text: str) -> bool:
    """The boot-time restore unit (from :func:`render_unit`), enabled when systemd runs this host."""
    changed = install_file_changed(paths.root, paths.relative(paths.systemd_unit), text)
    if changed and systemd_runs(paths):
        run_tool(["systemctl", "daemon-reload"])
        run_tool(["systemctl", "enable", paths.systemd_unit.name])
    return changed


def remove_unit(paths: Paths) -> bool:
    if not paths.systemd_unit.exists():
        return False
    if systemd_runs(paths):
        systemctl_told("disable", paths.systemd_unit.name)
    return remove_file(paths.systemd_unit)


def remove_file(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
