"""Metrics for monitoring: node_exporter's textfile collector, written at the end of every run.

An admin learns that the policy stopped updating from monitoring, not from
cron mail.  Each run of a command writes one ``.prom`` file per device in
``metrics_dir`` (Debian's node_exporter reads ``/var/lib/prometheus/node-exporter``),
rendered by ``prometheus_client`` and replaced atomically.  A failed run keeps
the previous file's last success time, so "no success for N cycles" is one
alert rule (README).  Every metric carries ``command`` and ``device``, so the
files of several commands and devices never collide in the collector.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from ts_isr.files import UnsafePath, open_nofollow, trusted_dir, write_atomic
from ts_isr.log import escape, log

DEBIAN_TEXTFILE_DIR = Path("/var/lib/prometheus/node-exporter")
PREFIX = "ts_isr_"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_PREVIOUS_LIMIT = 1 << 20  # a metrics file of ours is a few KiB; never read a planted giant


def default_metrics_dir() -> Path | None:
    """Debian's textfile folder when node_exporter is installed, else no metrics."""
    return DEBIAN_TEXTFILE_DIR if DEBIAN_TEXTFILE_DIR.is_dir() else None


@dataclass
class RunMetrics:
    """What one run of a command did on one device (or host), as numbers for monitoring."""

    command: str
    device: str
    started: float  # seconds since the epoch
    duration: float
    success: bool
    policy_entries: dict[tuple[str, str], int] = field(default_factory=dict)  # (list, family)
    dropped_entries: dict[tuple[str, str], int] = field(default_factory=dict)  # (list, reason)
    device_entries: dict[str, int] = field(default_factory=dict)  # list
    changes: dict[tuple[str, str], int] = field(default_factory=dict)  # (list, op)
    blocked_packets: dict[str, int] = field(default_factory=dict)  # direction
    blocked_bytes: dict[str, int] = field(default_factory=dict)  # direction
    log_pending_bytes: int | None = None
    log_oldest_pending_age: float | None = None
    log_uploaded_bytes: int | None = None


def _gauge(name: str, help_text: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, help_text, labels=("command", "device", *labels))


def _counter(name: str, help_text: str, labels: tuple[str, ...]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, help_text, labels=("command", "device", *labels))


def families(run: RunMetrics, last_success: float | None) -> Iterator[Metric]:
    """The run as metric families; ``last_success`` is this run's start, or the previous file's."""
    who = (run.command, run.device)

    def keyed(metric: Metric, values: Mapping) -> Metric | None:
        for key, value in sorted(values.items()):
            metric.add_metric([*who, *(key if isinstance(key, tuple) else (key,))], value)
        return metric if values else None

    run_metrics = [
        (_gauge("last_run_timestamp_seconds", "When the last run started.", ()), run.started),
        (_gauge("last_run_success", "1 when the last run succeeded, else 0.", ()), int(run.success)),
        (_gauge("last_run_duration_seconds", "How long the last run took.", ()), run.duration),
        (_gauge("last_success_timestamp_seconds", "When the last successful run started.", ()), last_success),
    ]
    for metric, value in run_metrics:
        if value is not None:
            metric.add_metric(list(who), value)
            yield metric
    keyed_metrics = [
        (_gauge("policy_entries", "Entries of the built policy.", ("list", "family")), run.policy_entries),
        (
            _gauge(
                "policy_dropped_entries",
                "Entries left out of the policy (invalid, too_broad, truncated, lifeline).",
                ("list", "reason"),
            ),
            run.dropped_entries,
        ),
        (
            _gauge("device_entries", "Members of each list on the device after the run.", ("list",)),
            run.device_entries,
        ),
        (_gauge("last_run_changes", "Entries the last run added or removed.", ("list", "op")), run.changes),
        (
            _counter(
                "blocked_packets", "Packets dropped by the block rules (rule counters).", ("direction",)
            ),
            run.blocked_packets,
        ),
        (
            _counter("blocked_bytes", "Bytes dropped by the block rules (rule counters).", ("direction",)),
            run.blocked_bytes,
        ),
    ]
    for metric, values in keyed_metrics:
        if keyed(metric, values) is not None:
            yield metric
    log_metrics = [
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
    for metric, value in log_metrics:
        if value is not None:
            metric.add_metric(list(who), value)
            yield metric


class _Snapshot:
    """A collector that yields one run's families once: prometheus_client renders the registry."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def render(run: RunMetrics, last_success: float | None) -> str:
    """The run in the text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(list(families(run, last_success))))
    return generate_latest(registry).decode("utf-8")


def previous_success(text: str) -> float | None:
    """The last success time in a file this module wrote; None when absent or unreadable."""
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == PREFIX + "last_success_timestamp_seconds":
                    return float(sample.value)
    except ValueError:
        return None
    return None


def metrics_path(metrics_dir: Path, command: str, device: str) -> Path:
    """One file per command and device; the name keeps only safe characters."""
    return metrics_dir / f"{PREFIX}{_UNSAFE.sub('_', command)}_{_UNSAFE.sub('_', device)}.prom"


def _read_previous(path: Path) -> str:
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        return handle.read(_PREVIOUS_LIMIT).decode("utf-8", "replace")


def write_run_metrics(metrics_dir: Path | None, run: RunMetrics) -> Path | None:
    """Write the run's file (readable by node_exporter, 0644); a failure to write is a warning,
    never the run's failure: monitoring must not break the job it watches."""
    if metrics_dir is None:
        return None
    path = metrics_path(metrics_dir, run.command, run.device)
    try:
        trusted_dir(metrics_dir, "metrics_dir", 0o755)
        last = run.started if run.success else previous_success(_read_previous(path))
        write_atomic(path, render(run, last), 0o644)
    except (OSError, ValueError, UnsafePath) as exc:
        log.warning(f"cannot write the metrics file {path}: {escape(str(exc))}; fix metrics_dir")
        return None
    return path
