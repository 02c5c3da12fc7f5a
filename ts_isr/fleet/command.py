"""The fleet's side of ``upload_rules``: its options, its run, and its answers from local state.

Imported only when ``--inventory`` is given, so a single-device run never loads Nornir.
"""

from __future__ import annotations

import argparse

from ts_isr.commands.answers import show_status
from ts_isr.config import Config
from ts_isr.devicerun import search_device
from ts_isr.errors import ConfigError, Exit
from ts_isr.fleet.run import PROG, FleetOptions, fleet_of, run_fleet


def fleet_options(args: argparse.Namespace) -> FleetOptions:
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    return FleetOptions(
        inventory=args.inventory,
        workers=args.workers,
        limit=args.limit,
        filters=tuple(args.filter),
        shard=args.shard,
        dry_run=args.dry_run,
        force=args.force,
        trust_host_key=args.trust_host_key,
        print_policy=args.print_policy,
    )


def fleet_answer(config: Config, args: argparse.Namespace) -> Exit:
    """--status and --search for every selected device of the fleet, from local state."""
    _, devices, bad = fleet_of(config, fleet_options(args))
    if args.status:
        return show_status(config.state_dir, PROG, [device.name for device in devices + bad])
    for device in devices:
        for line in search_device(device.config, args.search, device.name, store_key=device.name):
            print(f"{device.name}: {line}")
    return Exit.FAILED if bad else Exit.UNCHANGED


def run(config: Config, args: argparse.Namespace) -> Exit:
    return run_fleet(config, fleet_options(args))
