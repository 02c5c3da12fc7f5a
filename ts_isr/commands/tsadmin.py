"""tsadmin: the ThreatSTOP Linux host module (ts-iptables): add, remove, update, show, version, logs.

Only wiring: settings come from :mod:`ts_isr.linux.settings`, the policy from
:mod:`ts_isr.fetch`, the sets from :mod:`ts_isr.targets.ipset`, the chain from
:mod:`ts_isr.linux.firewall`, the host's files from :mod:`ts_isr.linux.host`.
Everything that can be refused (arguments, prefix, policy) is checked before
anything on the host changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ts_isr.autoconf import fetch_settings
from ts_isr.commands.common import DETAILED_HELP, EXIT_CODES_HELP, run_command
from ts_isr.commands.tsadmin_report import command_logs, command_search, command_show
from ts_isr.config import Config, read_values, save_config
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.fetch import fetch_policy
from ts_isr.files import trusted_dir
from ts_isr.linux import host, schedule
from ts_isr.linux.addsettings import gather_settings, validated
from ts_isr.linux.backend import choose, make_backend
from ts_isr.linux.firewall import ALLOW_ACTIONS, DIRECTIONS, ChainSpec
from ts_isr.linux.hostconfig import (
    chain_spec,
    config_path,
    configured_backend,
    host_logfile,
    kept_reachable,
    load,
)
from ts_isr.linux.install import AddPlan, install_host
from ts_isr.linux.lifecycle import (
    install_and_retire,
    install_policy,
    installed_firewall,
    installed_prefix,
    retire_and_record,
    retiring,
)
from ts_isr.linux.preflight import probe, scheduler, syslog_warning
from ts_isr.linux.runs import ADD, UPDATE, host_label, note_install
from ts_isr.linux.settings import LINUX_KEYS, LINUX_TITLE, Paths
from ts_isr.linux.system import require_root
from ts_isr.linux.validip import check_valid_ip
from ts_isr.lock import run_lock
from ts_isr.log import log
from ts_isr.metrics import metrics_dir_of
from ts_isr.monitoring import note_policy, recorded_run
from ts_isr.tools import find_tool
from ts_isr.version import installed_version


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", help="config (default: ROOT/opt/threatstop/threatstop.conf)"
    )
    common.add_argument("--root", metavar="DIR", default="/", help="treat DIR as / (tests, packaging)")
    common.add_argument("--verbose", action="store_true", help="show every detail on the terminal too")
    common.add_argument("--detailed-exitcodes", action="store_true", help=DETAILED_HELP)
    parser = argparse.ArgumentParser(
        prog="tsadmin",
        description="ThreatSTOP IP Defense for Linux.",
        epilog=EXIT_CODES_HELP,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", parents=[common], help="install and configure the ThreatSTOP service")
    add.add_argument("--advanced", action="store_true", help="also ask the advanced questions")
    add.add_argument("--allow_list", help="ThreatSTOP allow list")
    add.add_argument("--block_list", help="ThreatSTOP block list")
    add.add_argument("--device_id", help="ThreatSTOP device ID (TDID)")
    add.add_argument(
        "--auto_key",
        help="Web Automation key; visible to other users in the process list: prefer $TS_AUTO_KEY "
        "or --auto_key_file",
    )
    add.add_argument("--auto_key_file", metavar="PATH", help="file holding the Web Automation key")
    add.add_argument("--dns_server", help="DNS server(s) for policy queries")
    add.add_argument(
        "--load_br_netfilter", nargs="?", const="y", choices=("y", "n"), help="load br_netfilter at boot"
    )
    add.add_argument(
        "--firewall", choices=("auto", "iptables", "nftables"), help="firewall backend (default: auto)"
    )
    add.add_argument("--logopts", help='extra LOG options, e.g. "--log-uid --log-level 6"')
    add.add_argument("--logopts_direction", choices=DIRECTIONS, help="direction the logopts apply to")
    add.add_argument("--maxpolicysize", help="most block list entries (the allow list gets a fifth)")
    add.add_argument("--port", help="DNS port for policy queries (53 or 5353)")
    add.add_argument("--allow_action", type=str.upper, choices=ALLOW_ACTIONS, help="action for allow matches")
    add.add_argument("--silent", action="store_true", help="no output, accept every default")
    add.add_argument("--skip_checkpolicy", action="store_true", help="do not fetch the policy now")
    add.add_argument("--skip_checkvalidip", action="store_true", help="do not check the public IP now")
    add.add_argument("--take_defaults", action="store_true", help="accept every default after a countdown")
    add.add_argument("--tsprefix", help="prefix of the chain and ipsets (at most 12 characters)")
    add.add_argument("--type", choices=("auto", "manual"), help="auto: web automation; manual: prompts")
    remove = sub.add_parser("remove", parents=[common], help="remove the ThreatSTOP rules and sets")
    remove.add_argument("--silent", "-y", action="store_true", help="do not ask for confirmation")
    update = sub.add_parser("update", parents=[common], help="fetch the policy (and settings) and apply it")
    update.add_argument("--force", action="store_true", help="apply a block list even if it came back empty")
    sub.add_parser("show", parents=[common], help="show the settings and what is installed")
    sub.add_parser("version", parents=[common], help="show the version")
    sub.add_parser("logs", parents=[common], help="rotate and upload the block log now")
    search = sub.add_parser("search", parents=[common], help="is an address blocked, and by which entry?")
    search.add_argument("addresses", nargs="+", metavar="ADDRESS")
    sub.add_parser("restore", parents=[common], help="put the last saved sets and chain back (boot)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths(Path(args.root).resolve())
    if args.command == "version":
        print(f"tsadmin (ts-iptables, ts_isr) {installed_version()}")
        return int(Exit.UNCHANGED)
    as_root = os.geteuid() == 0
    logfile = paths.tsadmin_log if as_root else None
    quiet = True if getattr(args, "silent", False) else None
    body = COMMANDS[args.command]
    return run_command(
        lambda: _checked(body, args, paths),
        logfile=logfile,
        verbose=args.verbose,
        quiet=quiet,
        detailed=args.detailed_exitcodes,
    )


def _checked(
    body: Callable[[argparse.Namespace, Paths], Exit], args: argparse.Namespace, paths: Paths
) -> Exit:
    require_root(args.command)
    return body(args, paths)


def command_add(args: argparse.Namespace, paths: Paths) -> Exit:
    log.info(f"ThreatSTOP ts-iptables add starting @ {time.ctime()}")
    path = config_path(args, paths)
    raw = gather_settings(args, path)
    config = validated(raw, path)
    log.info(f"Run metrics: {metrics_dir_of(config.get('metrics_dir')) or 'off'} (metrics_dir)")
    with run_lock(paths.lock, "tsadmin"), recorded_run(config, host_label(), ADD) as record:
        plan = plan_add(args, paths, config, raw)
        previous = installed_prefix(paths) or (plan.before or {}).get("tsprefix")
        changed = install_host(plan, paths)
        if args.skip_checkpolicy:
            changed |= first_update(config, plan, paths)
        changed |= retire_and_record(previous, plan.backend, paths)
        if plan.policy is not None:
            note_install(record, plan.policy, None, changed, plan.backend)
    log.info("ThreatSTOP is installed" if changed else "ThreatSTOP was already installed as configured")
    return Exit.CHANGED if changed else Exit.UNCHANGED


def plan_add(args: argparse.Namespace, paths: Paths, config: Config, raw: dict[str, str]) -> AddPlan:
    """Every check and every text before the first change: a refusal here leaves the host untouched."""
    backend, why = configured_backend(config, paths)
    log.info(f"Firewall: {backend.kind} ({why})")
    backend.check_host()
    facts = probe(paths)
    chosen = scheduler(facts)
    policy = None
    if args.skip_checkpolicy:
        log.info("Skipping the policy check (--skip_checkpolicy): the policy is fetched once installed")
        if config.skip_checkvalidip:
            log.info("Skipping the public IP check (--skip_checkvalidip)")
        else:
            check_valid_ip(config)
    else:
        # Recorded as the last good policy by the install, not before it: a refusal leaves no trace.
        policy = fetch_policy(config, lifelines_extra=kept_reachable(config, paths), record=False).policy
    backend.check_owned()
    before = read_values(config.path) if config.path.exists() else None
    replaced = retiring(
        installed_prefix(paths) or (before or {}).get("tsprefix"),
        installed_firewall(paths) or backend.kind,
        backend,
    )
    if replaced is not None:  # removed once the new rules are on top: refused then, both would stay
        replaced.check_owned(removing=True)
    logfile = host_logfile(config, paths)
    warning = syslog_warning(facts, logfile)
    if warning:
        log.warning(warning)
    spec = chain_spec(config)
    return AddPlan(
        config_file=config.path,
        values={name: value for name, value in raw.items() if name in LINUX_KEYS},
        before=before,
        backend=backend,
        spec=spec,
        spec_before=previous_spec(before, config.path, spec),
        policy=policy,
        backups=backend.backup(),
        br_netfilter=bool(config.load_br_netfilter),
        logfile=logfile,
        kernel_log=host.render_kernel_log(paths, logfile),
        syslog_running=facts.syslog_running,
        state_dir=Path(str(config.state_dir)) if config.get("state_dir") else None,
        logrotate=host.render_logrotate(paths),
        scheduler=chosen,
        unit=host.render_unit(paths, config.path),
    )


def previous_spec(before: dict[str, str] | None, path: Path, spec: ChainSpec) -> ChainSpec:
    """The chain as the config before this add had it (what an undo puts back); else this add's."""
    if before is None:
        return spec
    try:
        return chain_spec(validated(before, path))
    except ConfigError:
        return spec


