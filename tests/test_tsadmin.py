"""tsadmin: version, show, logs (real HTTPS server), prompts, syslog routing (real syslog-ng).

Anything that could touch a firewall runs inside a network namespace the test
creates; ``logs`` only moves files under ``--root`` and talks to 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.hostroot import shape_host
from tests.support.https_server import LogServer
from tests.support.netns import NetnsPair
from tests.support.tools import require_root, require_tool
from ts_isr.linux import host
from ts_isr.linux.settings import Paths

TSADMIN = Path(__file__).resolve().parent.parent / "bin" / "tsadmin"
BLOCK_LINE = (
    "Nov 21 12:00:00 box kernel: [1.0] ThreatSTOP-TSblock IN= OUT=eth0 SRC=198.51.100.1 DST=192.0.2.10 "
    "LEN=84 PROTO=ICMP TYPE=8 CODE=0\n"
)


def tsadmin(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TSADMIN), *args, "--detailed-exitcodes"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def in_netns(pair: NetnsPair, *args: str, stdin: str = "", env: dict[str, str] | None = None):
    return pair.run([sys.executable, str(TSADMIN), *args, "--detailed-exitcodes"], input=stdin, env=env)


def test_version_needs_no_root_and_names_the_package():
    done = tsadmin("version")
    assert done.returncode == 0
    assert done.stdout.startswith("tsadmin (ts-iptables, ts_isr) ")


def test_logs_rotates_and_uploads_the_block_log(tmp_path: Path):
    require_root()
    root = tmp_path / "root"
    logfile = root / "var/log/threatstop/threatstop.log"
    logfile.parent.mkdir(parents=True)
    logfile.write_text(BLOCK_LINE * 3)
    with LogServer(tmp_path / "server") as server:
        config = root / "opt/threatstop/threatstop.conf"
        config.parent.mkdir(parents=True)
        config.write_text(
            "block_list=blk.test.threatstop.local\n"
            f"url={server.url}\nca_bundle={server.ca_file}\n"
            "device_id=tdid-1234\nexternal_ip=198.51.100.1\nlog_reopen_command=true\n"
        )
        config.chmod(0o600)
        done = tsadmin("logs", "--root", str(root))
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.received() == (BLOCK_LINE * 3).encode()
        assert server.uploads[0].fields["device_id"] == "tdid-1234"
        assert server.uploads[0].fields["device_ip"] == "198.51.100.1"
    assert not logfile.exists() or logfile.stat().st_size == 0


def test_manual_prompts_write_the_config_and_show_masks_the_key(tmp_path: Path):
    require_tool("ipset")
    root = shape_host(tmp_path / "root")
    answers = "\n".join(["tdid-77", "blk.test.threatstop.local", "", "TSx", "return", "", ""]) + "\n"
    env = {**os.environ, "TS_AUTO_KEY": "s3cret-key-value"}
    with NetnsPair(()) as pair:
        offsite = ("--skip_checkpolicy", "--skip_checkvalidip")
        done = in_netns(pair, "add", "--root", str(root), *offsite, stdin=answers, env=env)
        assert done.returncode == 4, done.stdout + done.stderr
        assert "ThreatSTOP block list name" in done.stdout
        assert "device ID (TDID)" in done.stdout, "review item 28: manual mode asks for the device ID"
        config = (root / "opt/threatstop/threatstop.conf").read_text()
        assert "block_list = blk.test.threatstop.local" in config
        assert "tsprefix = TSx" in config and "allow_action = RETURN" in config
        assert "device_id = tdid-77" in config
        shown = in_netns(pair, "show", "--root", str(root))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "s3cret-key-value" not in shown.stdout + shown.stderr
        assert "auto_key = ******" in shown.stdout
        assert "Chain TSx: installed" in shown.stdout
        assert "TSxblockaddr (hash:ip): 0 entries" in shown.stdout


def test_bad_answers_and_bad_options_are_refused_before_anything(tmp_path: Path):
    require_tool("ipset")
    root = tmp_path / "root"
    with NetnsPair(()) as pair:
        rules_before = pair.run(["iptables-save"]).stdout
        bad = in_netns(
            pair,
            "add",
            "--root",
            str(root),
            "--silent",
            "--block_list=x.threatstop.local",
            "--logopts=; reboot",
        )
        assert bad.returncode == 2 and "logopts" in bad.stdout and bad.stdout.count("[ERROR]") == 1
        no_answer = in_netns(pair, "add", "--root", str(root), "--skip_checkpolicy", stdin="")
        assert no_answer.returncode == 2 and "no answer for device_id" in no_answer.stdout
        assert pair.run(["iptables-save"]).stdout == rules_before
        assert not (root / "opt/threatstop/threatstop.conf").exists()


def test_syslog_ng_routes_only_the_kernels_threatstop_lines(tmp_path: Path):
    """The snippet tsadmin writes, run by a real syslog-ng fed kernel-facility lines on a socket."""
    require_tool("syslog-ng")
    root = tmp_path / "root"
    (root / "etc/syslog-ng").mkdir(parents=True)
    (root / "etc/syslog-ng/syslog-ng.conf").write_text("@version: current\n")
    logfile = tmp_path / "out" / "threatstop.log"
    paths = Paths(root)
    assert host.route_kernel_log(paths, logfile) == "syslog-ng"
    snippet = (root / host.SYSLOG_NG_SNIPPET).read_text()
    assert host.reopen_command(paths) == ("syslog-ng-ctl", "reopen")

    sock = tmp_path / "log.sock"
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("4,100,5000,-;ThreatSTOP-TSblock IN=eth0 SRC=192.0.2.10 DST=198.51.100.1\n")
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(f"@version: current\nsource s_src {{ {debian_system_source(sock, kmsg)} }};\n{snippet}")
    daemon = subprocess.Popen(
        [
            require_tool("syslog-ng"),
            "-F",
            "--no-caps",
            "-f",
            str(conf),
            "-R",
            str(tmp_path / "persist"),
            "-p",
            str(tmp_path / "pid"),
            "-c",
            str(tmp_path / "ctl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.connect(str(sock))
            client.send(b"<4>kernel: [1.1] eth0: link up")
            client.send(b"<13>user: ThreatSTOP-TSblock forged by a user process")
            # Review item 20: the real vector, a local user claiming the kernel's facility and name.
            client.send(b"<4>kernel: [1.2] ThreatSTOP-TSblock IN=eth0 SRC=192.0.2.66 forged as the kernel")
        while (
            not logfile.exists() or "SRC=192.0.2.10" not in logfile.read_text()
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    time.sleep(1)  # the forged lines were sent after the kernel's: give them time to (wrongly) arrive
    text = logfile.read_text()
    assert "ThreatSTOP-TSblock IN=eth0 SRC=192.0.2.10" in text
    assert "link up" not in text and "forged" not in text


def debian_system_source(sock: Path, kmsg: Path) -> str:
    """What syslog-ng's system() is on this host (/dev/log and /dev/kmsg), pointed at test files."""
    probe = sock.with_name("system.conf")
    probe.write_text("@version: current\nsource s { system(); };\n")
    done = subprocess.run(
        [require_tool("syslog-ng"), f"--preprocess-into={probe}.out", "-f", str(probe)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body = Path(f"{probe}.out").read_text().split("source s {", 1)[1].rsplit("};", 1)[0]
    assert "/dev/log" in body and "/dev/kmsg" in body, body
    return body.replace('"/dev/log"', f'"{sock}"').replace('"/dev/kmsg"', f'"{kmsg}"')


def test_rsyslog_hosts_get_an_rsyslog_rule_and_no_daemon_gets_a_warning(tmp_path: Path):
    rsyslog_root = tmp_path / "r"
    (rsyslog_root / "etc").mkdir(parents=True)
    (rsyslog_root / "etc/rsyslog.conf").write_text("")
    logfile = Path("/var/log/threatstop/threatstop.log")
    assert host.route_kernel_log(Paths(rsyslog_root), logfile) == "rsyslog"
    rule = (rsyslog_root / host.RSYSLOG_SNIPPET).read_text()
    assert 'if $inputname == "imklog" and $msg contains "ThreatSTOP-" then {' in rule
    assert 'action(type="omfile" file="/var/log/threatstop/threatstop.log")' in rule
    assert host.remove_log_config(Paths(rsyslog_root))
    assert not (rsyslog_root / host.RSYSLOG_SNIPPET).exists()
    bare = tmp_path / "bare"
    bare.mkdir()
    assert host.route_kernel_log(Paths(bare), logfile) is None


def test_tsadmins_own_log_is_rotated(tmp_path: Path):
    require_tool("logrotate")
    paths = Paths(tmp_path)
    assert host.install_logrotate(paths)
    text = (tmp_path / host.LOGROTATE_SNIPPET).read_text()
    assert f'"{paths.tsadmin_log}" {{' in text
    assert not host.install_logrotate(paths), "unchanged the second time"
    assert host.remove_log_config(paths) and not (tmp_path / host.LOGROTATE_SNIPPET).exists()


def test_br_netfilter_file_is_written_and_removed(tmp_path: Path):
    paths = Paths(tmp_path)
    assert host.set_br_netfilter(paths, True)
    assert "br_netfilter" in paths.modules_load.read_text().splitlines()
    assert not host.set_br_netfilter(paths, True)
    assert host.set_br_netfilter(paths, False) and not paths.modules_load.exists()


@pytest.mark.parametrize("command", ["add", "remove", "update", "show", "logs"])
def test_every_command_but_version_needs_root(tmp_path: Path, command: str):
    require_root()
    require_tool("setpriv")
    argv = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    argv += [sys.executable, str(TSADMIN), command, "--root", str(tmp_path)]
    argv += ["--silent"] if command in ("add", "remove") else []
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert f"tsadmin {command} must run as root" in done.stdout
    assert not any(tmp_path.iterdir())


def test_advanced_prompts_and_take_defaults(tmp_path: Path):
    require_tool("ipset")
    offsite = ("--skip_checkpolicy", "--skip_checkvalidip")
    answers = ["", "blk.test.threatstop.local", "", "", "", "1000", "5353", "", "y", "--log-uid", "in"]
    with NetnsPair(()) as pair:
        advanced = shape_host(tmp_path / "advanced")
        done = in_netns(
            pair, "add", "--advanced", "--root", str(advanced), *offsite, stdin="\n".join(answers) + "\n"
        )
        assert done.returncode == 4, done.stdout + done.stderr
        config = (advanced / "opt/threatstop/threatstop.conf").read_text()
        for line in ("port = 5353", "load_br_netfilter = y", "logopts = --log-uid", "logopts_direction = in"):
            assert line in config
        assert "max_policy_size = 1000" in config.splitlines()
        assert (advanced / "etc/modules-load.d/threatstop.conf").exists()
        assert "--log-uid" in pair.run(["iptables-save"]).stdout
        remove = in_netns(pair, "remove", "--root", str(advanced), stdin="y\n")
        assert remove.returncode == 4, remove.stdout + remove.stderr
        assert not (advanced / "etc/modules-load.d/threatstop.conf").exists()

        defaults = shape_host(tmp_path / "defaults")
        block = "--block_list=blk.test.threatstop.local"
        done = in_netns(pair, "add", "--take_defaults", block, "--root", str(defaults), *offsite)
        assert done.returncode == 4, done.stdout + done.stderr
        config = (defaults / "opt/threatstop/threatstop.conf").read_text()
        assert "block_list = blk.test.threatstop.local" in config
        assert "TSblockaddr" in pair.run(["ipset", "list", "-n"]).stdout
        kept = in_netns(pair, "remove", "--root", str(defaults), stdin="n\n")
        assert kept.returncode == 0 and "Nothing was removed" in kept.stdout
        assert "TSblockaddr" in pair.run(["ipset", "list", "-n"]).stdout


def test_default_gateways_and_resolvers_are_read_strictly():
    route = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    route6 = (
        "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000002 00000000 00000001 eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "20010db8000000000000000000000001 00000400 00000002 00000000 00000003 eth0\n"
    )
    assert [str(a) for a in host.parse_gateways(route, route6)] == ["192.0.2.1", "2001:db8::1"]
    resolv = (
        "# generated\nsearch example.net\nnameserver 198.51.100.53\nnameserver fe80::1%eth0\nnameserver x\n"
    )
    assert [str(a) for a in host.parse_resolvers(resolv)] == ["198.51.100.53", "fe80::1"]
