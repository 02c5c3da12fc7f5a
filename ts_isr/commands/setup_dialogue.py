"""setup's dialogue: the questions in the seed's order, the answers checked, the summary shown, and
the terminal I/O that asks them.  The checks are pure; only :func:`ask`, :func:`confirm`,
:func:`interview` and :func:`countdown` touch the terminal."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ts_isr.config import CISCO_KEYS, Invalid
from ts_isr.log import log

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
