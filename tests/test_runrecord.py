"""Run records: the last success carried over failures, --status lines, and what a planted file can do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ts_isr.files import UnsafePath
from ts_isr.runrecord import RunRecord, describe, load_record, record_path, save_record

HOUR = 3600.0


def test_a_failure_carries_the_last_success_over(tmp_path: Path) -> None:
    good = RunRecord("upload_rules", "192.0.2.1", started=1000.0)
    good.finish("changed", 1010.0, None)
    save_record(tmp_path, good)
    bad = RunRecord("upload_rules", "192.0.2.1", started=9000.0)
    bad.finish("failed", 9005.0, load_record(tmp_path, "upload_rules", "192.0.2.1"), "DNS down")
    save_record(tmp_path, bad)
    again = load_record(tmp_path, "upload_rules", "192.0.2.1")
    assert (again.result, again.reason, again.last_success, again.duration) == (
        "failed",
        "DNS down",
        1000.0,
        5.0,
    )


def test_status_warns_after_two_cycles_without_success() -> None:
    record = RunRecord(
        "upload_rules", "192.0.2.1", started=10 * HOUR, device_entries={"block": 7, "allow": 2}
    )
    record.finish("unchanged", 10 * HOUR + 3, None)
    assert describe(record, 11 * HOUR, 2 * HOUR) == [
        "192.0.2.1: upload_rules last ran 1970-01-01 10:00:00 UTC (60 min ago): unchanged; "
        "entries: allow 2, block 7"
    ]
    failed = RunRecord("upload_rules", "192.0.2.1", started=15 * HOUR)
    failed.finish("failed", 15 * HOUR, record, "cannot reach 192.0.2.1:22")
    lines = describe(failed, 15 * HOUR, 2 * HOUR)
    assert lines[0].endswith("failed (cannot reach 192.0.2.1:22)")
    assert lines[1].startswith(
        "WARNING: 192.0.2.1: no successful upload_rules run since 1970-01-01 10:00:00 UTC"
    )


def test_a_device_that_never_succeeded_is_a_warning() -> None:
    record = RunRecord("tsadmin_update", "host", started=0.0)
    record.finish("failed", 1.0, None, "x")
    assert "no successful tsadmin_update run ever" in describe(record, 2.0, 2 * HOUR)[1]


def test_a_damaged_record_starts_afresh_and_a_planted_link_is_refused(tmp_path: Path) -> None:
    path = record_path(tmp_path, "upload_rules", "192.0.2.1")
    path.write_text("{not json")
    assert load_record(tmp_path, "upload_rules", "192.0.2.1") is None
    path.unlink()
    os.symlink("/etc/shadow", path)
    with pytest.raises(UnsafePath):
        load_record(tmp_path, "upload_rules", "192.0.2.1")
    record = RunRecord("upload_rules", "192.0.2.1", started=1.0)
    record.finish("unchanged", 2.0, None)
    save_record(tmp_path, record)  # replaces the link, never writes through it
    assert not path.is_symlink() and load_record(tmp_path, "upload_rules", "192.0.2.1").result == "unchanged"


def test_the_file_name_keeps_only_safe_characters(tmp_path: Path) -> None:
    assert record_path(tmp_path, "upload_rules", "../x y").parent == tmp_path
