"""What ``tsadmin add`` is told: the existing config, then the portal (``--type auto``) or the prompts,
then the options; and the SSH client's address, kept reachable whatever the policy says."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from pathlib import Path

from ts_isr.autoconf import fetch_settings
from ts_isr.config import Config, Invalid, Schema, read_values, validate
from ts_isr.errors import ConfigError
from ts_isr.linux import host
from ts_isr.linux.settings import ADVANCED_PROMPTS, AUTOCONF_KEYS, LINUX_KEYS, PROMPTS
from ts_isr.log import add_secret, log

COUNTDOWN_SECONDS = 5
KEY_FILE_LIMIT = 4096  # an automation key is one short line
# `tsadmin add` options that are config keys under another name.
OPTION_KEYS = {"maxpolicysize": "max_policy_size"}
ADD_VALUE_OPTIONS = (
    "allow_list",
    "block_list",
    "device_id",
    "dns_server",
    "firewall",
    "logopts",
    "logopts_direction",
    "maxpolicysize",
    "port",
    "allow_action",
    "tsprefix",
    "type",
)


def ssh_client() -> str | None:
    """The address of the SSH session running ``tsadmin add``: blocking it would lock the admin out.

    ``sudo`` drops SSH_CONNECTION from tsadmin's environment, but the login
    shell above it still has it: the parent processes are asked too.
    """
    value = os.environ.get("SSH_CONNECTION") or host.ancestor_variable("SSH_CONNECTION")
    words = (value or "").split()
    return words[0] if words else None


# ---------------------------------------------------------------- add


def read_key_file(path: Path) -> str:
    """The key from a file the admin keeps, whoever owns it (``sudo`` from a home folder): a regular
    file, not a link, and one short line; a FIFO is not waited on, and a huge file is never read whole."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read --auto_key_file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"--auto_key_file {path} is not a regular file; give the file holding the key")
        held = handle.read(KEY_FILE_LIMIT + 1)
    if len(held) > KEY_FILE_LIMIT:
        raise ConfigError(
            f"--auto_key_file {path} holds more than {KEY_FILE_LIMIT} bytes; is it the key file?"
        )
    return held.decode("utf-8", errors="replace").strip()


def auto_key(args: argparse.Namespace) -> str | None:
    """The key from --auto_key_file, $TS_AUTO_KEY or --auto_key (the last shows in `ps`)."""
    if args.auto_key_file:
        return read_key_file(Path(args.auto_key_file))
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
        merged.update(fetch_settings(validated(merged, path, needed)))
        merged.update(given)
    elif not (args.silent or args.take_defaults):
        for name in PROMPTS + (ADVANCED_PROMPTS if args.advanced else ()):
            if name not in given:
                merged[name] = ask(name, str(merged.get(name) or LINUX_KEYS[name].default or ""))
    elif args.take_defaults:
        countdown()
    return merged


def validated(raw: dict[str, str], path: Path, keys: Schema = LINUX_KEYS) -> Config:
    values, problems = validate(raw, keys, path.parent.resolve())
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(path, values)
