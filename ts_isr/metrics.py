"""Metrics for monitoring: node_exporter's textfile collector, written at the end of every run.

An admin learns that the policy stopped updating from monitoring, not from
cron mail.  Each run of a command writes one ``.prom`` file per device in
``metrics_dir`` (Debian's node_exporter reads ``/var/lib/prometheus/node-exporter``),
rendered by ``prometheus_client`` and replaced atomically.  A failed run keeps
the previous run's last success time, so "no success for N cycles" is one
alert rule (README).  Every metric carries ``command`` and ``device``, so the
files of several commands and devices never collide in the collector.  The
numbers come from the run's :class:`~ts_isr.runrecord.RunRecord`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ts_isr.files import UnsafePath, safe_name, untrusted_because
from ts_isr.log import escape, log
from ts_isr.runrecord import RunRecord

if TYPE_CHECKING:
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

DEBIAN_TEXTFILE_DIR = Path("/var/lib/prometheus/node-exporter")
PREFIX = "ts_isr_"


def metrics_dir_of(setting: Path | bool | None) -> Path | None:
    """The ``metrics_dir`` setting in force: a folder; ``off`` (False) for none; unset, Debian's
    textfile folder when node_exporter is installed, else none."""
    if setting is None:
        return DEBIAN_TEXTFILE_DIR if DEBIAN_TEXTFILE_DIR.is_dir() else None
    return setting or None


# prometheus_client is imported when a run ends, not when a command starts (--print-policy,
# --search and --status never load it).


def _gauge(name: str, help_text: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    from prometheus_client.metrics_core import GaugeMetricFamily

    return GaugeMetricFamily(PREFIX + name, help_text, labels=("command", "device", *labels))


def _counter(name: str, help_text: str, labels: tuple[str, ...]) -> CounterMetricFamily:
    from prometheus_client.metrics_core import CounterMetricFamily

    return CounterMetricFamily(PREFIX + name, help_text, labels=("command", "device", *labels))


def _flat(nested: Mapping[str, Mapping[str, int]]) -> dict[tuple[str, str], int]:
    return {(outer, inner): value for outer, values in nested.items() for inner, value in values.items()}


def families(run: RunRecord) -> Iterator[Metric]:
    """The run as metric families."""
    who = [run.command, run.device]
    single = [
        (_gauge("last_run_timestamp_seconds", "When the last run started.", ()), run.started),
        (_gauge("last_run_success", "1 when the last run succeeded, else 0.", ()), int(run.success)),
        (_gauge("last_run_duration_seconds", "How long the last run took.", ()), run.duration),
        (
            _gauge("last_success_timestamp_seconds", "When the last successful run started.", ()),
            run.last_success,
        ),
        (_gauge("last_run_lines_pushed", "Configuration lines the device took.", ()), run.lines_pushed),
        (_gauge("last_run_lines_resent", "Lines sent again: the device dropped them.", ()), run.lines_resent),
        (_gauge("log_pending_bytes", "Log bytes waiting for upload.", ()), run.log_pending_bytes),
        (
            _gauge("log_oldest_pending_age_seconds", "Age of the oldest log not yet uploaded.", ()),
            run.log_oldest_pending_age,
        ),
        (
            _gauge("log_last_run_uploaded_bytes", "Log bytes the last run uploaded.", ()),
            run.log_uploaded_bytes,
        ),
    ]
    for metric, value in single:
        if value is not None:
            metric.add_metric(who, value)
            yield metric
    keyed = [
        (
            _gauge("policy_entries", "Entries of the built policy.", ("list", "family")),
            _flat(run.policy_entries),
        ),
        (
            _gauge(
                "policy_dropped_entries",
                "Entries left out of the policy (invalid, too_broad, truncated, lifeline).",
                ("list", "reason"),
            ),
            _flat(run.dropped_entries),
        ),
        (
            _gauge("device_entries", "Members of each list on the device after the run.", ("list",)),
            {(kind,): n for kind, n in run.device_entries.items()},
        ),
        (
            _gauge("last_run_changes", "Entries the last run added or removed.", ("list", "op")),
            _flat(run.changes),
        ),
        (
            _counter(
                "blocked_packets", "Packets dropped by the block rules (rule counters).", ("direction",)
            ),
            {(direction,): n for direction, n in run.blocked_packets.items()},
        ),
        (
            _counter("blocked_bytes", "Bytes dropped by the block rules (rule counters).", ("direction",)),
            {(direction,): n for direction, n in run.blocked_bytes.items()},
        ),
    ]
    for metric, values in keyed:
        for labels, value in sorted(values.items()):
            metric.add_metric([*who, *labels], value)
        if values:
            yield metric


class _Snapshot:
    """A collector that yields one run's families once: prometheus_client renders the registry."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def render(run: RunRecord) -> str:
    """The run in the text exposition format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(list(families(run))))
    return generate_latest(registry).decode("utf-8")


def metrics_path(metrics_dir: Path, command: str, device: str) -> Path:
    """One file per command and device; the name keeps only safe characters."""
    return metrics_dir / f"{PREFIX}{safe_name(command)}_{safe_name(device)}.prom"


def write_run_metrics(metrics_dir: Path | None, run: RunRecord) -> Path | None:
    """Write the run's file (readable by node_exporter, 0644); a failure to write is a warning,
    never the run's failure: monitoring must not break the job it watches."""
    if metrics_dir is None:
        return None
    path = metrics_path(metrics_dir, run.command, run.device)
    try:
        _replace_in(metrics_dir, path.name, render(run))
    except (OSError, UnsafePath) as exc:
        log.warning(f"cannot write the metrics file {path}: {escape(str(exc))}; fix metrics_dir")
        return None
    return path


def _replace_in(folder: Path, name: str, text: str) -> None:
    """Replace ``folder/name`` atomically, working inside the folder as opened.

    Debian's textfile folder sits under ``/var/lib/prometheus``, which the
    ``prometheus`` user owns and so could swap its entries; the folder itself
    is root's.  It is opened without following a link and checked as opened,
    and every file operation is made relative to that handle, so whatever
    happens to the path afterwards, root writes only in the folder it checked.
    """
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        reason = untrusted_because(os.fstat(folder_fd))
        if reason is not None:
            raise UnsafePath(
                f"metrics_dir {folder} is refused: {reason}; choose a folder only root can change"
            )
        temporary = f".{name}.{secrets.token_hex(6)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o644, dir_fd=folder_fd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o644)  # node_exporter reads it, whatever the umask
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            os.unlink(temporary, dir_fd=folder_fd)
            raise
    finally:
        os.close(folder_fd)
