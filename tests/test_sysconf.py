"""sysconf against the real tools: syslog-ng receives and files the device's syslog, logrotate rotates
it and makes syslog-ng reopen, cron lines go in (and come back out of) a real crontab."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crontab import CronTab

from tests.support.syslog_ng import SyslogNg, device_says
from tests.support.tools import IN_CI, free_port, missing, require_tool
from ts_isr import sysconf
from ts_isr.errors import TsError

DEVICE = ipaddress.ip_address("127.0.0.1")


def stranger_says(port: int, message: str, source: str = "127.0.0.2") -> None:
    """A datagram from another loopback address: not the device."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(message.encode(), ("127.0.0.1", port))


def test_syslog_ng_snippet_is_checked_by_syslog_ng_for_both_families(tmp_path: Path) -> None:
    require_tool("syslog-ng")
    for device in ("192.0.2.10", "2001:db8::10"):
        text = sysconf.render(
            "syslog-ng/threatstop.conf",
            sysconf.syslog_ng_values(
                config=tmp_path / "threatstop.conf",
                device=ipaddress.ip_address(device),
                syslog_port=514,
                logfile=tmp_path / "device.log",
            ),
        )
        sysconf.check_syslog_ng_snippet(text)
        assert device in text and "$" not in text
    with pytest.raises(TsError, match="syslog-ng rejects the generated file"):
        sysconf.check_syslog_ng_snippet(text.replace("flags(final);", "flags(final)"))


def test_values_that_could_break_out_of_a_quoted_string_are_refused(tmp_path: Path) -> None:
    for bad in ('/var/log/x";\ndestination', "/var/log/$HOME", "/var/log/a\\b"):
        with pytest.raises(TsError, match="cannot be used here"):
            sysconf.syslog_ng_values(config=tmp_path / "c", device=DEVICE, syslog_port=514, logfile=Path(bad))


@pytest.fixture
def syslog_ng(tmp_path: Path) -> Iterator[tuple[SyslogNg, int, Path]]:
    """The generated snippet loaded by a real syslog-ng listening on a free loopback UDP port."""
    port = free_port(socket.SOCK_DGRAM)
    logfile = tmp_path / "logs" / "device.log"
    text = sysconf.render(
        "syslog-ng/threatstop.conf",
        sysconf.syslog_ng_values(
            config=tmp_path / "threatstop.conf", device=DEVICE, syslog_port=port, logfile=logfile
        ),
    )
    snippet = sysconf.install_file(tmp_path / "root", sysconf.SYSLOG_NG_SNIPPET, text)
    daemon = SyslogNg(tmp_path, snippet)
    daemon.start()
    try:
        yield daemon, port, logfile
    finally:
        daemon.stop()


def test_syslog_ng_files_the_devices_lines_and_drops_other_senders(syslog_ng) -> None:
    _daemon, port, logfile = syslog_ng
    stranger = f"stranger-{os.getpid()}"
    stranger_says(port, f"<134>%ASA-6-106100: access-list {stranger} denied")
    marker = f"device-{os.getpid()}-{time.monotonic_ns()}"

    device_says(port, f"%SEC-6-IPACCESSLOGP: list threatstop-block denied {marker}", logfile)
    assert stranger not in logfile.read_text()


