"""What every run leaves for monitoring: its record in ``state_dir`` and its metrics file.

Every command wraps its work in :func:`recorded_run`, so the record and the
metrics are kept whatever way the run ends: the admin's monitoring, not cron
mail, is what tells them the policy stopped updating.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ts_isr.errors import LockedError, TsError
from ts_isr.fetch import BuiltPolicy
from ts_isr.files import check_dir
from ts_isr.log import escape, log
from ts_isr.metrics import metrics_dir_of, write_run_metrics
from ts_isr.runrecord import RunRecord, load_record, save_record


@contextmanager
def recorded_run(config: Any, label: str, command: str) -> Iterator[RunRecord]:
    """A run's record, filled by the body and kept at its end, success or failure (a run that found
    the lock held is not a run: the holder writes its own).  The metrics file follows the record."""
    previous = load_record(config.state_dir, command, label)
    record = RunRecord(command, label, time.time())
    try:
        yield record
    except LockedError:
        raise
    except BaseException as exc:
        reason = str(exc) if str(exc) else type(exc).__name__
        record.finish("failed", time.time(), previous, reason.splitlines()[0])
        _keep(config, record)
        raise
    record.finish(record.result, time.time(), previous)
    _keep(config, record)


def _keep(config: Any, record: RunRecord) -> None:
    """Save the record (only in a state_dir no other user can change) and write the metrics."""
    state_dir = Path(config.state_dir)
    if state_dir.exists():  # not made yet by a first install that failed: no record then
        try:
            check_dir(state_dir, "state_dir")
            save_record(state_dir, record)
        except (OSError, TsError) as exc:
            log.warning(f"cannot keep the run's record in {state_dir}: {escape(str(exc))}")
    write_run_metrics(metrics_dir_of(config.get("metrics_dir")), record)


def note_policy(record: RunRecord, built: BuiltPolicy) -> None:
    """The built policy's entries and what building it left out, and which policy the run applied."""
    record.policy_entries = built.entries()
    record.dropped_entries = built.dropped
    record.policy_fetched_at = built.fetched_at.timestamp()