def first_update(config: Config, plan: AddPlan, paths: Paths) -> bool:
    """--skip_checkpolicy skips the check, not the policy: fetched now, and a failure only retried later."""
    try:
        policy = fetch_policy(config, lifelines_extra=kept_reachable(config, paths)).policy
        return install_policy(plan.backend, plan.spec, policy, paths)
    except TsError as exc:
        log.warning(
            f"{exc}; ThreatSTOP is installed but the first policy update failed: the {plan.scheduler} "
            "job retries it within 2 hours (or run tsadmin update)"
        )
        return False


# ---------------------------------------------------------------- other commands


def command_update(args: argparse.Namespace, paths: Paths) -> Exit:
    config = load(args, paths)
    configured_before = config.tsprefix
    with run_lock(paths.lock, "tsadmin"):
        if config.type == "auto":
            config = refresh_auto_settings(config)
        trusted_dir(Path(str(config.state_dir)), "state_dir")  # it decides what is believed
        backend, _ = configured_backend(config, paths)
        with recorded_run(config, host_label(), UPDATE) as record:
            built = fetch_policy(config, force=args.force, lifelines_extra=kept_reachable(config, paths))
            note_policy(record, built)
            changed = install_and_retire(
                backend, chain_spec(config), built.policy, paths, configured_before, built.previous
            )
            note_install(record, built.policy, built.previous, changed, backend)
    return Exit.CHANGED if changed else Exit.UNCHANGED