def test_logrotate_rotates_and_syslog_ng_reopens(syslog_ng, tmp_path: Path) -> None:
    daemon, port, logfile = syslog_ng
    logrotate = require_tool("logrotate")
    tsoutput = tmp_path / "logs" / "tsoutput.log"
    first = f"before-rotation-{time.monotonic_ns()}"
    device_says(port, first, logfile)
    tsoutput.write_text("[INFO ] : upload_rules ran\n")
    device_log = tsoutput.parent / "fleet" / "r1.log"  # a fleet's per-device log, beside tsoutput
    device_log.parent.mkdir()
    device_log.write_text("[DEBUG] : r1 said hello\n")

    text = sysconf.render(
        "logrotate/threatstop",
        sysconf.logrotate_values(
            config=tmp_path / "threatstop.conf",
            logfile=logfile,
            tsoutput=tsoutput,
            keep=2,
            reopen=("syslog-ng-ctl", "reopen", "--control", str(daemon.control)),
        ),
    )
    sysconf.check_logrotate(text)
    conf = sysconf.install_file(tmp_path / "root", sysconf.LOGROTATE_FILE, text)
    state = tmp_path / "logrotate.state"

    def rotate() -> None:
        done = subprocess.run(
            [logrotate, "-f", "-s", str(state), str(conf)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

    rotate()
    rotated = logfile.with_name("device.log.1")
    assert first in rotated.read_text(), "delaycompress keeps the newest rotation readable"
    assert tsoutput.with_name("tsoutput.log.1").exists() and not tsoutput.exists()
    assert device_log.with_name("r1.log.1").exists() and not device_log.exists(), "fleet logs rotate too"
    second = f"after-rotation-{time.monotonic_ns()}"
    device_says(port, second, logfile)
    assert second not in rotated.read_text(), "syslog-ng reopened: new lines go to the new file"

    rotate()
    assert logfile.with_name("device.log.2.gz").exists(), "older rotations are compressed"
    device_says(port, "third", logfile)
    rotate()
    rotate()
    assert not logfile.with_name("device.log.3.gz").exists(), "only `keep` rotations are kept"


def test_logrotate_refuses_a_broken_file(tmp_path: Path) -> None:
    require_tool("logrotate")
    with pytest.raises(TsError, match=r"logrotate rejects the generated file.*unknown option"):
        sysconf.check_logrotate(f'"{tmp_path}/x.log" {{\n    dailyy\n}}\n')


def test_reload_reaches_the_running_syslog_ng_and_says_clearly_when_it_cannot(syslog_ng, tmp_path) -> None:
    daemon, _port, _logfile = syslog_ng
    sysconf.reload_syslog_ng(daemon.control)
    assert daemon.ready()
    with pytest.raises(TsError, match=r"syslog-ng did not reload.*start it"):
        sysconf.reload_syslog_ng(tmp_path / "no-such.ctl")


def test_install_file_is_atomic_idempotent_and_under_root(tmp_path: Path) -> None:
    root = tmp_path / "destdir"
    path = sysconf.install_file(root, sysconf.LOGROTATE_FILE, "one\n")
    assert path == root / "etc/logrotate.d/threatstop"
    assert path.read_text() == "one\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    inode = path.stat().st_ino
    sysconf.install_file(root, sysconf.LOGROTATE_FILE, "one\n")
    assert path.stat().st_ino == inode, "an identical file is not rewritten"
    sysconf.install_file(root, sysconf.LOGROTATE_FILE, "two\n")
    assert path.read_text() == "two\n"
    assert [p.name for p in path.parent.iterdir()] == ["threatstop"], "no temporary file left behind"


JOBS = [
    sysconf.CronJob("23 */2 * * *", "/opt/ts/upload_rules --config /opt/ts/a.conf", "ts_isr test upload"),
    sysconf.CronJob("53 * * * *", "/opt/ts/loguploadclient --config /opt/ts/a.conf", "ts_isr test logs"),
]


def test_cron_jobs_in_a_root_tab_file_are_idempotent_and_keep_other_lines(tmp_path: Path) -> None:
    tab = tmp_path / "crontab"
    tab.write_text("MAILTO=admin@example.org\n# my own job\n0 3 * * * /usr/local/bin/backup\n")
    first = sysconf.ensure_cron_jobs(JOBS, root=tmp_path)
    again = sysconf.ensure_cron_jobs(JOBS, root=tmp_path)
    assert first == again
    cron = CronTab(tabfile=str(tab))
    assert [str(job.slices) for job in cron.find_comment("ts_isr test upload")] == ["23 */2 * * *"]
    assert len(list(cron.find_comment("ts_isr test logs"))) == 1
    text = tab.read_text()
    assert text.count("upload_rules") == 1
    assert "MAILTO=admin@example.org" in text and "0 3 * * * /usr/local/bin/backup" in text
    assert oct(tab.stat().st_mode & 0o777) == "0o600"
    moved = [sysconf.CronJob("7 */4 * * *", JOBS[0].command, JOBS[0].tag)]
    sysconf.ensure_cron_jobs(moved, root=tmp_path)
    assert [str(j.slices) for j in CronTab(tabfile=str(tab)).find_comment(JOBS[0].tag)] == ["7 */4 * * *"]
    assert sysconf.remove_cron_jobs([job.tag for job in JOBS], root=tmp_path) == 2
    assert sysconf.remove_cron_jobs([job.tag for job in JOBS], root=tmp_path) == 0
    assert "ts_isr" not in tab.read_text() and "0 3 * * * /usr/local/bin/backup" in tab.read_text()


def test_a_bad_schedule_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TsError, match="not a cron schedule"):
        sysconf.ensure_cron_jobs([sysconf.CronJob("99 * * * *", "/bin/true", "ts_isr bad")], root=tmp_path)


def saved_crontab() -> str | None:
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
    return done.stdout if done.returncode == 0 else None


def restore_crontab(saved: str | None) -> None:
    if saved is None:
        subprocess.run(["crontab", "-r"], capture_output=True, timeout=30)
    else:
        subprocess.run(["crontab", "-"], input=saved, text=True, check=True, timeout=30)


@pytest.mark.root
def test_cron_jobs_in_the_real_crontab_then_restored_exactly() -> None:
    require_tool("crontab")
    if os.geteuid() != 0 or not IN_CI:
        missing("writes the real root crontab: runs as root under CI only")
    saved = saved_crontab()
    try:
        sysconf.ensure_cron_jobs(JOBS)
        sysconf.ensure_cron_jobs(JOBS)
        cron = CronTab(user=True)
        assert len(list(cron.find_comment("ts_isr test upload"))) == 1
        assert len(list(cron.find_comment("ts_isr test logs"))) == 1
        if saved:
            assert saved.strip() in cron.render()
    finally:
        restore_crontab(saved)
    assert saved_crontab() == saved


def test_install_file_changed_says_whether_it_wrote(tmp_path: Path) -> None:
    root = tmp_path / "destdir"
    assert sysconf.install_file_changed(root, sysconf.LOGROTATE_FILE, "one\n")
    assert not sysconf.install_file_changed(root, sysconf.LOGROTATE_FILE, "one\n")
    assert sysconf.install_file_changed(root, sysconf.LOGROTATE_FILE, "two\n", 0o600)
    path = root / sysconf.LOGROTATE_FILE
    assert path.read_text() == "two\n" and path.stat().st_mode & 0o777 == 0o600
