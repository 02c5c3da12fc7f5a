"""upload_rules: keep the device's object-groups in step with the ThreatSTOP policy (run from cron).

The seed's sequence and log lines; the decisions are in :mod:`ts_isr.sync`,
the device in :mod:`ts_isr.targets.cisco`.  Exit codes: 0 success (with
``--detailed-exitcodes``: 0 nothing changed, 4 changed or, in a dry run,
would change), 1 failed, 2 config error, 3 locked.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from ts_isr import __version__
from ts_isr.commands.answers import show_status
from ts_isr.commands.common import command_parser, load_command_config, run_command, use_logfile
from ts_isr.config import CISCO_KEYS, Config
from ts_isr.devicerun import (
    RunOptions,
    device_key,
    device_lock,
    note_sync,
    policy_families,
    search_device,
    sync_device,
)
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.fetch import fetch_policy
from ts_isr.files import trusted_dir
from ts_isr.fleet.inventory import FLEET_KEYS
from ts_isr.lock import run_lock
from ts_isr.log import log
from ts_isr.monitoring import note_policy, recorded_run
from ts_isr.policystore import adopt_unkeyed
from ts_isr.runrecord import RunRecord

PROG = "upload_rules"


def parser() -> argparse.ArgumentParser:
    parser = command_parser(PROG, "Keep the Cisco ISR/ASA object-groups in step with the ThreatSTOP policy.")
    parser.add_argument("--dry-run", action="store_true", help="print the difference, change nothing")
    parser.add_argument(
        "--force",
        action="store_true",
        help="apply even a block list that shrinks the group by more than max_shrink, "
        "or one that came back empty after a non-empty one",
    )
    parser.add_argument(
        "--trust-host-key",
        action="store_true",
        help="trust the device's SSH host key when none is trusted yet (a changed key still fails)",
    )
    parser.add_argument(
        "--print-policy", action="store_true", help="print the policy (block/allow CIDRs); touch no device"
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="show the last run (time, result, entries) from local state; exit 1 when it needs attention",
    )
    parser.add_argument(
        "--search",
        nargs="+",
        metavar="ADDRESS",
        help="say whether the last good policy blocks or allows each address, and by which entry",
    )
    fleet = parser.add_argument_group("fleet (a Nornir inventory of many devices; see README)")
    fleet.add_argument(
        "--inventory", metavar="NORNIR_YAML", type=Path, help="run every device of this inventory"
    )
    fleet.add_argument("--workers", type=int, default=10, metavar="N", help="devices at once (default 10)")
    fleet.add_argument("--limit", metavar="NAME[,NAME...]", help="only these hosts")
    fleet.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only hosts whose name, group or data match",
    )
    fleet.add_argument(
        "--shard", metavar="K/N", help="only this management host's share: a stable split by name"
    )
    return parser


def upload(config: Config, args: argparse.Namespace, record: RunRecord | None) -> Exit:
    """The seed's sequence for one device; ``record`` (None for a dry run or --print-policy) is told
    what the run did."""
    log.info("Previous configuration found ... Loading config data...")
    log.info("Initializing data from configuration file.")
    log.info("Verifying manditory parameters state.")
    if not args.print_policy and not config.password:
        raise ConfigError(f"{config.path}: password: is required to log into the device; add it or run setup")
    if record is not None:  # a real run: a dry run or --print-policy changes nothing on disk
        adopt_unkeyed(config.state_dir, device_key(config))
    built = fetch_policy(
        config,
        force=args.force,
        record=record is not None,
        families=policy_families(config),
        store_key=device_key(config),  # configs of other devices may share the state_dir
    )
    if args.print_policy:  # one write: 100,000 print() calls cost more than the fetch
        log.info(built.policy.summary() + ".")
        sys.stdout.write("".join(f"{line}\n" for line in built.policy.lines()))
        return Exit.UNCHANGED
    if record is not None:
        note_policy(record, built)
    log.info("Initializing remote connection.")
    result = sync_device(config, built, RunOptions(args.dry_run, args.force, args.trust_host_key))
    if record is not None:
        note_sync(record, result)
    return result.exit


def answer(config: Config, args: argparse.Namespace) -> Exit:
    """--status and --search: from local state only, no lock, no network."""
    label = str(config.device)
    if args.status:
        return show_status(config.state_dir, PROG, [label])
    for line in search_device(config, args.search, label, store_key=device_key(config)):
        print(line)
    return Exit.UNCHANGED


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()

    def body() -> Exit:
        if args.inventory:
            from ts_isr.fleet import command as fleet  # Nornir loads only for a fleet

        config = load_command_config(args.config, FLEET_KEYS if args.inventory else CISCO_KEYS)
        if args.status or args.search:
            return fleet.fleet_answer(config, args) if args.inventory else answer(config, args)
        use_logfile(config.tsoutput, verbose=args.verbose, quiet=True if args.inventory else None)
        log.info(f"Starting {PROG} v{__version__} on {datetime.now():%a %b %d %H:%M:%S %Y}")
        try:  # its ownership records decide what is removed from the device: checked before any is read
            trusted_dir(config.state_dir, "state_dir")
        except OSError as exc:
            raise TsError(
                f"cannot use state_dir {config.state_dir}: {exc.strerror}; fix it or its permissions"
            ) from None
        result = fleet.run(config, args) if args.inventory else single(config, args)
        elapsed = int(time.monotonic() - started)
        hours, rest = divmod(elapsed, 3600)
        took = f"{hours:02}:{rest // 60:02}:{rest % 60:02}"
        log.info(f"Finished on {datetime.now():%a %b %d %H:%M:%S %Y} after {took}")
        return result

    return run_command(body, verbose=args.verbose, detailed=args.detailed_exitcodes)


def single(config: Config, args: argparse.Namespace) -> Exit:
    """One device, as the seed's script ran it, under the device's lock."""
    with run_lock(device_lock(config), PROG):
        if args.dry_run or args.print_policy:
            return upload(config, args, None)
        with recorded_run(config, str(config.device), PROG) as record:
            return upload(config, args, record)


if __name__ == "__main__":
    sys.exit(main())
