"""setup: the seed's interactive wizard, then host-key trust, syslog-ng, logrotate, cron and a first run.

The dialogue is the vendor's (``[previous] ==>``, Enter keeps it, hidden
passwords shown as ``[******]``); every prompt also has a flag, so that
``--silent`` and ``--take-defaults`` run it without a terminal.  The config is
only written after "Apply settings", atomically, so Ctrl-C never leaves half
a file; re-running replaces the system files and cron lines it wrote before.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ts_isr import __version__, hostkeys, sysconf
from ts_isr.commands.common import command_dir, command_parser, load_command_config, run_command
from ts_isr.commands.setup_dialogue import (
    CLEAR,
    FLAG_ONLY,
    FLAGGED_KEYS,
    PASSWORD_ENV,
    QUESTIONS,
    check_answer,
    confirm,
    countdown,
    interview,
    offered_values,
    problems_in,
    summary,
)
from ts_isr.config import CISCO_KEYS, Config, Invalid, find_config, read_values, save_config
from ts_isr.devicerun import cisco_target
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.log import add_secret, log, setup_logging
from ts_isr.metrics import metrics_dir_of
from ts_isr.tools import child_env

UPLOAD_RULES_SCHEDULE = "23 */2 * * *"
LOGUPLOAD_SCHEDULE = "53 * * * *"
WELCOME = f"""
Welcome to the ThreatSTOP setup for CISCO Controllers v{__version__}
At the first stage of setup process you will be given the chance
to specify a number of setup options. You can always change them
later by re-running setup script or by manually updating the
relevant entries in threatstop.conf file.
If parameter had been previously configured its value will be shown
in [] on parameter request line. You can choose to re-use this value
by simply pressing enter. Type {CLEAR} to clear an optional value (a
password too; a password that is {CLEAR} itself goes in --password-file).

