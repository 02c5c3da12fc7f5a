"""The ISR appliance end to end, as a user lives with it: every real part running on one machine.

Knot serves the policy, the lab ISR is the device (driven by the real netmiko),
a real syslog-ng runs the file setup generated, real logrotate rotates with
the generated file, and loguploadclient posts to a real HTTPS server.  Every
command is the real script in a subprocess, as a user or cron runs it; the
cron lines themselves are run as cron would (``/bin/sh -c`` with cron's PATH).
The device's firewall log lines are numbered (event ``n`` of the lab's
``numbered_events`` has its own addresses and ports; syslog-ng does not keep
the IOS sequence number in the file), so the server's copy shows that each
line arrived exactly once.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from crontab import CronTab

from tests.support.e2e import cron_command, cron_env
from tests.support.https_server import Failure, LogServer
from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import LabDevice, lab_device
from tests.support.syslog_ng import SyslogNg, check_in_distribution_config, wait_until
from tests.support.tools import free_port, require_tool
from ts_isr.lab.syslog import KINDS, numbered_events, render, send

BIN = Path(__file__).resolve().parents[1] / "bin"
ZONE = "ts-e2e.test."
TIMEOUT = 120
# Day one's policy, then the policy after the change (one host gone, a network and a host new).
POLICY_1 = {
    "block": ["1:192.0.2.10/32", "1:192.0.2.20/32", "1:203.0.113.0/26"],
    "allow": ["198.51.100.200"],
}
POLICY_2 = {
    "block": ["1:192.0.2.10/32", "1:203.0.113.0/26", "1:198.51.100.64/28", "1:192.0.2.99/32"],
    "allow": ["198.51.100.200", "198.51.100.202"],
}
GROUPS_1 = {
    "threatstop-block": {"host 192.0.2.10", "host 192.0.2.20", "203.0.113.0 255.255.255.192"},
    "threatstop-allow": {"host 198.51.100.200"},
}
GROUPS_2 = {
    "threatstop-block": {
        "host 192.0.2.10",
        "host 192.0.2.99",
        "203.0.113.0 255.255.255.192",
        "198.51.100.64 255.255.255.240",
    },
    "threatstop-allow": {"host 198.51.100.200", "host 198.51.100.202"},
}
ISR_KINDS = tuple(kind for kind in KINDS if not kind.startswith("asa"))  # dropped and permitted, IOS formats
BATCH = 100  # lines the device sends at a time, every kind in turn


def zone(policy: dict[str, list[str]]) -> str:
    return make_zone_records(apl={"blk": policy["block"]}, a={"alw": policy["allow"]})


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs)


def clean_env() -> dict[str, str]:
    """The user's shell without anything that would point a command at another config or proxy."""
    dropped = ("TS_PASSWORD", "TS_ENABLE_PW", "TS_ISR_CONFIG", "https_proxy", "HTTPS_PROXY")
    return {name: value for name, value in os.environ.items() if name not in dropped}


def run_cron_job(crontab: Path, tag: str, home: Path) -> subprocess.CompletedProcess[str]:
    return run(cron_command(crontab, tag), env=cron_env(home), cwd=home)


def group_members(dev: LabDevice) -> dict[str, set[str]]:
    return {name: set(members) for name, members in dev.running().items() if name.startswith("threatstop")}


class DeviceLog:
    """The lab device's firewall log: every ISR kind in turn, event ``n`` recognisable by its addresses."""

    def __init__(self, port: int, total: int) -> None:
        self.port = port
        self.events = list(numbered_events(total, ISR_KINDS))
        self.sent: list[str] = []

    def sends(self, count: int) -> None:
        """The next ``count`` events, as the ISR sends them to its ``logging host``."""
        first = len(self.sent)
        lines = [
            render(event, first + n + 1, datetime.now(UTC))
            for n, event in enumerate(self.events[first : first + count])
        ]
        send(lines, "127.0.0.1", self.port, rate=2000)
        self.sent += [message(line) for line in lines]


def message(line: str) -> str:
    """The ``%FACILITY-SEVERITY-MNEMONIC: text`` of a device line: what syslog-ng files unchanged."""
    return line[line.index(": %") + 2 :]


