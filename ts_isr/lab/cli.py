"""The lab device's command interpreter: modes, member lines and show output as IOS and the ASA print them.

Pure (no I/O, no clock of its own): the SSH adapter in device.py feeds it one line at a time and writes
what it answers, so every behaviour netmiko relies on is unit-tested without a socket.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

IOS = "ios"
ASA = "asa"
PLATFORMS = (IOS, ASA)
NAME_MAX = 64
IOS_CONFIG_PROMPT_NAME = 20
_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


class Mode(Enum):
    USER = "user"
    EXEC = "exec"
    CONFIG = "config"
    GROUP = "group"
    PASSWORD = "password"  # after `enable`: the next line is the secret, never echoed
    COPY_CONFIRM = "copy-confirm"  # after `copy running-config startup-config`: the filename question


@dataclass
class DeviceState:
    """The configuration a device holds: object-groups with ordered members, running and startup apart.

    Members are kept as insertion-ordered dicts (keys are the configuration text of each member) so
    that adding, removing and testing one member stays O(1) for groups of 30,000 members.
    """

    running: dict[str, dict[str, None]] = field(default_factory=dict)
    startup: dict[str, dict[str, None]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, dict[str, list[str]]]:
        """The state.json form: ``{"running": {GROUP: [member, ...]}, "startup": {...}}``."""
        return {
            "running": {name: list(members) for name, members in self.running.items()},
            "startup": {name: list(members) for name, members in self.startup.items()},
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, dict[str, list[str]]]) -> DeviceState:
        def load(groups: dict[str, list[str]]) -> dict[str, dict[str, None]]:
            return {name: dict.fromkeys(members) for name, members in groups.items()}

        return cls(load(data.get("running", {})), load(data.get("startup", {})))

    def save(self) -> None:
        """`write memory`: the startup configuration becomes a copy of the running one."""
        self.startup = {name: dict(members) for name, members in self.running.items()}


@dataclass(frozen=True)
class Profile:
    """What kind of device this is: platform, names, secret and the behaviours a test can switch on."""

    platform: str = IOS
    hostname: str = ""
    secret: str = ""
    old_ios: bool = False  # answers `show object-group name X` with `% Invalid input`, as 12.x/15.0 did
    max_members: int | None = None
    odd_prompt: bool = False  # the device sits in ROM monitor: a prompt no client should accept

    @property
    def name(self) -> str:
        return self.hostname or ("ISR4331" if self.platform == IOS else "ASA5506")


@dataclass
class Reply:
    """What the device prints after a line: the lines of output, then the next prompt."""

    lines: list[str] = field(default_factory=list)
    echo: bool = True
    close: bool = False
    changed: bool = False


class _CliError(Exception):
    """A line the parser rejects; rendered in the platform's words by ``Session._error``."""

    def __init__(self, kind: str, column: int = 0, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.column = column
        self.detail = detail


class _Words:
    """The tokens of one line with their columns, consumed left to right."""

    def __init__(self, line: str) -> None:
        self.items = [(m.group(), m.start()) for m in re.finditer(r"\S+", line)]
        self.line = line
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.items)

    def column(self) -> int:
        return self.items[self.pos][1] if not self.done() else len(self.line)

    def keyword(self, choices: Iterable[str]) -> str:
        """Resolve the next word against keywords by unique prefix, as the Cisco parser does."""
        if self.done():
            raise _CliError("incomplete")
        word, column = self.items[self.pos]
        choices = tuple(choices)
        lowered = word.lower()
        hits = [choice for choice in choices if choice == lowered] or [
            choice for choice in choices if choice.startswith(lowered)
        ]
        if len(hits) > 1:
            raise _CliError("ambiguous")
        if not hits:
            matched = max((_common_prefix(lowered, choice) for choice in choices), default=0)
            raise _CliError("invalid", column + matched)
        self.pos += 1
        return hits[0]

    def word(self) -> tuple[str, int]:
        if self.done():
            raise _CliError("incomplete")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def rest(self) -> str:
        """The remainder of the line as typed (descriptions keep their spacing)."""
        if self.done():
            raise _CliError("incomplete")
        text = self.line[self.column() :].rstrip()
        self.pos = len(self.items)
        return text

    def end(self) -> None:
        if not self.done():
            raise _CliError("invalid", self.column())


