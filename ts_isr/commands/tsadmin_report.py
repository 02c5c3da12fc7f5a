"""tsadmin's reporting subcommands: ``show``, ``search`` and ``logs`` (the block log's upload)."""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from ts_isr.commands.answers import search_lines
from ts_isr.configvalues import without_password
from ts_isr.errors import Exit
from ts_isr.journal import JOURNAL_LOCK, Journal, upload_from_journal
from ts_isr.linux import host
from ts_isr.linux.hostconfig import configured_backend, host_logfile, load
from ts_isr.linux.runs import LOGS, host_label, host_status
from ts_isr.linux.settings import LINUX_KEYS, Paths
from ts_isr.lock import run_lock
from ts_isr.log import MASK
from ts_isr.logupload import Device, backlog_of, upload_configured
from ts_isr.metrics import metrics_dir_of
from ts_isr.monitoring import recorded_run


def command_show(args: argparse.Namespace, paths: Paths) -> Exit:
    config = load(args, paths)
    print(f"Configuration: {config.path}")
    for name, key in LINUX_KEYS.items():
        value = config.get(name)
        shown = MASK if key.secret and value else "" if value is None else without_password(str(value))
        if isinstance(value, list):
            shown = ", ".join(str(item) for item in value)
        print(f"  {name} = {shown}")
    backend, why = configured_backend(config, paths)
    print(f"Firewall: {backend.kind} ({why}): {backend.why}")
    for line in backend.show():
        print(line)
    print(f"Run metrics: {metrics_dir_of(config.get('metrics_dir')) or 'off'} (metrics_dir)")
    for line in host_status(Path(str(config.state_dir))):
        print(line)
    counted = backend.counters()
    packets = sum(packets for packets, _ in counted.values())
    by_way = ", ".join(f"{way} {p} packets ({b} bytes)" for way, (p, b) in sorted(counted.items()))
    print(f"Blocked since installed: {packets} blocked packets ({by_way})")
    return Exit.UNCHANGED


def command_logs(args: argparse.Namespace, paths: Paths) -> Exit:
    """Rotate the block log, make the syslog daemon reopen it, and upload it (the Cisco upload code).

    Without a syslog daemon the lines come from the journal (:mod:`ts_isr.journal`).
    """
    config = load(args, paths)
    device = Device(
        address=str(config.external_ip or ""), identifier=str(config.device_id or socket.gethostname())
    )
    logfile = host_logfile(config, paths)
    with recorded_run(config, host_label(), LOGS) as record:
        try:
            if host.syslog_daemon(paths) is None and (paths.root == Path("/") or config.journal_dir):
                journal = Journal(Path(str(config.journal_dir)) if config.journal_dir else None)
                state_dir = Path(str(config.state_dir))
                # One run at a time reads, writes the block log and moves the cursors: two would
                # upload a batch twice, or confirm one cursor past the other's lines.
                with run_lock(state_dir / JOURNAL_LOCK, "tsadmin logs"):
                    upload_from_journal(
                        journal,
                        state_dir,
                        logfile,
                        lambda: upload_configured(config, logfile, device, None).waiting,
                    )
            else:
                reopen = config.log_reopen_command or host.reopen_command(paths)
                record.log_uploaded_bytes = upload_configured(config, logfile, device, reopen).bytes_sent
        finally:
            backlog = backlog_of(config, logfile, time.time())
            if backlog is not None:
                record.log_pending_bytes, record.log_oldest_pending_age = backlog
    return Exit.UNCHANGED


def command_search(args: argparse.Namespace, paths: Paths) -> Exit:
    """Whether the last good policy blocks each address, from local state, no network."""
    config = load(args, paths)
    for line in search_lines(args.addresses, Path(str(config.state_dir))):
        print(line)
    return Exit.UNCHANGED
