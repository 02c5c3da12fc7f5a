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
import shlex
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ts_isr.autoconf import fetch_settings
from ts_isr.commands.common import DETAILED_HELP, EXIT_CODES_HELP, run_command
from ts_isr.config import Config, Invalid, Schema, load_config, read_values, save_config, validate
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.fetch import as_cidr, fetch_policy
from ts_isr.files import write_atomic
from ts_isr.linux import host
from ts_isr.linux.firewall import ALLOW_ACTIONS, DIRECTIONS, ChainSpec, Firewall, parse_logopts
from ts_isr.linux.names import Names, derive_names
from ts_isr.linux.settings import ADVANCED_PROMPTS, AUTOCONF_KEYS, LINUX_KEYS, LINUX_TITLE, PROMPTS, Paths
from ts_isr.linux.system import require_root, run_tool
from ts_isr.linux.validip import check_valid_ip
from ts_isr.lock import run_lock
from ts_isr.log import MASK, add_secret, log
from ts_isr.logupload import Device, upload_configured
from ts_isr.policy import Policy
from ts_isr.ranges import Cidr
from ts_isr.sysconf import CronJob, ensure_cron_jobs, remove_cron_jobs
from ts_isr.targets.base import plan_changes
from ts_isr.targets.ipset import IpsetTarget, policy_of
from ts_isr.version import installed_version

CRON_TAGS = ("threatstop tsadmin update", "threatstop tsadmin logs")
COUNTDOWN_SECONDS = 5
# `tsadmin add` options that are config keys under another name.
OPTION_KEYS = {"maxpolicysize": "max_policy_size"}
ADD_VALUE_OPTIONS = (
    "allow_list",
    "block_list",
    "device_id",
    "dns_server",
    "logopts",
    "logopts_direction",
    "maxpolicysize",
    "port",
    "allow_action",
    "tsprefix",
    "type",
)


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


def config_path(args: argparse.Namespace, paths: Paths) -> Path:
    return Path(args.config) if args.config else paths.config


def load(args: argparse.Namespace, paths: Paths) -> Config:
    path = config_path(args, paths)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: ThreatSTOP is not configured here; run: tsadmin add")
    config = load_config(path, LINUX_KEYS)
    for secret in config.secrets(LINUX_KEYS):
        add_secret(secret)
    return config


def chain_spec(config: Config) -> ChainSpec:
    return ChainSpec(
        allow_action=config.allow_action,
        logopts=parse_logopts(config.logopts or ""),
        logopts_direction=config.logopts_direction,
    )


def host_logfile(config: Config, paths: Paths) -> Path:
    return paths.under(str(config.logfile))


def kept_reachable(config: Config, paths: Paths) -> list[tuple[Cidr, str]]:
    """Addresses the block list must never cut off, each with what it is: the admin's own (recorded
    by ``add``), and the host's default gateways and resolvers, without which nobody reaches or
    names it any more."""
    kept = [(as_cidr(address), "keep_reachable") for address in config.get("keep_reachable") or []]
    kept += [(as_cidr(address), "gateway_or_resolver") for address in host.gateways_and_resolvers(paths)]
    return kept


def ssh_client() -> str | None:
    """The address of the SSH session running ``tsadmin add``: blocking it would lock the admin out.

    ``sudo`` drops SSH_CONNECTION from tsadmin's environment, but the login
    shell above it still has it: the parent processes are asked too.
    """
    value = os.environ.get("SSH_CONNECTION") or host.ancestor_variable("SSH_CONNECTION")
    words = (value or "").split()
    return words[0] if words else None


def install_policy(names: Names, spec: ChainSpec, policy: Policy | None, paths: Paths) -> bool:
    """Sets first (the chain refers to them), then the chain on top; ``None`` keeps the sets' content."""
    target = IpsetTarget(names)
    installed = target.read()
    if policy is None:
        policy = policy_of(installed)
    plan = plan_changes(installed, policy, target.families, ordered=False)
    desired = {change.kind: change.desired for change in plan.changes}
    changed = False
    if not plan.unchanged or not target.complete(desired):
        # Until the state is saved, the boot state is stale: the marker makes a later run save it.
        write_atomic(paths.state_pending, "the sets changed after the boot state was saved\n")
        target.apply(plan)
        changed = True
    else:
        log.info(f"Policy unchanged: {len(policy.block)} block and {len(policy.allow)} allow entries")
    if Firewall(names).install(target.families_present(), spec):
        log.info(f"Chain {names.chain} written and jumped to first from INPUT, OUTPUT and FORWARD")
        changed = True
    if changed or not paths.state.exists() or paths.state_pending.exists():
        target.save_state(paths.state)
        paths.state_pending.unlink(missing_ok=True)
    return changed


