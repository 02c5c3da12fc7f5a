"""What every command shares: its arguments, its config, its log, and its one-line failures.

A command's body returns an :class:`~ts_isr.errors.Exit`; anything that goes
wrong on the way is a :class:`~ts_isr.errors.TsError` whose message says what
to do, and becomes exactly one ``[ERROR] : ...`` line and a documented exit code.
"""

from __future__ import annotations

import argparse
import os
import select
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from ts_isr.config import CISCO_KEYS, SEARCH_ORDER_HELP, Config, Schema, find_config, load_config
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.log import add_secret, log, log_bug, setup_logging

EXIT_CODES_HELP = (
    "exit codes: 0 success, 1 failed, 2 config error, 3 another run holds the lock; "
    "with --detailed-exitcodes, 0 nothing changed and 4 changed"
)
DETAILED_HELP = "exit 4 when something changed (else 0 for any success)"


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every command has: ``--config`` and ``--verbose``."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EXIT_CODES_HELP)
    parser.add_argument("--config", metavar="PATH", help=f"config file; search order: {SEARCH_ORDER_HELP}")
    parser.add_argument("--verbose", action="store_true", help="show every detail on the terminal too")
    parser.add_argument("--detailed-exitcodes", action="store_true", help=DETAILED_HELP)
    return parser


def exit_status(code: Exit, detailed: bool) -> int:
    """The process's exit status for a body's result: "changed" is a success like any other,
    and only ``--detailed-exitcodes`` tells it apart."""
    return int(Exit.UNCHANGED if code == Exit.CHANGED and not detailed else code)


def command_dir() -> Path:
    """The directory of the running script: the vendor's scripts kept threatstop.conf beside them."""
    return Path(sys.argv[0]).resolve().parent


def load_command_config(explicit: str | None, keys: Schema = CISCO_KEYS) -> Config:
    """The config found by the documented search order, with every secret registered for masking.

    A config another user could change (a ``./threatstop.conf`` planted in a shared folder) is
    refused by :func:`~ts_isr.config.load_config`, never passed over for the next one.
    """
    path = find_config(explicit, command_dir())
    if not path.exists():
        raise ConfigError(
            f"no config file {path} (looked for: {SEARCH_ORDER_HELP}); run setup or pass --config PATH"
        )
    config = load_config(path, keys)
    for secret in config.secrets(keys):
        add_secret(secret)
    return config


def use_logfile(logfile: Path, *, verbose: bool = False, quiet: bool | None = None) -> None:
    """Send the log to ``logfile`` too, once the config has said where it goes."""
    try:
        setup_logging(logfile, verbose=verbose, quiet=quiet)
    except OSError as exc:
        raise TsError(
            f"cannot write the log {logfile}: {exc.strerror}; fix its directory's permissions or tsoutput"
        ) from None


def run_command(
    body: Callable[[], Exit],
    *,
    logfile: Path | None = None,
    verbose: bool = False,
    quiet: bool | None = None,
    detailed: bool = False,
) -> int:
    """Run ``body`` with the log set up; turn every failure into one ``[ERROR]`` line and its exit code.

    ``logfile`` may be None when it is only known from the config: the body
    then calls :func:`use_logfile` once it has loaded it (registered secrets
    stay registered).
    """
    try:
        setup_logging(logfile, verbose=verbose, quiet=quiet)
    except OSError as exc:
        print(f"[ERROR] : cannot write the log {logfile}: {exc.strerror}; fix its directory's permissions")
        return Exit.FAILED
    except TsError as exc:  # a planted link or a folder others can change
        print(f"[ERROR] : {exc}")
        return int(exc.exit_code)
    try:
        return exit_status(body(), detailed)
    except TsError as exc:
        log.error(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted; the next run finishes the job (nothing is left half-locked)")
        return int(Exit.FAILED)
    except BrokenPipeError as exc:
        if not stdout_is_a_closed_pipe():
            return internal_error(exc)
        # Output piped into `head` and closed early: not a failure of the command.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return int(Exit.UNCHANGED)
    except Exception as exc:
        return internal_error(exc)


def internal_error(exc: BaseException) -> int:
    """A bug: one line for the user, the traceback in the file log."""
    log_bug(exc, "run again with --verbose and report it")
    return int(Exit.FAILED)


def stdout_is_a_closed_pipe() -> bool:
    """Whether stdout is a pipe whose reader has gone: the one broken pipe that is not a failure
    (any other, say the device's socket, is)."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False