For security reasons the preconfigured password parameter is not shown.
Instead if previous configuration exists it will appear as [******].
"""

FIRST_RUN_TEXT = """
We are ready to run upload rules script for the first time.  The script
execution output will be saved into tsoutput.log log file.
"""


def cron_jobs(config_path: Path, python: str = sys.executable) -> list[sysconf.CronJob]:
    """upload_rules every two hours at :23 (the seed's schedule) and the log upload hourly."""
    jobs = []
    for schedule, command in (
        (UPLOAD_RULES_SCHEDULE, "upload_rules"),
        (LOGUPLOAD_SCHEDULE, "loguploadclient"),
    ):
        line = shlex.join([python, "-m", f"ts_isr.commands.{command}", "--config", str(config_path)])
        jobs.append(
            sysconf.CronJob(
                schedule=schedule,
                command=line,  # the interpreter that has ts_isr: no folder to cd into (a package has none)
                tag=f"ts_isr {command} {config_path}",
            )
        )
    return jobs


# --- after "Apply settings": the device, the system, the first run ---------------------------------------


def check_access(config: Config, *, accept: bool, can_ask: bool) -> None:
    """The seed's "ssh once": trust the device's host key, then log in and enter privileged mode as
    upload_rules will (strict host key); one line per failure."""
    log.info(f"Verifying network access to CISCO device {config.device}")
    log.info("Establishing ssh connection")
    ask = (lambda default: confirm("Trust this host key", default=default)) if can_ask else None
    hostkeys.trust(
        config.known_hosts,
        str(config.device),
        config.ssh_port,
        config.ssh_timeout,
        unasked=accept,
        confirm=ask,
    )
    target = cisco_target(config, ("block",))
    try:
        target.connect()
    finally:
        target.close()
    log.info("Login and enable OK.")
    log.info("Network access OK.")


def install_system_files(config: Config, root: Path | None, control: Path | None) -> None:
    """logrotate and syslog-ng files, each checked by its tool first; then syslog-ng reloads."""
    log.info("Prepare logrotation configuration.")
    rotate = sysconf.render(
        "logrotate/threatstop",
        sysconf.logrotate_values(
            config=config.path.resolve(),
            logfile=config.logfile,
            tsoutput=config.tsoutput,
            keep=max(config.keep_uploaded_days, 1),
            reopen=config.log_reopen_command,
        ),
    )
    syslog = sysconf.render(
        "syslog-ng/threatstop.conf",
        sysconf.syslog_ng_values(
            config=config.path.resolve(),
            device=config.device,
            syslog_port=config.syslog_port,
            logfile=config.logfile,
        ),
    )
    sysconf.check_logrotate(rotate)
    sysconf.check_syslog_ng_snippet(syslog)
    log.info(f"Installed {sysconf.install_file(root, sysconf.LOGROTATE_FILE, rotate)}")
    log.info(f"Installed {sysconf.install_file(root, sysconf.SYSLOG_NG_SNIPPET, syslog)}")
    if root is None:
        log.info("Restarting syslog-ng.")  # the seed's line; a reload, which loses no message
        try:
            sysconf.reload_syslog_ng(control)
        except TsError as exc:
            log.warning(str(exc))


def first_run(config: Config, quiet: bool) -> None:
    """upload_rules for the first time, as cron will run it; it writes its own tsoutput.log."""
    log.info("Running upload rules script for the first time...")
    if not quiet:
        print(FIRST_RUN_TEXT)
    done = subprocess.run(
        [sys.executable, "-m", "ts_isr.commands.upload_rules", "--config", str(config.path.resolve())],
        cwd="/",
        env=child_env(),
        stdout=subprocess.DEVNULL if quiet else None,
        check=False,
    )
    if done.returncode not in (Exit.UNCHANGED, Exit.CHANGED):
        raise TsError(
            f"the first run of upload_rules failed (exit {done.returncode}); setup itself is complete: "
            f"read {config.tsoutput}, fix the cause and run upload_rules --config {config.path}"
        )
    log.info("Upload rules process completed...")


# --- wiring -------------------------------------------------------------------------------------------------


def _flag_type(key: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check_answer(key, text)
        except Invalid as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "setup", "Configure ThreatSTOP for a Cisco ISR/ASA: the config, syslog-ng, logrotate, cron."
    )
    for question in QUESTIONS:
        if question.flag:
            parser.add_argument(
                question.flag,
                dest=question.key,
                metavar=question.key.upper(),
                type=_flag_type(question.key),
                help=CISCO_KEYS[question.key].help,
            )
    for flag, key in FLAG_ONLY.items():
        parser.add_argument(
            flag, dest=key, metavar=key.upper(), type=_flag_type(key), help=CISCO_KEYS[key].help
        )
    parser.add_argument(
        "--password-file",
        metavar="FILE",
        help="SSH password on the first line, enable password on the second ('-': stdin); "
        "or set $TS_PASSWORD and $TS_ENABLE_PW. Never pass passwords as arguments.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--silent", action="store_true", help="no questions and no output: accept every value")
    mode.add_argument(
        "--take-defaults", action="store_true", help="no questions: show the values, apply after a countdown"
    )
    parser.add_argument("--countdown", type=int, default=10, metavar="S", help="seconds for --take-defaults")
    parser.add_argument(
        "--trust-host-key",
        action="store_true",
        help="trust the device's SSH key unasked when none is trusted yet "
        "(a changed key is only ever trusted at a terminal, after both fingerprints are shown)",
    )
    parser.add_argument("--root", type=Path, metavar="DIR", help="write system files and crontab under DIR")
    parser.add_argument("--syslog-ng-ctl", type=Path, metavar="SOCKET", help="syslog-ng's control socket")
    parser.add_argument("--no-first-run", action="store_true", help="do not run upload_rules at the end")
    return parser


def read_secrets(args: argparse.Namespace) -> dict[str, str | None]:
    """Passwords from --password-file (or stdin) or the environment: never from the command line."""
    secrets: dict[str, str | None] = {key: os.environ.get(env) for key, env in PASSWORD_ENV.items()}
    if args.password_file:
        try:
            text = sys.stdin.read() if args.password_file == "-" else Path(args.password_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read --password-file {args.password_file}: {exc.strerror}") from None
        lines = text.splitlines()
        for key, line in zip(PASSWORD_ENV, lines):
            secrets[key] = line
    for value in secrets.values():
        add_secret(value)
    return secrets


def setup(args: argparse.Namespace) -> Exit:
    path = find_config(args.config, command_dir())
    interactive = not (args.silent or args.take_defaults)
    if interactive and not sys.stdin.isatty():
        raise ConfigError(
            "setup asks questions and needs a terminal; without one pass --silent or --take-defaults"
        )
    if not args.silent:
        print(WELCOME)
    log.info(f"Starting script v.{__version__} execution")
    previous = read_values(path) if path.exists() else {}
    if previous:
        log.info(f"Previous configuration found in {path}: its values are offered again.")
    for key in PASSWORD_ENV:
        add_secret(previous.get(key))
    flags = {key: getattr(args, key) for key in FLAGGED_KEYS}
    values = offered_values(previous, flags, read_secrets(args))
    try:
        if interactive:
            values = interview(values)
        elif problems := problems_in(values):
            raise ConfigError("; ".join(problems))
        if not args.silent:
            print(summary(values))
        if interactive and not confirm("Apply settings", default=True):
            log.info("Settings not applied; nothing was changed.")
            return Exit.UNCHANGED
        if args.take_defaults:
            countdown(args.countdown)
    except KeyboardInterrupt:
        print()
        raise TsError("setup interrupted; nothing was saved or changed") from None
    except EOFError:
        raise TsError("setup's input ended before the last question; nothing was saved or changed") from None
    save_config(path, {key: values[key] for key in flags | PASSWORD_ENV})
    log.info(f"Settings saved in {path} (mode 0600).")
    config = load_command_config(str(path))  # registers the typed passwords for masking too
    setup_logging(config.tsoutput, verbose=args.verbose, quiet=args.silent)
    check_access(config, accept=args.trust_host_key, can_ask=interactive)
    if not args.silent:
        print("\nWe are about to start the system configuration process.\n")
    install_system_files(config, args.root, args.syslog_ng_ctl)
    log.info("Setting up cron entries for automatic execution.")
    for line in sysconf.ensure_cron_jobs(cron_jobs(path.resolve()), args.root):
        log.info(f"cron: {line}")
    metrics = metrics_dir_of(config.get("metrics_dir"))
    log.info(f"Run metrics for monitoring: {metrics or 'off'} (metrics_dir; see README, Monitoring)")
    if not args.no_first_run:
        first_run(config, quiet=args.silent)
    log.info(f"Finished v.{__version__} execution")
    return Exit.UNCHANGED  # 0: setup is done (scripts test for 0; "changed" is for upload_rules)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: setup(args), verbose=args.verbose, quiet=args.silent)


if __name__ == "__main__":
    sys.exit(main())