def installed_prefix(paths: Paths) -> str | None:
    """The prefix whose chain and sets are on the host, as recorded after the last good install."""
    try:
        return paths.installed_prefix.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def install_and_retire(
    names: Names, spec: ChainSpec, policy: Policy | None, paths: Paths, configured_before: str | None
) -> bool:
    """Install under the configured prefix, then retire the one installed before, then record the new one.

    The record is written only once the install (and retirement) worked, so
    a failed prefix change is retried, not forgotten.  ``configured_before``
    stands in for installs made before the record existed.
    """
    previous = installed_prefix(paths) or configured_before
    changed = install_policy(names, spec, policy, paths)
    changed |= retire_prefix(previous, names)
    if installed_prefix(paths) != names.prefix:
        write_atomic(paths.installed_prefix, names.prefix + "\n", 0o644)
    return changed


def remove_installation(names: Names) -> bool:
    """The seed's order: flush the sets, remove the rules that use them, destroy the sets.

    A chain that is not tsadmin's alone (host rules in it, host rules jumping
    to it) is refused before the sets are emptied.
    """
    target = IpsetTarget(names)
    firewall = Firewall(names)
    firewall.check_owned(removing=True)
    present = target.present()
    target.flush_all()
    changed = firewall.remove()
    target.destroy_all()
    return changed or bool(present)


def cron_jobs(paths: Paths, config_file: Path) -> list[CronJob]:
    """The interpreter running now and this script: cron's bare environment needs both spelled out."""
    command = [*host.tsadmin_command(), "--root", str(paths.root), "--config", str(config_file.resolve())]
    return [
        CronJob("17 */2 * * *", shlex.join([*command[:2], "update", *command[2:]]), CRON_TAGS[0]),
        CronJob("7 * * * *", shlex.join([*command[:2], "logs", *command[2:]]), CRON_TAGS[1]),
    ]


def cron_root(paths: Paths) -> Path | None:
    return None if paths.root == Path("/") else paths.root


# ---------------------------------------------------------------- add