def refresh_auto_settings(config: Config) -> Config:
    """Web automation: take the portal's current settings before the policy (they may name new lists).

    The portal out of reach must not stop the policy update: the settings in hand are kept.
    """
    raw = read_values(config.path)
    try:
        fresh = {**raw, **fetch_settings(config)}
    except TsError as exc:
        log.warning(f"{exc}; keeping the current settings")
        return config
    if fresh != raw:
        updated = validated(fresh, config.path)
        save_config(config.path, fresh, LINUX_KEYS, LINUX_TITLE)
        log.info("Settings updated from the ThreatSTOP portal")
        return updated
    return config


def command_remove(args: argparse.Namespace, paths: Paths) -> Exit:
    print(f"    ThreatSTOP ts-iptables remove starting @ {time.ctime()}")
    if not args.silent:
        sys.stdout.write("Are you sure you want to uninstall ThreatSTOP? (y/n) ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Nothing was removed.")
            return Exit.UNCHANGED
    path = config_path(args, paths)
    values = read_values(path) if path.exists() else {}
    configured = values.get("tsprefix") or LINUX_KEYS["tsprefix"].default
    with run_lock(paths.lock, "tsadmin"):
        installed = installed_firewall(paths)
        kind, _ = choose(values.get("firewall") or "auto", installed, find_tool("iptables") is not None)
        wanted = [(installed, installed_prefix(paths)), (kind, configured)]
        everything = [make_backend(k, prefix) for k, prefix in dict.fromkeys(wanted) if k and prefix]
        for backend in everything:
            backend.check_owned(removing=True)
        changed = False
        for backend in everything:
            changed |= backend.remove()
        changed |= host.remove_file(paths.installed_prefix)
        changed |= host.remove_log_config(paths)
        changed |= host.set_br_netfilter(paths, False)
        changed |= host.remove_unit(paths)
        changed |= schedule.remove_cron_lines(paths)
        changed |= schedule.remove_timers(paths)
        changed |= host.remove_file(paths.state)
        host.remove_file(paths.state_pending)
    log.info(f"ThreatSTOP rules removed; the config stays in {path} and the backups in {paths.install_dir}")
    return Exit.CHANGED if changed else Exit.UNCHANGED


def command_restore(args: argparse.Namespace, paths: Paths) -> Exit:
    """Boot: the sets from the last saved state, then the chain; no network needed."""
    config = load(args, paths)
    backend, _ = configured_backend(config, paths)
    with run_lock(paths.lock, "tsadmin"):
        changed = install_policy(backend, chain_spec(config), backend.load(paths.state), paths)
    return Exit.CHANGED if changed else Exit.UNCHANGED


COMMANDS: dict[str, Callable[[argparse.Namespace, Paths], Exit]] = {
    "add": command_add,
    "remove": command_remove,
    "update": command_update,
    "show": command_show,
    "logs": command_logs,
    "search": command_search,
    "restore": command_restore,
}
