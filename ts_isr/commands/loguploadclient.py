"""loguploadclient: send the device's syslog to ThreatSTOP over HTTPS (cron runs it hourly).

Only wiring: :func:`ts_isr.logupload.upload_configured` does the work and is
shared with ``tsadmin logs``.
"""

from __future__ import annotations

import argparse
import sys
import time

from ts_isr import __version__
from ts_isr.commands.common import command_parser, load_command_config, run_command, use_logfile
from ts_isr.config import Config
from ts_isr.errors import Exit
from ts_isr.log import log
from ts_isr.logupload import Device, backlog_of, upload_configured
from ts_isr.monitoring import recorded_run

PROG = "loguploadclient"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        PROG,
        "Rotate the device's syslog file (logfile) and upload it, and logrotate's rotated files, "
        "to ThreatSTOP over HTTPS (url); files are kept until the server confirms them.",
    )
    parser.add_argument(
        "--no-rotate",
        action="store_true",
        help="leave the live log alone: send only files already rotated (by logrotate or earlier runs)",
    )
    return parser


def device_of(config: Config) -> Device:
    """ThreatSTOP knows a device by its registered public address; the internal one names it."""
    return Device(address=str(config.external_ip or config.device), identifier=str(config.device))


def run(args: argparse.Namespace) -> Exit:
    config = load_command_config(args.config)
    use_logfile(config.tsoutput, verbose=args.verbose)
    log.info(f"Starting {PROG} v{__version__}.")
    with recorded_run(config, str(config.device), PROG) as record:
        try:
            report = upload_configured(
                config,
                config.logfile,
                device_of(config),
                config.log_reopen_command,
                rotate=not args.no_rotate,
            )
            record.log_uploaded_bytes = report.bytes_sent
        finally:
            backlog = backlog_of(config, config.logfile, time.time())
            if backlog is not None:
                record.log_pending_bytes, record.log_oldest_pending_age = backlog
    return Exit.UNCHANGED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: run(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
