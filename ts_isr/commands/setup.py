"""setup: the seed's interactive wizard, then host-key trust, syslog-ng, logrotate, cron and a first run.

The dialogue is the vendor's (``[previous] ==>``, Enter keeps it, hidden
passwords shown as ``[******]``); every prompt also has a flag, so that
``--silent`` and ``--take-defaults`` run it without a terminal.  The config is
only written after "Apply settings", atomically, so Ctrl-C never leaves half
a file; re-running replaces the system files and cron lines it wrote before.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ts_isr import __version__, hostkeys, sysconf
from ts_isr.commands.common import command_dir, command_parser, load_command_config, run_command
from ts_isr.config import CISCO_KEYS, Config, Invalid, find_config, read_values, save_config
from ts_isr.devicerun import cisco_target
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.log import add_secret, log, setup_logging
from ts_isr.metrics import metrics_dir_of
from ts_isr.tools import child_env

UPLOAD_RULES_SCHEDULE = "23 */2 * * *"
LOGUPLOAD_SCHEDULE = "53 * * * *"
PASSWORD_ENV = {"password": "TS_PASSWORD", "enable_pw": "TS_ENABLE_PW"}
CLEAR = "-"


@dataclass(frozen=True)
class Question:
    """One prompt of the dialogue: the config key it sets, its text, and its flag."""

    key: str
    text: str
    flag: str | None = None
    summary: str = ""
    hidden: bool = False
    ios_only: bool = False  # asked of an IOS device only (IPv6 groups of their own)


# The seed's prompts in the seed's order, then the suite's own (SSH port, device type).
QUESTIONS = (
    Question("block_list", "Please enter the block_list to use:", "--block-list", "ThreatSTOP block list"),
    Question("allow_list", "Please enter the allow_list to use:", "--allow-list", "ThreatSTOP allow list"),
    Question(
        "external_ip",
        "Please enter the external IP address of the ISR device:",
        "--external-ip",
        "CISCO device external IP",
    ),
    Question("port", "Please enter port to use for DNS queries:", "--port", "Port"),
    Question(
        "max_policy_size",
        "Please enter the Maximum Policy size of the ISR device:",
        "--max-policy-size",
        "Max policy size",
    ),
    Question(
        "device",
        "Please enter the internal IP address of the ISR device:",
        "--device",
        "CISCO device internal IP",
    ),
    Question("ssh_port", "Please enter the SSH port of the ISR device:", "--ssh-port", "SSH port"),
    Question(
        "personality",
        "Please enter the type of Cisco device (ios for ISR routers, asa):",
        "--personality",
        "Device type",
    ),
    Question(
        "object_group_block_v6",
        "Please enter the IPv6 object group for the block list (empty: no IPv6):",
        "--object-group-block-v6",
        "IPv6 block group",
        ios_only=True,
    ),
    Question(
        "object_group_allow_v6",
        "Please enter the IPv6 object group for the allow list (empty: no IPv6):",
        "--object-group-allow-v6",
        "IPv6 allow group",
        ios_only=True,
    ),
    Question("username", "Please enter the username used to SSH to the ISR:", "--username", "Username"),
    Question(
        "password", "Please enter the SSH password (text is hidden):", summary="SSH password", hidden=True
    ),
    Question(
        "enable_pw",
        "Please enter the ISR enable password (text is hidden):",
        summary="ISR enable password",
        hidden=True,
    ),
)
# Keys with a flag but no prompt: they rarely change and have good defaults.
FLAG_ONLY = {"--dns-server": "dns_server", "--syslog-port": "syslog_port", "--logfile": "logfile"}
FLAGGED_KEYS = [q.key for q in QUESTIONS if q.flag] + list(FLAG_ONLY.values())
SUMMARY_ORDER = (
    "external_ip",
    "device",
    "ssh_port",
    "personality",
    "object_group_block_v6",
    "object_group_allow_v6",
    "username",
    "password",
    "enable_pw",
    "block_list",
    "allow_list",
    "port",
    "max_policy_size",
)

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


# --- pure: the values offered, the answers checked, the summary ------------------------------------


def check_answer(key: str, text: str) -> str:
    """The text to store for ``key``; raises :class:`Invalid` with the reason when it does not fit."""
    spec = CISCO_KEYS[key]
    if text == "":
        if spec.required:
            raise Invalid("a value is required")
        return ""
    spec.parse(text)
    return text


def offered_values(
    previous: Mapping[str, str], flags: Mapping[str, str | None], secrets: Mapping[str, str | None]
) -> dict[str, str]:
    """What each prompt offers in ``[]``: a value given now, else the previous one, else the default."""
    values = {}
    for key, spec in CISCO_KEYS.items():
        given = flags.get(key) if key in flags else secrets.get(key)
        if given is not None:
            values[key] = given
        elif previous.get(key, "") != "":
            values[key] = previous[key]
        else:
            values[key] = spec.default or ""
    return values


def problems_in(values: Mapping[str, str]) -> list[str]:
    """One line per value that would be refused, naming the flag that sets it."""
    flags = {q.key: q.flag for q in QUESTIONS} | {key: flag for flag, key in FLAG_ONLY.items()}
    problems = []
    for key in [q.key for q in QUESTIONS if not q.flag] + FLAGGED_KEYS:
        try:
            check_answer(key, values.get(key, ""))
        except Invalid as exc:
            where = flags.get(key) or f"${PASSWORD_ENV[key]} or --password-file"
            shown = "******" if CISCO_KEYS[key].secret else repr(values.get(key, ""))
            problems.append(f"{key} {shown}: {exc} (set it with {where})")
    return problems


def summary(values: Mapping[str, str]) -> str:
    """The seed's "Chosen configuration parameters" block, passwords masked."""
    labels = {q.key: q.summary for q in QUESTIONS}
    width = max(len(label) for label in labels.values())
    lines = ["", "Chosen configuration parameters"]
    ios_only = {q.key for q in QUESTIONS if q.ios_only}
    for key in SUMMARY_ORDER:
        if key in ios_only and values.get("personality", "ios") != "ios":
            continue
        shown = ("*******" if values.get(key) else "") if CISCO_KEYS[key].secret else values.get(key, "")
        lines.append(f"{labels[key].ljust(width)} : {shown}".rstrip())
    return "\n".join(lines) + "\n"


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


