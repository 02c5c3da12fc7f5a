"""What operators see (issue 13): metrics scraped from a real prometheus-node-exporter, --status and
--search from local state, after real runs against the lab device, Knot and an HTTPS log server."""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.support.https_server import Failure, LogServer
from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import lab_device
from tests.support.node_exporter import NodeExporter
from tests.support.tsadmin_lab import BLOCKED_HOST, FREE_HOST, open_lab
from tests.support.upload import ZONE, Run, odd_hosts
from ts_isr.commands.loguploadclient import main as loguploadclient
from ts_isr.config import save_config
from ts_isr.errors import Exit
from ts_isr.linux.settings import LINUX_KEYS, LINUX_TITLE

BLOCK = [*odd_hosts("198.18", 40), "127.0.0.1"]  # the DNS server (a lifeline) is listed too


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    server.add_zone(ZONE, make_zone_records(a={"block": BLOCK}, apl={"allow": ["1:198.18.0.0/30"]}))
    server.start()
    yield server
    server.stop()


def test_a_good_run_then_a_failed_one_as_monitoring_and_the_admin_see_them(tmp_path, knot, capsys):
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    with lab_device(tmp_path, platform="ios") as device, NodeExporter(textfile) as exporter:
        run = Run(tmp_path, knot, device, capsys)
        run.write(block_list=f"block.{ZONE}", allow_list=f"allow.{ZONE}", metrics_dir=str(textfile))
        before = time.time()
        assert run()[0] == Exit.CHANGED
        who = {"command": "upload_rules", "device": device.host}
        assert exporter.textfile_errors() == 0
        assert exporter.value("ts_isr_last_run_success", **who) == 1
        success = exporter.value("ts_isr_last_success_timestamp_seconds", **who)
        assert success is not None and success >= before - 1
        assert exporter.value("ts_isr_last_run_duration_seconds", **who) > 0
        assert (
            exporter.value("ts_isr_policy_entries", **who, list="block", family="4") == 38
        )  # 40 - 2 allowed
        assert exporter.value("ts_isr_policy_dropped_entries", **who, list="block", reason="lifeline") == 1
        assert exporter.value("ts_isr_device_entries", **who, list="block") == 38
        assert exporter.value("ts_isr_last_run_changes", **who, list="block", op="add") == 38
        assert exporter.value("ts_isr_last_run_changes", **who, list="allow", op="add") == 1
        assert exporter.value("ts_isr_last_run_lines_pushed", **who) == 38 + 1
        assert exporter.value("ts_isr_last_run_lines_resent", **who) == 0

        code, out = run("--status")
        assert code == Exit.UNCHANGED
        assert re.fullmatch(
            rf"{device.host}: upload_rules last ran \S+ \S+ UTC \(0 min ago\): changed; "
            r"entries: allow 1, block 38\n",
            out,
        )
        code, out = run("--search", "198.18.0.3", "198.18.0.5", "127.0.0.1", "192.0.2.1")
        assert code == Exit.UNCHANGED
        last_run = re.search(r"since its last run \(([^)]+)\)", out)[1]
        assert out.splitlines() == [
            f'198.18.0.3 allowed by 198.18.0.0/30; in "threatstop-allow" on {device.host} since its '
            f"last run ({last_run})",
            f'198.18.0.5 blocked by 198.18.0.5/32; in "threatstop-block" on {device.host} since its '
            f"last run ({last_run})",
            "127.0.0.1 listed by 127.0.0.1/32 but kept reachable (lifeline: dns_server)",
            "192.0.2.1 not listed",
        ]
        code, out = run("--search", "198.18.0.999")
        assert code == Exit.CONFIG and out.count("\n") == 1 and "is not an IP address" in out

        run.write(password="wrong-password")
        assert run()[0] == Exit.FAILED
        assert exporter.value("ts_isr_last_run_success", **who) == 0
        assert exporter.value("ts_isr_last_success_timestamp_seconds", **who) == success
        assert exporter.value("ts_isr_last_run_timestamp_seconds", **who) > success
        code, out = run("--status")
        assert code == Exit.FAILED and ": failed (authentication failed for user" in out
        code, out = run("--search", "198.18.0.5")
        assert out.endswith(
            "the device's last run ("
            + out.split("(")[1].split(")")[0]
            + ') failed, so "threatstop-block" may not hold it\n'
        )


def test_the_log_upload_reports_its_backlog(tmp_path):
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    (tmp_path / "log").mkdir()
    logfile = tmp_path / "log" / "device.log"
    with LogServer(tmp_path / "server") as server, NodeExporter(textfile) as exporter:
        config = tmp_path / "threatstop.conf"
        config.write_text(
            f"device=192.0.2.1\nblock_list=x.threatstop.local\nusername=u\nurl={server.url}\n"
            f"ca_bundle={server.ca_file}\nlogfile={logfile}\nstate_dir={tmp_path}/state\n"
            f"tsoutput={tmp_path}/tsoutput.log\nlog_reopen_command=true\nmetrics_dir={textfile}\n"
        )
        config.chmod(0o600)
        who = {"command": "loguploadclient", "device": "192.0.2.1"}
        logfile.write_bytes(b"line one\n" * 1000)
        server.fail(Failure.SERVER_ERROR)
        assert loguploadclient(["--config", str(config)]) == Exit.FAILED
        assert exporter.value("ts_isr_last_run_success", **who) == 0
        assert exporter.value("ts_isr_log_pending_bytes", **who) == 9000
        assert exporter.value("ts_isr_log_oldest_pending_age_seconds", **who) >= 0
        assert loguploadclient(["--config", str(config)]) == Exit.UNCHANGED
        assert exporter.value("ts_isr_last_run_success", **who) == 1
        assert exporter.value("ts_isr_log_pending_bytes", **who) == 0
        assert exporter.value("ts_isr_log_last_run_uploaded_bytes", **who) == 9000


def test_a_linux_host_reports_its_drops_status_and_search(tmp_path):
    """tsadmin in a namespace: pings to a blocked address are dropped; the update's metrics count
    them from the chain's own rule counters, and show and search answer from local state."""
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    with open_lab(tmp_path) as lab, NodeExporter(textfile) as exporter:
        assert lab.add().returncode == Exit.CHANGED
        config = lab.root / "opt/threatstop/threatstop.conf"
        save_config(config, {"metrics_dir": textfile}, LINUX_KEYS, LINUX_TITLE)
        assert not lab.pair.reachable(BLOCKED_HOST)
        updated = lab.tsadmin("update")
        assert updated.returncode == Exit.UNCHANGED, updated.stdout + updated.stderr
        who = {"command": "tsadmin_update", "device": socket.gethostname()}
        assert exporter.value("ts_isr_last_run_success", **who) == 1
        assert exporter.value("ts_isr_blocked_packets_total", **who, direction="out") >= 1
        assert exporter.value("ts_isr_blocked_bytes_total", **who, direction="out") >= 84
        assert exporter.value("ts_isr_device_entries", **who, list="block") >= 2
        assert exporter.value("ts_isr_last_run_changes", **who, list="block", op="add") == 0, (
            "the same policy"
        )
        shown = lab.tsadmin("show")
        assert f"Run metrics: {textfile} (metrics_dir)" in shown.stdout
        assert re.search(
            rf"{re.escape(socket.gethostname())}: tsadmin_update last ran .*: unchanged", shown.stdout
        )
        found = lab.tsadmin("search", BLOCKED_HOST, FREE_HOST)
        assert found.stdout.splitlines() == [
            f"{BLOCKED_HOST} blocked by {BLOCKED_HOST}/32",
            f"{FREE_HOST} not listed",
        ]