def messages(text: str) -> list[str]:
    return [message(line) for line in text.splitlines() if ": %" in line]


def filed(logfile: Path) -> Counter[str]:
    """The device's messages in the live log and logrotate's rotated copies beside it."""
    files = [path for path in logfile.parent.glob(logfile.name + "*") if path.is_file()]
    return Counter(line for path in files for line in messages(path.read_text()))


def notices(lines: Counter[str]) -> Counter[str]:
    """The device's configuration-change notices among its filed lines."""
    return Counter({line: n for line, n in lines.items() if line.startswith("%SYS-5-CONFIG_I:")})


def logrotate(tmp_path: Path, root: Path) -> None:
    """Real logrotate with the file setup generated, forced (as on the day's first rotation)."""
    argv = [require_tool("logrotate"), "-f", "-s", str(tmp_path / "logrotate.state")]
    rotated = run([*argv, str(root / "etc/logrotate.d/threatstop")])
    assert rotated.returncode == 0, rotated.stderr


def test_a_users_days_with_the_isr_appliance(tmp_path: Path) -> None:
    require_tool("syslog-ng")
    conf = tmp_path / "etc-threatstop" / "threatstop.conf"
    root = tmp_path / "root"
    logfile = tmp_path / "log" / "device.log"
    firewall_log = DeviceLog(free_port(socket.SOCK_DGRAM), total=4 * BATCH)
    daemon_dir = tmp_path / "syslog-ng"
    daemon_dir.mkdir()
    knot = KnotServer(tmp_path)
    knot.add_zone(ZONE, zone(POLICY_1))
    knot.start()
    try:
        # The lab ISR is also `logging host` to this machine: it reports its own configuration changes.
        device_syslog = f"127.0.0.1:{firewall_log.port}"
        with lab_device(tmp_path, syslog=device_syslog) as dev, LogServer(tmp_path / "https") as server:
            # Day one: setup without questions; the keys it does not ask are already in the file.
            conf.parent.mkdir()
            conf.write_text(
                f"url = {server.url}\nca_bundle = {server.ca_file}\n"
                f"log_reopen_command = syslog-ng-ctl reopen --control {daemon_dir / 'syslog-ng.ctl'}\n"
            )
            flags = {
                "--config": conf,
                "--root": root,
                "--block-list": f"blk.{ZONE}",
                "--allow-list": f"alw.{ZONE}",
                "--external-ip": "198.51.100.9",
                "--dns-server": "127.0.0.1",
                "--port": knot.port,
                "--device": dev.host,
                "--ssh-port": dev.port,
                "--username": dev.username,
                "--logfile": logfile,
                "--syslog-port": firewall_log.port,
            }
            argv = [str(BIN / "setup"), "--silent", "--trust-host-key"]
            argv += [str(word) for pair in flags.items() for word in pair]
            passwords = {"TS_PASSWORD": dev.password, "TS_ENABLE_PW": dev.secret}
            setup = run(argv, env=clean_env() | passwords, cwd=tmp_path)
            assert setup.returncode == 0, setup.stdout + setup.stderr
            assert setup.stdout == setup.stderr == "", "--silent says nothing when all is well"
            assert group_members(dev) == GROUPS_1, "setup's first upload_rules loaded the policy"

            crontab = root / "crontab"
            schedules = {job.comment: str(job.slices) for job in CronTab(tabfile=str(crontab))}
            assert schedules == {
                f"ts_isr upload_rules {conf}": "23 */2 * * *",
                f"ts_isr loguploadclient {conf}": "53 * * * *",
            }
            cron_upload = run_cron_job(crontab, f"ts_isr upload_rules {conf}", tmp_path)
            assert cron_upload.returncode == 0, cron_upload.stdout + cron_upload.stderr

            check_in_distribution_config(root / "etc/syslog-ng/conf.d", tmp_path)
            # The device logs through the syslog-ng file setup wrote; logrotate rotates with its file.
            daemon = SyslogNg(daemon_dir, root / "etc/syslog-ng/conf.d/threatstop.conf")
            daemon.start()
            try:
                firewall_log.sends(BATCH)
                wait_until(lambda: filed(logfile) == Counter(firewall_log.sent), what="the first lines")
                logrotate(tmp_path, root)
                assert Counter(messages(logfile.with_name("device.log.1").read_text())) == filed(logfile)
                firewall_log.sends(BATCH)
                wait_until(lambda: filed(logfile) == Counter(firewall_log.sent), what="lines after rotation")
                assert messages(logfile.read_text()), "syslog-ng reopened: the new lines are in a new file"
                assert (conf.parent / "tsoutput.log.1").exists()

                # The first hourly run meets a server error after one file; the next hour sends the rest.
                server.fail(Failure.SERVER_ERROR, after=1)
                hourly = run_cron_job(crontab, f"ts_isr loguploadclient {conf}", tmp_path)
                assert hourly.returncode == 1, hourly.stdout + hourly.stderr
                assert len(server.uploads) == 1
                hourly = run_cron_job(crontab, f"ts_isr loguploadclient {conf}", tmp_path)
                assert hourly.returncode == 0, hourly.stdout + hourly.stderr + "".join(server.errors)
                assert Counter(messages(server.received().decode())) == Counter(firewall_log.sent)
                assert not filed(logfile), "uploaded files leave the log directory"

                # Day two: the policy changes; the next run follows it, the one after changes nothing.
                knot.add_zone(ZONE, zone(POLICY_2))
                knot.reload()
                seen = len(dev.commands())
                changed = run([str(BIN / "upload_rules"), "--config", str(conf)], env=clean_env())
                assert changed.returncode == 0, changed.stdout + changed.stderr
                assert group_members(dev) == GROUPS_2
                entered = dev.commands()[seen:].count("configure terminal")
                assert entered >= 1, "the lab records config mode"
                # The ISR reports each configuration session to its logging host, as IOS does.
                wait_until(
                    lambda: sum(notices(filed(logfile)).values()) == entered,
                    what="the device's %SYS-5-CONFIG_I lines",
                )
                notice = notices(filed(logfile))
                seen = len(dev.commands())
                same = run([str(BIN / "upload_rules"), "--config", str(conf)], env=clean_env())
                assert same.returncode == 0, same.stdout + same.stderr
                later = dev.commands()[seen:]
                assert later and "configure terminal" not in later, "no change, no config mode"

                day_two = len(firewall_log.sent)
                firewall_log.sends(BATCH)

                def all_of_day_two() -> bool:
                    return filed(logfile) == notice + Counter(firewall_log.sent[day_two:])

                wait_until(all_of_day_two, what="day two's first lines")
                logrotate(tmp_path, root)
                firewall_log.sends(BATCH)
                wait_until(all_of_day_two, what="day two's last lines")
                upload = run([str(BIN / "loguploadclient"), "--config", str(conf)], env=clean_env())
                assert upload.returncode == 0, upload.stdout + upload.stderr
            finally:
                daemon.stop()

            received = Counter(messages(server.received().decode()))
            expected = Counter(firewall_log.sent) + notice
            assert received == expected, "every line the device sent arrived exactly once"
            assert len(received) == 4 * BATCH + len(notice), "each line is unique: a repeat would show"
            kinds = ("%FW-6-DROP_PKT", "%FW-6-PASS_PKT", " denied ", " permitted ")
            assert all(sum(kind in line for line in received) == BATCH for kind in kinds)
            assert group_members(dev) == GROUPS_2, "the device's groups equal the policy"
            tsoutput = conf.parent / "tsoutput.log"
            assert "Starting loguploadclient" in tsoutput.read_text(), (
                "after logrotate, the next run logs anew"
            )
            own_logs = [
                (gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()).decode()
                for path in conf.parent.glob("tsoutput.log*")
            ]
            assert len(own_logs) == 3, "upload_rules' log: live, rotated, and compressed on the next rotation"
            for text in (*own_logs, crontab.read_text(), server.received().decode()):
                assert dev.password not in text and dev.secret not in text
    finally:
        knot.stop()