# --- the dialogue (terminal I/O) ----------------------------------------------------------------------


def ask(question: Question, current: str, read_line: Callable[[str], str]) -> str:
    """Ask until the answer fits: Enter keeps ``current``, ``-`` clears an optional value."""
    while True:
        print(question.text)
        shown = ("******" if current else "") if question.hidden else current
        typed = read_line(f"[{shown}] ==> ")
        answer = typed if question.hidden else typed.strip()  # spaces may belong to a password
        if answer == "":
            answer = current
        elif answer == CLEAR:  # hidden values too: an enable_pw is cleared when the login lands privileged
            answer = ""
        try:
            return check_answer(question.key, answer)
        except Invalid as exc:
            print(f"Invalid {question.key}: {exc}. Please try again.")


def confirm(question: str, default: bool) -> bool:
    """A ``Y/N?: [Y]`` question; Enter takes the default."""
    while True:
        answer = input(f"{question} Y/N?: [{'Y' if default else 'N'}] ").strip().lower()
        if answer == "":
            return default
        if answer in ("y", "yes", "n", "no"):
            return answer.startswith("y")
        print("Please answer Y or N.")


def interview(values: dict[str, str]) -> dict[str, str]:
    """The seed's interactive stage: every question, with its offered value."""
    log.info("Entering interactive stage.")
    print()
    answers = dict(values)
    for question in QUESTIONS:
        if question.ios_only and answers.get("personality", "ios") != "ios":
            continue
        reader = getpass.getpass if question.hidden else input
        answers[question.key] = ask(question, answers[question.key], reader)
    return answers


def countdown(seconds: int) -> None:
    """--take-defaults: a last chance to press Ctrl-C before anything is changed."""
    for left in range(seconds, 0, -1):
        print(f"\rApplying these settings in {left} s; press Ctrl-C to abort. ", end="", flush=True)
        time.sleep(1)
    print()


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
