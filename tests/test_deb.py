"""The Debian packages for real: built by scripts/build-deb.sh, installed and removed with apt-get.

ts-iptables: ``tsadmin version`` is dpkg's; in a network namespace ``apt-get remove`` puts the host's
rules back exactly, keeps the config, and ``purge`` removes /opt/threatstop; an upgrade never lets a
blocked address through.  ts-isr: ``threatstop-setup --silent`` against the lab ISR and Knot with the
real /etc, crontab and syslog-ng, then ``upload_rules``; removal takes its cron lines out.  The packages
are built once for the file (two versions, for the upgrade); the machine is put back as found.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from crontab import CronTab

from tests.support import debs
from tests.support.debs import Build, apt_ok, installed_version
from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import lab_device
from tests.support.machine import (
    DistributionCron,
    DistributionSyslogNg,
    MachineState,
    root_crontab,
    set_root_crontab,
)
from tests.support.netns import NetnsPair, entered
from tests.support.syslog_ng import device_says
from tests.support.tools import free_port, require_root, require_tool
from ts_isr import __version__

pytestmark = pytest.mark.root

V1, V2 = f"{__version__}+test1", f"{__version__}+test2"
VENV = Path("/opt/venvs/ts-iptables")
# Everything the packages, tsadmin add and threatstop-setup may write on this machine.
MACHINE_PATHS = (
    "/opt/threatstop",
    "/opt/venvs/ts-iptables",
    "/opt/venvs/ts-isr",
    "/etc/threatstop",
    "/var/lib/ts-isr",
    "/var/lib/ts-iptables",
    "/var/log/threatstop",
    "/etc/syslog-ng/conf.d",
    "/etc/logrotate.d",
    "/etc/systemd/system/threatstop.service",
    "/etc/modules-load.d/threatstop.conf",
    "/etc/rsyslog.d/30-threatstop.conf",
    "/var/lib/syslog-ng",
    "/dev/log",
)
ZONE = "deb.threatstop.local"
BLOCKED, FREE = "192.0.2.10", "198.51.100.20"
USER_CRON_LINE = "5 4 * * * /bin/true # the admin's own line\n"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    """Both versions, built once for the whole file; their build time and sizes are printed (-s)."""
    require_root()
    for tool in ("apt-get", "dpkg-query", "ipset", "iptables", "ping", "crontab"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("debs")
    # Side by side: each build waits on pip and xz in turn, so two take little longer than one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        built = dict(zip((V1, V2), pool.map(lambda version: debs.build(version, out), (V1, V2))))
    for build in built.values():
        sizes = ", ".join(f"{path.name} {path.stat().st_size / 1e6:.1f} MB" for path in build.debs.values())
        print(f"\nbuild-deb.sh --version {build.version}: {build.seconds:.0f} s; {sizes}")
    return built


@pytest.fixture(scope="module")
def lintian(builds: dict[str, Build]) -> Iterator[subprocess.Popen[str]]:
    """lintian on the first version's packages, running while the other tests do (ts-isr's takes ~40 s)."""
    argv = [require_tool("lintian"), "--tag-display-limit", "0", *map(str, builds[V1].debs.values())]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        yield process
        process.kill()


@pytest.fixture(scope="module")
def machine(
    tmp_path_factory: pytest.TempPathFactory, builds: dict[str, Build], lintian: subprocess.Popen[str]
) -> Iterator[None]:
    """The machine as found: the packages absent before (the test refuses to replace a real install)."""
    present = [package for package in debs.PACKAGES if debs.known(package)]
    if present:
        pytest.fail(f"{', '.join(present)} is installed on this machine; apt-get purge it, then run again")
    state = MachineState(MACHINE_PATHS, tmp_path_factory.mktemp("machine"), new_files_in=["/var/log"]).save()
    try:
        yield
    finally:
        try:
            purge_elsewhere()
        finally:
            state.restore()


def purge_elsewhere() -> None:
    """Purge what a test left, in a namespace of its own: ts-iptables' prerm runs tsadmin remove where
    apt-get runs, and the host's own firewall is never the tests' to change."""
    with NetnsPair(()) as scratch:
        debs.purge_all(netns=scratch.host)


@pytest.fixture(scope="module")
def syslog_daemon(machine: None) -> Iterator[None]:
    """A Debian host runs its syslog daemon: tsadmin add and setup make it reload their files."""
    daemon = DistributionSyslogNg().start()
    try:
        yield
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def cron_daemon(machine: None) -> Iterator[None]:
    """A Debian host runs cron: tsadmin add refuses to install cron lines nothing would run."""
    daemon = DistributionCron().start()
    try:
        yield
    finally:
        daemon.stop()


@pytest.fixture
def packages(syslog_daemon: None, cron_daemon: None) -> Iterator[None]:
    """Each test starts without the packages and leaves none behind."""
    yield
    purge_elsewhere()


def policy_zone() -> str:
    return make_zone_records(apl={"blk": [f"1:{BLOCKED}/32"]}, a={"alw": ["198.51.100.30"]})


class Host:
    """A namespace pair running the packaged tsadmin, with Knot on the host namespace's loopback."""

    def __init__(self, pair: NetnsPair, knot: KnotServer) -> None:
        self.pair = pair
        self.knot = knot

    def tsadmin(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {name: value for name, value in os.environ.items() if name != "SSH_CONNECTION"}
        return self.pair.run(["/usr/bin/tsadmin", *args], input="", env=env)

    def add(self) -> None:
        done = self.tsadmin(
            "add",
            f"--block_list=blk.{ZONE}",
            f"--allow_list=alw.{ZONE}",
            "--dns_server=127.0.0.1",
            f"--port={self.knot.port}",
            "--silent",
        )
        assert done.returncode in (0, 4), done.stdout + done.stderr
        assert not self.pair.reachable(BLOCKED, timeout=1)
        assert self.pair.reachable(FREE)

    def firewall(self) -> tuple[str, ...]:
        """What the kernel holds in the namespace, counters and comments left out."""
        texts = (self.pair.run([tool]).stdout for tool in ("iptables-save", "ip6tables-save"))
        listed = self.pair.run(["ipset", "list"]).stdout
        rules = tuple("\n".join(line for line in text.splitlines() if line[:1] not in "#:") for text in texts)
        return (*rules, listed)


@pytest.fixture
def host(tmp_path: Path, packages: None) -> Iterator[Host]:
    with NetnsPair((BLOCKED, FREE)) as pair:
        knot = KnotServer(tmp_path)
        knot.add_zone(ZONE, policy_zone())
        with entered(pair.host):
            knot.start()
        try:
            # The host's own rules and sets, which remove must leave exactly as they are.
            pair.run(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
            pair.run(["ipset", "create", "hostowned", "hash:ip"])
            yield Host(pair, knot)
            debs.purge_all(netns=pair.host)
        finally:
            knot.stop()


def tsadmin_cron_lines() -> list[str]:
    return [line for line in (root_crontab() or "").splitlines() if "tsadmin" in line]


def test_tsadmin_version_is_the_installed_packages(builds: dict[str, Build], packages: None) -> None:
    apt_ok("install", str(builds[V1].deb("ts-iptables")))
    version = subprocess.run(["tsadmin", "version"], capture_output=True, text=True, check=True).stdout
    assert installed_version("ts-iptables") == V1
    assert version.split()[-1] == V1, version
    print(f"\nts-iptables {V1} installed: {debs.folder_size(VENV) / 1e6:.1f} MB in {VENV}")


def test_remove_in_a_namespace_puts_the_hosts_rules_back(builds: dict[str, Build], host: Host) -> None:
    before = host.firewall()
    set_root_crontab(USER_CRON_LINE)
    apt_ok("install", str(builds[V1].deb("ts-iptables")))
    host.add()
    assert [line for line in tsadmin_cron_lines() if str(VENV) in line], "cron runs the package's tsadmin"

    apt_ok("remove", "ts-iptables", netns=host.pair.host)
    assert host.firewall() == before
    assert host.pair.reachable(BLOCKED)
    assert Path("/opt/threatstop/threatstop.conf").is_file(), "the config stays for a reinstall"
    assert Path("/opt/threatstop/pre-threatstop_iptables").is_file(), "and the backups"
    assert tsadmin_cron_lines() == [] and root_crontab() == USER_CRON_LINE
    assert not Path("/etc/systemd/system/threatstop.service").exists()
    assert not VENV.exists()

    apt_ok("install", str(builds[V1].deb("ts-iptables")))
    host.add()


def test_purge_in_a_namespace_removes_opt_threatstop(builds: dict[str, Build], host: Host) -> None:
    before = host.firewall()
    apt_ok("install", str(builds[V1].deb("ts-iptables")))
    host.add()
    apt_ok("purge", "ts-iptables", netns=host.pair.host)
    assert host.firewall() == before
    assert not Path("/opt/threatstop").exists() and not VENV.exists()
    assert tsadmin_cron_lines() == []


def test_a_refused_remove_keeps_the_package_and_the_rules(builds: dict[str, Build], host: Host) -> None:
    apt_ok("install", str(builds[V1].deb("ts-iptables")))
    host.add()
    # The host's own rule jumping to the chain: tsadmin remove refuses to take the chain from under it.
    jump = ["INPUT", "-p", "tcp", "--dport", "80", "-j", "TS"]
    host.pair.run(["iptables", "-A", *jump])
    added = host.firewall()
    refused = debs.apt("remove", "ts-iptables", netns=host.pair.host)
    assert refused.returncode != 0
    errors = [line for line in refused.stdout.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1 and "-A INPUT -p tcp -m tcp --dport 80 -j TS" in errors[0], refused.stdout
    assert "the package stays installed" in refused.stdout
    assert installed_version("ts-iptables") == V1
    assert host.firewall() == added and not host.pair.reachable(BLOCKED, timeout=1)
    host.pair.run(["iptables", "-D", *jump])
    apt_ok("remove", "ts-iptables", netns=host.pair.host)
    assert host.pair.reachable(BLOCKED)


def sent_and_answered(ping: subprocess.Popen[str]) -> tuple[int, int]:
    """Stop a running ping as Ctrl-C does; its summary's packets sent and answered."""
    ping.send_signal(signal.SIGINT)
    out, _ = ping.communicate(timeout=30)
    found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


def test_an_upgrade_never_lets_a_blocked_address_through(builds: dict[str, Build], host: Host) -> None:
    apt_ok("install", str(builds[V1].deb("ts-iptables")))
    host.add()
    ping = subprocess.Popen(
        ["ip", "netns", "exec", host.pair.host, "ping", "-n", "-i", "0.1", "-W", "1", BLOCKED],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        apt_ok("install", str(builds[V2].deb("ts-iptables")), netns=host.pair.host)
        assert installed_version("ts-iptables") == V2
        update = host.tsadmin("update")
        assert update.returncode in (0, 4), update.stdout + update.stderr
    finally:
        sent, answered = sent_and_answered(ping)
    print(f"\nupgrade {V1} -> {V2}: {sent} pings every 100 ms, {answered} answered")
    assert sent >= 5 and answered == 0
    assert host.tsadmin("version").stdout.split()[-1] == V2
    # The cron lines and the unit tsadmin add wrote run the upgraded files.
    commands = [shlex.split(line.split("#")[0])[5:7] for line in tsadmin_cron_lines()]
    unit = Path("/etc/systemd/system/threatstop.service").read_text()
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert len(commands) == 2
    for python, script in [*commands, shlex.split(exec_start.removeprefix("ExecStart="))[:2]]:
        assert (python, script) == (f"{VENV}/bin/python", f"{VENV}/bin/tsadmin")
        assert Path(python).exists() and Path(script).is_file()
    assert not host.pair.reachable(BLOCKED, timeout=1)
    apt_ok("purge", "ts-iptables", netns=host.pair.host)


def isr_zone(blocked: list[str]) -> str:
    return make_zone_records(
        apl={"blk": [f"1:{address}/32" for address in blocked]}, a={"alw": ["198.51.100.200"]}
    )


def test_ts_isr_sets_up_the_appliance_for_real(
    builds: dict[str, Build], packages: None, tmp_path: Path
) -> None:
    knot = KnotServer(tmp_path)
    knot.add_zone(ZONE, isr_zone(["192.0.2.10"]))
    knot.start()
    try:
        set_root_crontab(USER_CRON_LINE)
        apt_ok("install", str(builds[V1].deb("ts-isr")))
        config = Path("/etc/threatstop/threatstop.conf")
        assert config.is_file() and config.stat().st_mode & 0o777 == 0o600
        syslog_port = free_port(socket.SOCK_DGRAM)
        with lab_device(tmp_path) as dev:
            flags = {
                "--block-list": f"blk.{ZONE}",
                "--allow-list": f"alw.{ZONE}",
                "--external-ip": "198.51.100.9",
                "--dns-server": "127.0.0.1",
                "--port": knot.port,
                "--device": dev.host,
                "--ssh-port": dev.port,
                "--username": dev.username,
                "--syslog-port": syslog_port,
            }
            argv = ["/usr/bin/threatstop-setup", "--silent", "--trust-host-key"]
            argv += [str(word) for pair in flags.items() for word in pair]
            env = {name: value for name, value in os.environ.items() if name != "TS_ISR_CONFIG"}
            env |= {"TS_PASSWORD": dev.password, "TS_ENABLE_PW": dev.secret}
            setup = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert setup.returncode == 0, setup.stdout + setup.stderr
            assert set(dev.running()["threatstop-block"]) == {"host 192.0.2.10"}, "setup's first run"

            # The package's layout: state under /var/lib, logs under /var/log/threatstop.
            assert Path("/var/lib/ts-isr/known_hosts").is_file()
            assert Path("/var/log/threatstop/tsoutput.log").is_file()
            assert Path("/etc/logrotate.d/threatstop").is_file()
            jobs = {
                job.comment: job.command for job in CronTab(user=True) if job.comment.startswith("ts_isr")
            }
            assert sorted(jobs) == [f"ts_isr loguploadclient {config}", f"ts_isr upload_rules {config}"]
            assert all("/opt/venvs/ts-isr/bin/python" in command for command in jobs.values())
            # syslog-ng was reloaded with setup's file: the device's lines are filed.
            assert Path("/etc/syslog-ng/conf.d/threatstop.conf").is_file()
            device_says(
                syslog_port, "%SYS-5-CONFIG_I: ts-isr package test", Path("/var/log/threatstop/device.log")
            )

            knot.add_zone(ZONE, isr_zone(["192.0.2.10", "192.0.2.99"]))
            knot.reload()
            upload = subprocess.run(
                ["/usr/bin/upload_rules", "--detailed-exitcodes"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
            )
            assert upload.returncode == 4, upload.stdout + upload.stderr
            assert set(dev.running()["threatstop-block"]) == {"host 192.0.2.10", "host 192.0.2.99"}

        apt_ok("remove", "ts-isr")
        assert root_crontab() == USER_CRON_LINE, "removal takes out only setup's cron lines"
        assert config.is_file() and "blk." in config.read_text(), "the user's config stays"
        assert Path("/var/log/threatstop/device.log").is_file(), "and the logs"
    finally:
        knot.stop()


# Tags a vendor package with a bundled virtualenv in /opt cannot avoid: its files are in /opt (the seed's
# /opt/threatstop, dh-virtualenv's /opt/venvs), and its commands run the virtualenv's interpreter.
UNAVOIDABLE_TAGS = {"dir-or-file-in-opt", "unusual-interpreter"}


def test_lintian_finds_only_what_a_bundled_virtualenv_in_opt_brings(lintian: subprocess.Popen[str]) -> None:
    out, _ = lintian.communicate(timeout=240)
    tags = [line.split()[:3] for line in out.splitlines() if line[:3] in ("E: ", "W: ")]
    assert tags, out
    assert {tag for _, _, tag in tags} <= UNAVOIDABLE_TAGS, out