def _common_prefix(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def parse_ipv4(text: str, column: int) -> int:
    """A dotted quad as an integer; anything else is invalid input at that column."""
    match = _IPV4.match(text)
    if not match or any(int(octet) > 255 for octet in match.groups()):
        raise _CliError("invalid", column)
    a, b, c, d = (int(octet) for octet in match.groups())
    return a << 24 | b << 16 | c << 8 | d


def format_ipv4(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def _contiguous(mask: int) -> bool:
    inverted = ~mask & 0xFFFFFFFF
    return not inverted & (inverted + 1)


class Session:
    """One CLI session (one SSH channel) on a device whose state it shares with other sessions."""

    def __init__(
        self, profile: Profile, state: DeviceState, uptime: Callable[[], float] = lambda: 3900.0
    ) -> None:
        self.profile = profile
        self.state = state
        self.uptime = uptime
        self.mode = Mode.USER
        self.group = ""
        self.password_tries = 0

    # ----------------------------------------------------------------- prompt
    def prompt(self) -> str:
        if self.profile.odd_prompt:
            return "rommon 1 > "
        if self.mode is Mode.PASSWORD:
            return "Password: "
        if self.mode is Mode.COPY_CONFIRM:
            return (
                "Destination filename [startup-config]? "
                if self.profile.platform == IOS
                else "Source filename [running-config]? "
            )
        suffix = {
            Mode.USER: ">",
            Mode.EXEC: "#",
            Mode.CONFIG: "(config)#",
            Mode.GROUP: "(config-network-group)#"
            if self.profile.platform == IOS
            else "(config-network-object-group)#",
        }[self.mode]
        name = self.profile.name
        if self.profile.platform == IOS and self.in_config():
            name = name[:IOS_CONFIG_PROMPT_NAME]  # IOS abbreviates long hostnames in configuration modes
        return name + suffix + (" " if self.profile.platform == ASA else "")

    def in_config(self) -> bool:
        return self.mode in (Mode.CONFIG, Mode.GROUP)

    # ---------------------------------------------------------------- dispatch
    def handle(self, line: str) -> Reply:
        """Interpret one line typed at the current prompt."""
        if self.profile.odd_prompt:
            word = line.split()[0] if line.split() else ""
            return Reply([f'monitor: command "{word}" not found'] if word else [])
        if self.mode is Mode.PASSWORD:
            return self._password(line)
        if self.mode is Mode.COPY_CONFIRM:
            self.mode = Mode.EXEC
            return self._write_memory()
        prompt = self.prompt()
        command, pipe = line, ""
        if self._takes_output_modifier(line):
            command, _, pipe = line.partition("|")
        words = _Words(command)
        if words.done():
            return Reply()
        try:
            reply = self._dispatch(words)
            if pipe.strip():
                reply.lines = self._filter(reply.lines, pipe, len(prompt) + len(command) + 1)
            return reply
        except _CliError as error:
            return Reply(self._error(error, prompt, line))

    def _takes_output_modifier(self, line: str) -> bool:
        """`| include ...` follows show commands; in configuration a `|` is text (a description)."""
        first = line.split()[0].lower() if line.split() else ""
        return "|" in line and (not self.in_config() or first == "do" or "show".startswith(first))

    def _dispatch(self, words: _Words) -> Reply:
        if self.mode is Mode.GROUP:
            return self._group_line(words)
        if self.mode is Mode.CONFIG:
            return self._config_line(words)
        return self._exec_line(words)

    def _error(self, error: _CliError, prompt: str, line: str) -> list[str]:
        ios = self.profile.platform == IOS
        if error.kind == "incomplete":
            return ["% Incomplete command.", ""] if ios else ["ERROR: % Incomplete command"]
        if error.kind == "ambiguous":
            return [f'% Ambiguous command:  "{line.strip()}"'] if ios else ["ERROR: % Ambiguous command"]
        if error.kind == "unknown":
            return ["% Unknown command or computer name, or unable to find computer address"]
        if error.kind == "message":
            return [error.detail]
        caret = " " * (len(prompt) + error.column) + "^"
        if ios:
            return [caret, "% Invalid input detected at '^' marker.", ""]
        return [caret, "ERROR: % Invalid input detected at '^' marker."]

    # ------------------------------------------------------------ exec modes
    def _exec_keywords(self) -> tuple[str, ...]:
        common = ("enable", "exit", "logout", "show", "terminal")
        if self.mode is Mode.USER:
            return (*common, "login") if self.profile.platform == ASA else common
        return (*common, "configure", "copy", "disable", "write")

    def _exec_line(self, words: _Words) -> Reply:
        try:
            verb = words.keyword(self._exec_keywords())
        except _CliError as error:
            if error.kind == "invalid" and self.profile.platform == IOS and len(words.items) == 1:
                raise _CliError("unknown") from error
            raise
        return self._exec_verb(verb, words)

    def _exec_verb(self, verb: str, words: _Words) -> Reply:
        """Commands of privileged EXEC; the ASA also accepts them in configuration modes."""
        if verb in ("exit", "logout"):
            words.end()
            return Reply(close=True)
        if verb == "enable":
            words.end()
            if self.mode is Mode.USER:
                self.mode = Mode.PASSWORD
                self.password_tries = 0
            return Reply()
        if verb == "disable":
            words.end()
            self.mode = Mode.USER
            return Reply()
        if verb == "login":
            raise _CliError("message", detail="ERROR: Local authentication is not configured")
        if verb == "terminal":
            return self._terminal(words)
        if verb == "show":
            return Reply(self._show(words))
        if verb == "configure":
            words.keyword(("terminal",))
            words.end()
            self.mode = Mode.CONFIG
            if self.profile.platform == IOS:
                return Reply(["Enter configuration commands, one per line.  End with CNTL/Z."])
            return Reply()
        if verb == "write":
            if not words.done():
                words.keyword(("memory",))
            words.end()
            return self._write_memory()
        # copy running-config startup-config (the only copy a lab needs)
        words.keyword(("running-config",))
        words.keyword(("startup-config",))
        words.end()
        self.mode = Mode.COPY_CONFIRM
        return Reply()

    def _password(self, line: str) -> Reply:
        if line == self.profile.secret:
            self.mode = Mode.EXEC
            return Reply(echo=False)
        if self.profile.platform == IOS:
            self.mode = Mode.USER
            return Reply(["% Access denied", ""], echo=False)
        self.password_tries += 1
        if self.password_tries < 3:
            return Reply(["Invalid password"], echo=False)
        self.mode = Mode.USER
        return Reply(["Invalid password", "Access denied."], echo=False)

    def _terminal(self, words: _Words) -> Reply:
        options = ("length", "width", "monitor") if self.profile.platform == IOS else ("pager", "width")
        option = words.keyword(options)
        if option != "monitor":
            value, column = words.word()
            limits = {"length": 512, "width": 512, "pager": 2147483647}
            if not value.isdigit() or int(value) > limits[option]:
                raise _CliError("invalid", column)
        words.end()
        return Reply()

    def _write_memory(self) -> Reply:
        self.state.save()
        if self.profile.platform == IOS:
            return Reply(["Building configuration...", "[OK]"], changed=True)
        text = "\n".join(self._asa_running_config())
        digest = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        checksum = " ".join(digest[i : i + 8] for i in range(0, 32, 8))
        return Reply(
            [
                "Building configuration...",
                f"Cryptochecksum: {checksum} ",
                "",
                f"{len(text)} bytes copied in 0.170 secs",
                "[OK]",
            ],
            changed=True,
        )

    # ------------------------------------------------------------------ show
    def _show(self, words: _Words) -> list[str]:
        ios = self.profile.platform == IOS
        choices = ("version", "object-group", "running-config", "startup-config")
        what = words.keyword(choices if ios else (*choices, "curpriv"))
        if what == "version":
            words.end()
            return self._version()
        if what == "curpriv":
            words.end()
            user = self.mode is Mode.USER
            return [
                f"Username : {'enable_1' if user else 'enable_15'}",
                f"Current privilege level : {1 if user else 15}",
                f"Current Mode/s : {'P_UNPR' if user else 'P_PRIV'}",
            ]
        if self.mode is Mode.USER:
            raise _CliError("invalid", words.items[words.pos - 1][1])
        if what == "object-group":
            return self._show_object_group(words)
        if what == "startup-config":
            words.end()
            return self._running_config(self.state.startup)
        if not ios and not words.done():
            words.keyword(("object-group",))
            return self._asa_object_groups(words)
        words.end()
        return self._running_config(self.state.running)

    def _show_object_group(self, words: _Words) -> list[str]:
        if self.profile.platform == ASA:
            return self._asa_object_groups(words)
        groups = self.state.running
        if words.done():
            names: Iterable[str] = groups
        else:
            name, _ = words.word()
            if name.lower() == "name" and not self.profile.old_ios:
                name, _ = words.word()
            words.end()
            names = [name] if name in groups else []
        return [line for name in names for line in ios_show_object_group(name, groups[name])]

    def _asa_object_groups(self, words: _Words) -> list[str]:
        groups = self.state.running
        names: Iterable[str] = groups
        if not words.done():
            kind = words.keyword(("id", "network"))
            if kind == "id":
                name, _ = words.word()
                names = [name] if name in groups else []
            words.end()
        return [line for name in names for line in asa_object_group_config(name, groups[name])]

    def _version(self) -> list[str]:
        hours, minutes = divmod(int(self.uptime()) // 60, 60)
        uptime = f"{hours} hour{'s' if hours != 1 else ''}, {minutes} minute{'s' if minutes != 1 else ''}"
        name = self.profile.name
        if self.profile.platform == ASA:
            return [
                "",
                "Cisco Adaptive Security Appliance Software Version 9.8(4)20",
                "Firepower Extensible Operating System Version 2.2(2.97)",
                "Device Manager Version 7.9(2)152",
                "",
                "Compiled on Tue 09-Jul-19 11:34 PDT by builders",
                'System image file is "disk0:/asa984-20-lfbff-k8.SPA"',
                'Config file at boot was "startup-config"',
                "",
                f"{name} up {hours} hours {minutes} mins",
                "",
                "Hardware:   ASA5506, 4096 MB RAM, CPU Atom C2000 series 1250 MHz, 1 CPU (4 cores)",
            ]
        if self.profile.old_ios:
            return [
                "Cisco IOS Software, C880 Software (C880DATA-UNIVERSALK9-M), Version 15.0(1)M4, "
                "RELEASE SOFTWARE (fc1)",
                "Technical Support: http://www.cisco.com/techsupport",
                "Copyright (c) 1986-2010 by Cisco Systems, Inc.",
                "",
                f"{name} uptime is {uptime}",
                'System image file is "flash:c880data-universalk9-mz.150-1.M4.bin"',
                "",
                "Cisco 881 (MPC8300) processor (revision 1.0) with 236544K/25600K bytes of memory.",
                "Configuration register is 0x2102",
                "",
            ]
        return [
            "Cisco IOS XE Software, Version 16.09.04",
            "Cisco IOS Software [Fuji], ISR Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version 16.9.4, "
            "RELEASE SOFTWARE (fc2)",
            "Technical Support: http://www.cisco.com/techsupport",
            "Copyright (c) 1986-2019 by Cisco Systems, Inc.",
            "",
            "ROM: IOS-XE ROMMON",
            "",
            f"{name} uptime is {uptime}",
            'System image file is "bootflash:isr4300-universalk9.16.09.04.SPA.bin"',
            "",
            "cisco ISR4331/K9 (1RU) processor with 1795999K/6147K bytes of memory.",
            "Processor board ID FDO21520TGH",
            "Configuration register is 0x2102",
            "",
        ]

    def _running_config(self, groups: dict[str, dict[str, None]]) -> list[str]:
        if self.profile.platform == ASA:
            return self._asa_running_config(groups)
        body = ["!", "version 16.9", f"hostname {self.profile.name}", "!"]
        for name, members in groups.items():
            body += [f"object-group network {name}", *(f" {member}" for member in members), "!"]
        body.append("end")
        size = sum(len(line) + 1 for line in body)
        return ["Building configuration...", "", f"Current configuration : {size} bytes", *body, ""]

    def _asa_running_config(self, groups: dict[str, dict[str, None]] | None = None) -> list[str]:
        groups = self.state.running if groups is None else groups
        lines = [": Saved", ":", "ASA Version 9.8(4)20", "!", f"hostname {self.profile.name}", "names", "!"]
        for name, members in groups.items():
            lines += asa_object_group_config(name, members)
        return [*lines, ": end"]

    def _filter(self, lines: list[str], pipe: str, column: int) -> list[str]:
        """`| include|exclude|begin|section REGEX` applied to a command's output."""
        words = _Words(pipe)
        kinds = ("include", "exclude", "begin") + (
            ("section",) if self.profile.platform == IOS else ("grep",)
        )
        try:
            kind = words.keyword(kinds)
            pattern = re.compile(words.rest())
        except re.error as error:
            raise _CliError("invalid", column) from error
        except _CliError as error:
            error.column += column
            raise
        if kind in ("include", "grep"):
            return [line for line in lines if pattern.search(line)]
        if kind == "exclude":
            return [line for line in lines if not pattern.search(line)]
        if kind == "begin":
            start = next((i for i, line in enumerate(lines) if pattern.search(line)), len(lines))
            return lines[start:]
        kept, inside = [], False
        for line in lines:
            if not line.startswith(" "):
                inside = bool(pattern.search(line))
            if inside:
                kept.append(line)
        return kept

    # ----------------------------------------------------------- config modes
    def _config_keywords(self) -> tuple[str, ...]:
        common = ("object-group", "no", "end", "exit")
        if self.profile.platform == IOS:
            return (*common, "do")
        return (*common, "show", "write", "terminal", "copy", "configure")

    def _config_line(self, words: _Words) -> Reply:
        verb = words.keyword(self._config_keywords())
        return self._config_verb(verb, words)

    def _config_verb(self, verb: str, words: _Words) -> Reply:
        if verb == "end":
            words.end()
            self.mode, self.group = Mode.EXEC, ""
            return Reply()
        if verb == "exit":
            words.end()
            if self.mode is Mode.GROUP:
                self.mode, self.group = Mode.CONFIG, ""
            else:
                self.mode = Mode.EXEC
            return Reply()
        if verb == "do":
            return self._exec_verb(words.keyword(self._exec_keywords()), words)
        if verb in ("show", "write", "terminal", "copy", "configure"):
            return self._exec_verb(verb, words)
        negate = verb == "no"
        if negate:
            words.keyword(("object-group",))
        words.keyword(("network", "service", "protocol", "icmp-type", "user", "security"))
        name, column = words.word()
        words.end()
        if len(name) > NAME_MAX:
            raise _CliError("invalid", column + NAME_MAX)
        if negate:
            if name not in self.state.running:
                if self.profile.platform == IOS:
                    return Reply([f"% object-group {name} does not exist", ""])
                return Reply([f"ERROR: object-group {name} does not exist"])
            del self.state.running[name]
            return Reply(changed=True)
        created = name not in self.state.running
        self.state.running.setdefault(name, {})
        self.mode, self.group = Mode.GROUP, name
        return Reply(changed=created)

    def _group_line(self, words: _Words) -> Reply:
        ios = self.profile.platform == IOS
        own = ("host", "range", "description", "group-object", "any", "no") if ios else ()
        if not ios:
            own = ("network-object", "description", "group-object", "no")
        first = words.items[0][0]
        if ios and _IPV4.match(first):
            return self._member(self._ios_member(words, negate=False), negate=False)
        config_words = tuple(k for k in self._config_keywords() if k not in own)
        verb = words.keyword(own + config_words)
        if verb not in own:
            return self._config_verb(verb, words)
        negate = verb == "no"
        if negate:
            if ios and not words.done() and _IPV4.match(words.items[words.pos][0]):
                return self._member(self._ios_member(words, negate=True), negate=True)
            verb = words.keyword((*own[:-1], "object-group"))
            if verb == "object-group":
                words.pos -= 1
                return self._config_verb("no", words)
        words.pos -= 1
        member = self._ios_member(words, negate) if ios else self._asa_member(words, negate)
        return self._member(member, negate)

    def _ios_member(self, words: _Words, negate: bool) -> str:
        if _IPV4.match(words.items[words.pos][0]):
            return self._network(words, prefix="")
        verb = words.keyword(("host", "range", "description", "group-object", "any"))
        if verb == "any":
            words.end()
            return "any"
        if verb == "host":
            text, column = words.word()
            words.end()
            return f"host {format_ipv4(parse_ipv4(text, column))}"
        if verb == "range":
            first, first_column = words.word()
            last, last_column = words.word()
            words.end()
            low, high = parse_ipv4(first, first_column), parse_ipv4(last, last_column)
            if high < low:
                raise _CliError("invalid", last_column)
            return f"range {format_ipv4(low)} {format_ipv4(high)}"
        return self._named_member(verb, words, negate)

    def _asa_member(self, words: _Words, negate: bool) -> str:
        verb = words.keyword(("network-object", "description", "group-object"))
        if verb != "network-object":
            return self._named_member(verb, words, negate)
        if _IPV4.match(words.items[words.pos][0] if not words.done() else ""):
            return self._network(words, prefix="network-object ")
        kind = words.keyword(("host", "object"))
        text, column = words.word()
        words.end()
        if kind == "object":
            return f"network-object object {text}"
        return f"network-object host {format_ipv4(parse_ipv4(text, column))}"

    def _named_member(self, verb: str, words: _Words, negate: bool) -> str:
        if verb == "description":
            return "description" if negate and words.done() else f"description {words.rest()}"
        name, _ = words.word()
        words.end()
        return f"group-object {name}"

    def _network(self, words: _Words, prefix: str) -> str:
        address_text, address_column = words.word()
        mask_text, mask_column = words.word()
        words.end()
        address, mask = parse_ipv4(address_text, address_column), parse_ipv4(mask_text, mask_column)
        if not _contiguous(mask):
            raise _CliError("invalid", mask_column)
        if address & ~mask & 0xFFFFFFFF:
            if self.profile.platform == ASA:
                raise _CliError("message", detail="ERROR: IP address,mask doesn't pair")
            address &= mask
        return f"{prefix}{format_ipv4(address)} {format_ipv4(mask)}"

    def _member(self, member: str, negate: bool) -> Reply:
        members = self.state.running[self.group]
        ios = self.profile.platform == IOS
        if member.startswith("description"):
            described = [key for key in members if key.startswith("description")]
            for key in described:
                del members[key]
            if not negate:
                rest = dict(members)
                members.clear()
                members[member] = None
                members.update(rest)
            return Reply(changed=bool(described) or not negate)
        if negate:
            if member in members:
                del members[member]
                return Reply(changed=True)
            if ios:
                return Reply()
            return Reply(
                [
                    f"WARNING: Deleting obj ({_object_text(member)}) from grp ({self.group}) failed; "
                    "object does not exist in this group"
                ]
            )
        if member in members:
            if ios:
                return Reply()
            return Reply(
                [
                    f"WARNING: Adding obj ({_object_text(member)}) to grp ({self.group}) failed; "
                    "object already exists"
                ]
            )
        limit = self.profile.max_members
        if limit is not None and _entries(members) >= limit:
            if ios:
                return Reply([f"% Object-group {self.group} has reached the maximum of {limit} entries", ""])
            return Reply([f"ERROR: Object-group {self.group} has reached the maximum of {limit} objects"])
        members[member] = None
        return Reply(changed=True)


def _entries(members: dict[str, None]) -> int:
    """The group's members but its description, which ``_member`` always keeps first: O(1) per add."""
    return len(members) - next(iter(members), "").startswith("description")


def _object_text(member: str) -> str:
    return member.removeprefix("network-object ").removeprefix("host ").removeprefix("object ")


def ios_show_object_group(name: str, members: Iterable[str]) -> list[str]:
    """`show object-group name NAME` on IOS: members indented, description capitalised."""
    lines = [f"Network object group {name}"]
    for member in members:
        if member.startswith("description "):
            member = "Description " + member.removeprefix("description ")
        lines.append(" " + member)
    return lines


def asa_object_group_config(name: str, members: Iterable[str]) -> list[str]:
    """`show running-config object-group id NAME` on the ASA: the configuration form."""
    return [f"object-group network {name}", *(f" {member}" for member in members)]
