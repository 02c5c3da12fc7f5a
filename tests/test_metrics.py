"""Metrics files, read back by a real prometheus-node-exporter's textfile collector."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.node_exporter import NodeExporter
from ts_isr.metrics import metrics_path, write_run_metrics
from ts_isr.runrecord import RunRecord


def run(
    success: bool, started: float = 1_700_000_000.0, previous: RunRecord | None = None, **more
) -> RunRecord:
    record = RunRecord("upload_rules", "192.0.2.1", started, **more)
    record.finish("changed" if success else "failed", started + 2.5, previous)
    return record


def test_a_run_reaches_node_exporter_with_every_label(tmp_path: Path) -> None:
    folder = tmp_path / "textfile"
    folder.mkdir()
    done = run(
        True,
        policy_entries={"block": {"4": 120, "6": 3}},
        dropped_entries={"block": {"truncated": 7}},
        device_entries={"block": 121},
        changes={"block": {"add": 5, "remove": 2}},
        blocked_packets={"in": 4},
        log_pending_bytes=0,
    )
    write_run_metrics(folder, done)
    with NodeExporter(folder) as exporter:
        assert exporter.textfile_errors() == 0
        who = {"command": "upload_rules", "device": "192.0.2.1"}
        assert exporter.value("ts_isr_last_run_success", **who) == 1
        assert exporter.value("ts_isr_last_success_timestamp_seconds", **who) == 1_700_000_000
        assert exporter.value("ts_isr_last_run_duration_seconds", **who) == 2.5
        assert exporter.value("ts_isr_policy_entries", **who, list="block", family="6") == 3
        assert exporter.value("ts_isr_policy_dropped_entries", **who, list="block", reason="truncated") == 7
        assert exporter.value("ts_isr_last_run_changes", **who, list="block", op="remove") == 2
        assert exporter.value("ts_isr_blocked_packets_total", **who, direction="in") == 4
        assert exporter.value("ts_isr_log_pending_bytes", **who) == 0


def test_a_failed_run_keeps_the_last_success(tmp_path: Path) -> None:
    folder = tmp_path / "textfile"
    folder.mkdir()
    good = run(True, started=1000.0)
    write_run_metrics(folder, good)
    write_run_metrics(folder, run(False, started=2000.0, previous=good))
    with NodeExporter(folder) as exporter:
        who = {"command": "upload_rules", "device": "192.0.2.1"}
        assert exporter.value("ts_isr_last_run_success", **who) == 0
        assert exporter.value("ts_isr_last_run_timestamp_seconds", **who) == 2000
        assert exporter.value("ts_isr_last_success_timestamp_seconds", **who) == 1000


def test_two_commands_and_devices_never_collide(tmp_path: Path) -> None:
    folder = tmp_path / "textfile"
    folder.mkdir()
    write_run_metrics(folder, run(True, policy_entries={"block": {"4": 1}}))
    other = RunRecord("tsadmin_update", "host-1", 5.0, policy_entries={"block": {"4": 2}})
    other.finish("unchanged", 6.0, None)
    write_run_metrics(folder, other)
    with NodeExporter(folder) as exporter:
        assert exporter.textfile_errors() == 0
        assert (
            exporter.value(
                "ts_isr_policy_entries", command="tsadmin_update", device="host-1", list="block", family="4"
            )
            == 2
        )


def test_the_file_name_keeps_only_safe_characters(tmp_path: Path) -> None:
    assert metrics_path(tmp_path, "upload_rules", "../../x y").parent == tmp_path


def test_a_folder_others_can_write_is_refused_and_the_run_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "textfile"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    assert write_run_metrics(folder, run(True)) is None
    assert list(folder.iterdir()) == []


def test_a_planted_link_is_replaced_never_written_through(tmp_path: Path) -> None:
    folder = tmp_path / "textfile"
    folder.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    os.symlink(victim, metrics_path(folder, "upload_rules", "192.0.2.1"))
    assert write_run_metrics(folder, run(False)) is not None
    assert victim.read_text() == "root's file\n"
    assert not metrics_path(folder, "upload_rules", "192.0.2.1").is_symlink()


def test_debians_layout_works_and_a_swapped_folder_is_refused(tmp_path: Path) -> None:
    """/var/lib/prometheus is the prometheus user's, its node-exporter folder root's: root writes
    there, and only in the folder it checked (a link put in its place is refused)."""
    parent = tmp_path / "prometheus"
    parent.mkdir()
    folder = parent / "node-exporter"
    folder.mkdir(mode=0o755)
    os.chown(parent, 65534, 65534)
    assert write_run_metrics(folder, run(True)) == metrics_path(folder, "upload_rules", "192.0.2.1")
    assert oct(metrics_path(folder, "upload_rules", "192.0.2.1").stat().st_mode & 0o777) == "0o644"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder.rename(parent / "moved")
    os.symlink(elsewhere, folder)
    assert write_run_metrics(folder, run(True)) is None
    assert list(elsewhere.iterdir()) == []
