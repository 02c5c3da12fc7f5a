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

from ts_isr import __version__
from ts_isr.commands.common import command_parser, load_command_config, run_command, use_logfile
from ts_isr.config import Config
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.fetch import fetch_policy
from ts_isr.files import trusted_dir
from ts_isr.lock import run_lock
from ts_isr.log import log
from ts_isr.ranges import Cidr
from ts_isr.sync import PLACEHOLDER, OwnershipStore, SyncOptions, synchronise
from ts_isr.targets.cisco import CiscoTarget, Device
from ts_isr.targets.cisco.asa import AsaDialect
from ts_isr.targets.cisco.ios import IosDialect
from ts_isr.targets.dryrun import DryRunTarget

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
    return parser


def device_of(config: Config) -> Device:
    return Device(
        host=str(config.device),
        port=config.ssh_port,
        username=config.username,
        password=config.password,
        secret=config.enable_pw,
        known_hosts=config.known_hosts,
        timeout=config.ssh_timeout,
    )


def cisco_target(config: Config, kinds: tuple[str, ...]) -> CiscoTarget:
    """The device of ``config``, with the groups for ``kinds``; not connected yet."""
    dialect = AsaDialect() if config.personality == "asa" else IosDialect()
    groups = {kind: config[f"object_group_{kind}"] for kind in kinds}
    return CiscoTarget(
        dialect,
        device_of(config),
        groups,
        exclusive=config.exclusive_groups,
        max_policy_size=config.max_policy_size,
    )


def managed_kinds(allow_wanted: bool, allow_recorded: frozenset[Cidr]) -> tuple[str, ...]:
    """The block group always; the allow group when there is an allow list, and also while the tool
    still has members in it, so that removing allow_list from the config empties it (down to the
    placeholder) instead of leaving the old allowed addresses there for good."""
    return ("block", "allow") if allow_wanted or allow_recorded - {PLACEHOLDER} else ("block",)


def upload(config: Config, args: argparse.Namespace) -> Exit:
    log.info("Previous configuration found ... Loading config data...")
    log.info("Initializing data from configuration file.")
    log.info("Verifying manditory parameters state.")
    if not args.print_policy and not config.password:
        raise ConfigError(f"{config.path}: password: is required to log into the device; add it or run setup")
    built = fetch_policy(
        config,
        force=args.force,
        record=not (args.dry_run or args.print_policy),
        families=CiscoTarget.families,
    )
    policy = built.policy
    if args.print_policy:
        for line in policy.lines():
            print(line)
        return Exit.UNCHANGED
    store = OwnershipStore(config.state_dir, f"{config.device}-{config.ssh_port}")
    kinds = managed_kinds(bool(config.allow_list or policy.allow), store.load(config.object_group_allow))
    log.info("Initializing remote connection.")
    if args.trust_host_key:
        from ts_isr import hostkeys  # paramiko: imported only when a device is contacted

        hostkeys.trust(
            config.known_hosts, str(config.device), config.ssh_port, config.ssh_timeout, unasked=True
        )
    device = cisco_target(config, kinds)
    target = DryRunTarget(device) if args.dry_run else device
    options = SyncOptions(
        groups=device.groups,
        exclusive=config.exclusive_groups,
        max_shrink=config.max_shrink,
        force=args.force,
        write_memory=config.write_memory,
        record=not args.dry_run,
    )
    with target:
        device.connect()
        result = synchronise(target, policy, store, options)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()

    def body() -> Exit:
        config = load_command_config(args.config)
        use_logfile(config.tsoutput, verbose=args.verbose)
        log.info(f"Starting {PROG} v{__version__} on {datetime.now():%a %b %d %H:%M:%S %Y}")
        try:  # its ownership records decide what is removed from the device: checked before any is read
            trusted_dir(config.state_dir, "state_dir")
        except OSError as exc:
            raise TsError(
                f"cannot use state_dir {config.state_dir}: {exc.strerror}; fix it or its permissions"
            ) from None
        with run_lock(config.state_dir / "upload_rules.lock", PROG):
            result = upload(config, args)
        elapsed = int(time.monotonic() - started)
        hours, rest = divmod(elapsed, 3600)
        took = f"{hours:02}:{rest // 60:02}:{rest % 60:02}"
        log.info(f"Finished on {datetime.now():%a %b %d %H:%M:%S %Y} after {took}")
        return result

    return run_command(body, verbose=args.verbose, detailed=args.detailed_exitcodes)


if __name__ == "__main__":
    sys.exit(main())