def auto_key(args: argparse.Namespace) -> str | None:
    """The key from --auto_key_file, $TS_AUTO_KEY or --auto_key (the last shows in `ps`)."""
    if args.auto_key_file:
        try:
            return Path(args.auto_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --auto_key_file {args.auto_key_file}: {exc.strerror}") from None
    if os.environ.get("TS_AUTO_KEY"):
        return os.environ["TS_AUTO_KEY"].strip()
    if args.auto_key:
        log.warning("--auto_key is visible to other users in the process list; prefer $TS_AUTO_KEY")
    return args.auto_key


def option_values(args: argparse.Namespace) -> dict[str, str]:
    values = {
        OPTION_KEYS.get(option, option): getattr(args, option)
        for option in ADD_VALUE_OPTIONS
        if getattr(args, option) is not None
    }
    if args.load_br_netfilter is not None:
        values["load_br_netfilter"] = args.load_br_netfilter
    if args.skip_checkvalidip:
        values["skip_checkvalidip"] = "yes"
    key = auto_key(args)
    if key:
        add_secret(key)
        values["auto_key"] = key
    return values


def ask(name: str, default: str) -> str:
    """One prompt of the manual mode, re-asked until the answer fits the key."""
    key = LINUX_KEYS[name]
    for _ in range(3):
        sys.stdout.write(f"{key.help} [{default}]: ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            raise ConfigError(f"no answer for {name}; pass --{name}=... or --silent to take the defaults")
        answer = line.strip() or default
        if not answer and not key.required:
            return ""
        try:
            parsed = key.parse(answer)
        except Invalid as exc:
            print(f"  {name}: {exc}")
            continue
        return parsed if isinstance(parsed, str) else answer
    raise ConfigError(f"{name}: three answers did not fit; pass --{name}=... instead")


def countdown() -> None:
    """--take_defaults: a last chance to stop (Ctrl-C) when someone is watching."""
    if not sys.stdin.isatty():
        return
    for left in range(COUNTDOWN_SECONDS, 0, -1):
        print(f"Accepting the defaults in {left}s (Ctrl-C to stop)...", flush=True)
        time.sleep(1)


def gather_settings(args: argparse.Namespace, path: Path) -> dict[str, str]:
    """Existing file, then the portal (--type auto) or the prompts (manual), then the options win."""
    raw = read_values(path) if path.exists() else {}
    given = option_values(args)
    merged = {**raw, **given}
    client = ssh_client()
    kept = [word for word in str(merged.get("keep_reachable") or "").replace(",", " ").split()]
    if client and client not in kept:
        log.info(f"Keeping {client} (this SSH session) reachable whatever the policy says: keep_reachable")
        merged["keep_reachable"] = ", ".join([*kept, client])
    elif not client and not kept and sys.stdin.isatty():
        log.warning(
            "cannot tell this session's SSH client address: if you are logged in remotely, add your "
            "address with keep_reachable in the config so that the block list cannot lock you out"
        )
    if merged.get("type", "manual") == "auto":
        needed = {name: LINUX_KEYS[name] for name in AUTOCONF_KEYS}
        merged.update(fetch_settings(_validated(merged, path, needed)))
        merged.update(given)
    elif not (args.silent or args.take_defaults):
        for name in PROMPTS + (ADVANCED_PROMPTS if args.advanced else ()):
            if name not in given:
                merged[name] = ask(name, str(merged.get(name) or LINUX_KEYS[name].default or ""))
    elif args.take_defaults:
        countdown()
    return merged


def _validated(raw: dict[str, str], path: Path, keys: Schema = LINUX_KEYS) -> Config:
    values, problems = validate(raw, keys, path.parent.resolve())
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(path, values)


def command_add(args: argparse.Namespace, paths: Paths) -> Exit:
    log.info(f"ThreatSTOP ts-iptables add starting @ {time.ctime()}")
    path = config_path(args, paths)
    raw = gather_settings(args, path)
    config = _validated(raw, path)
    names = derive_names(config.tsprefix)
    spec = chain_spec(config)
    with run_lock(paths.lock, "tsadmin"):
        policy = None
        if args.skip_checkpolicy:
            log.info("Skipping the policy check (--skip_checkpolicy): the cron job fetches it later")
            if config.skip_checkvalidip:
                log.info("Skipping the public IP check (--skip_checkvalidip)")
            else:
                check_valid_ip(config)
        else:
            policy = fetch_policy(config, lifelines_extra=kept_reachable(config, paths)).policy
        firewall = Firewall(names)
        firewall.check_owned()
        unit = host.render_unit(paths, path)
        saved = {"ipset": run_tool(["ipset", "save"])}
        saved.update({"iptables": firewall.backup(4), "ip6tables": firewall.backup(6)})
        changed = bool(host.backup_once(paths, saved))
        # The firewall first: if it fails, no config, cron job or unit claims an installation.
        before = read_values(path) if path.exists() else None
        changed |= install_and_retire(names, spec, policy, paths, (before or {}).get("tsprefix"))
        wanted = {name: value for name, value in raw.items() if name in LINUX_KEYS}
        if before is None or any(before.get(name) != value for name, value in wanted.items()):
            save_config(path, wanted, LINUX_KEYS, LINUX_TITLE)
            changed = True
        changed |= host.set_br_netfilter(paths, config.load_br_netfilter)
        host.route_kernel_log(paths, host_logfile(config, paths))
        changed |= host.install_logrotate(paths)
        ensure_cron_jobs(cron_jobs(paths, path), cron_root(paths))
        changed |= host.install_unit(paths, unit)
    log.info("ThreatSTOP is installed" if changed else "ThreatSTOP was already installed as configured")
    return Exit.CHANGED if changed else Exit.UNCHANGED


# ---------------------------------------------------------------- other commands


def command_update(args: argparse.Namespace, paths: Paths) -> Exit:
    config = load(args, paths)
    configured_before = config.tsprefix
    with run_lock(paths.lock, "tsadmin"):
        if config.type == "auto":
            config = refresh_auto_settings(config)
        names = derive_names(config.tsprefix)
        policy = fetch_policy(config, force=args.force, lifelines_extra=kept_reachable(config, paths)).policy
        changed = install_and_retire(names, chain_spec(config), policy, paths, configured_before)
    return Exit.CHANGED if changed else Exit.UNCHANGED


def retire_prefix(previous: str | None, names: Names) -> bool:
    """A new prefix: its chain is on top now, so the old chain and sets can go without a gap."""
    if not previous or previous == names.prefix:
        return False
    log.info(f"Prefix changed from {previous} to {names.prefix}: removing the {previous} chain and sets")
    return remove_installation(derive_names(previous))


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
        updated = _validated(fresh, config.path)
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
    configured = read_values(path).get("tsprefix") if path.exists() else None
    with run_lock(paths.lock, "tsadmin"):
        prefixes = dict.fromkeys([installed_prefix(paths), configured or LINUX_KEYS["tsprefix"].default])
        everything = [derive_names(prefix) for prefix in prefixes if prefix]
        for names in everything:
            Firewall(names).check_owned(removing=True)
        changed = False
        for names in everything:
            changed |= remove_installation(names)
        changed |= host.remove_file(paths.installed_prefix)
        changed |= host.remove_log_config(paths)
        changed |= host.set_br_netfilter(paths, False)
        changed |= host.remove_unit(paths)
        changed |= bool(remove_cron_jobs(CRON_TAGS, cron_root(paths)))
        changed |= host.remove_file(paths.state)
        host.remove_file(paths.state_pending)
    log.info(f"ThreatSTOP rules removed; the config stays in {path} and the backups in {paths.install_dir}")
    return Exit.CHANGED if changed else Exit.UNCHANGED


def command_show(args: argparse.Namespace, paths: Paths) -> Exit:
    config = load(args, paths)
    print(f"Configuration: {config.path}")
    for name, key in LINUX_KEYS.items():
        value = config.get(name)
        shown = MASK if key.secret and value else "" if value is None else value
        if isinstance(value, list):
            shown = ", ".join(str(item) for item in value)
        print(f"  {name} = {shown}")
    names = derive_names(config.tsprefix)
    target = IpsetTarget(names)
    members = target.read()
    print(f"Chain {names.chain}: {'installed' if Firewall(names).installed() else 'not installed'}")
    for spec in names.sets:
        if spec.name in target.sets:
            print(f"  {spec.name} ({spec.hash_type}): {len(target.sets[spec.name].members)} entries")
    print(f"Block list: {len(members['block'])} entries, allow list: {len(members['allow'])} entries")
    return Exit.UNCHANGED


def command_logs(args: argparse.Namespace, paths: Paths) -> Exit:
    """Rotate the block log, make the syslog daemon reopen it, and upload it (the Cisco upload code)."""
    config = load(args, paths)
    reopen = config.log_reopen_command or host.reopen_command(paths)
    device = Device(
        address=str(config.external_ip or ""), identifier=str(config.device_id or socket.gethostname())
    )
    upload_configured(config, host_logfile(config, paths), device, reopen)
    return Exit.UNCHANGED


def command_restore(args: argparse.Namespace, paths: Paths) -> Exit:
    """Boot: the sets from the last saved state, then the chain; no network needed."""
    config = load(args, paths)
    names = derive_names(config.tsprefix)
    with run_lock(paths.lock, "tsadmin"):
        policy = IpsetTarget.load_state(paths.state, names)
        changed = install_policy(names, chain_spec(config), policy, paths)
    return Exit.CHANGED if changed else Exit.UNCHANGED


COMMANDS: dict[str, Callable[[argparse.Namespace, Paths], Exit]] = {
    "add": command_add,
    "remove": command_remove,
    "update": command_update,
    "show": command_show,
    "logs": command_logs,
    "restore": command_restore,
}
