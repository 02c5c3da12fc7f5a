"""The lab device's command interpreter: modes and commands as IOS and the ASA take them.

What a line means is in words.py, what the device prints in show.py, its state in model.py.
Pure (no I/O, no clock of its own): the SSH adapter in device.py feeds it one line at a time and writes
what it answers, so every behaviour netmiko relies on is unit-tested without a socket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from ts_isr.lab.groups import change_member
from ts_isr.lab.model import ASA, IOS, DeviceState, Mode, Profile, Reply
from ts_isr.lab.show import (
    asa_object_group_config,
    asa_running_config,
    filter_output,
    ios_show_object_group,
    running_config,
    version,
)
from ts_isr.lab.words import IPV4, CliError, Words, asa_member, ios_member, looks_v6

NAME_MAX = 64
IOS_CONFIG_PROMPT_NAME = 20


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
            Mode.GROUP: self._group_prompt(),
        }[self.mode]
        name = self.profile.name
        if self.profile.platform == IOS and self.in_config():
            name = name[:IOS_CONFIG_PROMPT_NAME]  # IOS abbreviates long hostnames in configuration modes
        return name + suffix + (" " if self.profile.platform == ASA else "")

    def _group_prompt(self) -> str:
        if self.profile.platform == ASA:
            return "(config-network-object-group)#"
        if self.state.group_type(self.group) == "v6-network":
            return "(config-ipv6-nw-group)#"
        return "(config-network-group)#"

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
        words = Words(command)
        if words.done():
            return Reply()
        try:
            reply = self._dispatch(words)
            if pipe.strip():
                column = len(prompt) + len(command) + 1
                reply.lines = filter_output(self.profile.platform, reply.lines, pipe, column)
            return reply
        except CliError as error:
            return Reply(self._error(error, prompt, line))

    def _takes_output_modifier(self, line: str) -> bool:
        """`| include ...` follows show commands; in configuration a `|` is text (a description)."""
        first = line.split()[0].lower() if line.split() else ""
        return "|" in line and (not self.in_config() or first == "do" or "show".startswith(first))

    def _dispatch(self, words: Words) -> Reply:
        if self.mode is Mode.GROUP:
            return self._group_line(words)
        if self.mode is Mode.CONFIG:
            return self._config_line(words)
        return self._exec_line(words)

    def _error(self, error: CliError, prompt: str, line: str) -> list[str]:
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

    def _exec_line(self, words: Words) -> Reply:
        try:
            verb = words.keyword(self._exec_keywords())
        except CliError as error:
            if error.kind == "invalid" and self.profile.platform == IOS and len(words.items) == 1:
                raise CliError("unknown") from error
            raise
        return self._exec_verb(verb, words)

    def _exec_verb(self, verb: str, words: Words) -> Reply:
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
            raise CliError("message", detail="ERROR: Local authentication is not configured")
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

    def _terminal(self, words: Words) -> Reply:
        options = ("length", "width", "monitor") if self.profile.platform == IOS else ("pager", "width")
        option = words.keyword(options)
        if option != "monitor":
            value, column = words.word()
            limits = {"length": 512, "width": 512, "pager": 2147483647}
            if not value.isdigit() or int(value) > limits[option]:
                raise CliError("invalid", column)
        words.end()
        return Reply()

    def _write_memory(self) -> Reply:
        self.state.save()
        if self.profile.platform == IOS:
            return Reply(["Building configuration...", "[OK]"], changed=True)
        text = "\n".join(asa_running_config(self.profile, self.state.running))
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
    def _show(self, words: Words) -> list[str]:
        ios = self.profile.platform == IOS
        choices = ("version", "object-group", "running-config", "startup-config")
        what = words.keyword(choices if ios else (*choices, "curpriv"))
        if what == "version":
            words.end()
            return version(self.profile, self.uptime())
        if what == "curpriv":
            words.end()
            user = self.mode is Mode.USER
            return [
                f"Username : {'enable_1' if user else 'enable_15'}",
                f"Current privilege level : {1 if user else 15}",
                f"Current Mode/s : {'P_UNPR' if user else 'P_PRIV'}",
            ]
        if self.mode is Mode.USER:
            raise CliError("invalid", words.items[words.pos - 1][1])
        if what == "object-group":
            return self._show_object_group(words)
        if what == "startup-config":
            words.end()
            return running_config(self.profile, self.state.startup, self.state.types)
        if not ios and not words.done():
            words.keyword(("object-group",))
            return self._asa_object_groups(words)
        words.end()
        return running_config(self.profile, self.state.running, self.state.types)

    def _show_object_group(self, words: Words) -> list[str]:
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
        return [
            line
            for name in names
            for line in ios_show_object_group(name, groups[name], self.state.group_type(name))
        ]

    def _asa_object_groups(self, words: Words) -> list[str]:
        groups = self.state.running
        names: Iterable[str] = groups
        if not words.done():
            kind = words.keyword(("id", "network"))
            if kind == "id":
                name, _ = words.word()
                names = [name] if name in groups else []
            words.end()
        return [line for name in names for line in asa_object_group_config(name, groups[name])]

    # ----------------------------------------------------------- config modes
    def _config_keywords(self) -> tuple[str, ...]:
        common = ("object-group", "no", "end", "exit")
        if self.profile.platform == IOS:
            return (*common, "do")
        return (*common, "show", "write", "terminal", "copy", "configure")

    def _config_line(self, words: Words) -> Reply:
        verb = words.keyword(self._config_keywords())
        return self._config_verb(verb, words)

    def _config_verb(self, verb: str, words: Words) -> Reply:
        if verb == "end":
            words.end()
            self._leave_group()
            self.mode = Mode.EXEC
            return Reply()
        if verb == "exit":
            words.end()
            if self.mode is Mode.GROUP:
                self._leave_group()
                self.mode = Mode.CONFIG
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
        types = ("network", "service", "protocol", "icmp-type", "user", "security")
        kind = words.keyword((*types, "v6-network") if self.profile.platform == IOS else types)
        name, column = words.word()
        words.end()
        if len(name) > NAME_MAX:
            raise CliError("invalid", column + NAME_MAX)
        if negate:
            if name not in self.state.running:
                if self.profile.platform == IOS:
                    return Reply([f"% object-group {name} does not exist", ""])
                return Reply([f"ERROR: object-group {name} does not exist"])
            del self.state.running[name]
            self.state.types.pop(name, None)
            return Reply(changed=True)
        created = name not in self.state.running
        if not created and self.state.group_type(name) != kind:
            return Reply([f"% {name} exists as a different object-group type", ""])
        self.state.running.setdefault(name, {})
        if kind == "v6-network":
            self.state.types[name] = kind
        self.mode, self.group = Mode.GROUP, name
        return Reply(changed=created)

    def _leave_group(self) -> None:
        """IOS deletes an empty IPv6 object-group by itself (the configuration guide's words)."""
        name, self.group = self.group, ""
        if name and self.state.group_type(name) == "v6-network" and not self.state.running.get(name):
            self.state.running.pop(name, None)
            self.state.types.pop(name, None)

    def _group_line(self, words: Words) -> Reply:
        ios = self.profile.platform == IOS
        v6 = self.state.group_type(self.group) == "v6-network"
        own = ("host", "range", "description", "group-object", "any", "no") if ios else ()
        if v6:
            own = ("host", "description", "group-object", "any", "no")
        if not ios:
            own = ("network-object", "description", "group-object", "no")
        first = words.items[0][0]
        if v6:
            return self._v6_group_line(words, own)
        if ios and IPV4.match(first):
            return self._member(ios_member(words, negate=False), negate=False)
        config_words = tuple(k for k in self._config_keywords() if k not in own)
        verb = words.keyword(own + config_words)
        if verb not in own:
            return self._config_verb(verb, words)
        negate = verb == "no"
        if negate:
            if ios and not words.done() and IPV4.match(words.items[words.pos][0]):
                return self._member(ios_member(words, negate=True), negate=True)
            verb = words.keyword((*own[:-1], "object-group"))
            if verb == "object-group":
                words.pos -= 1
                return self._config_verb("no", words)
        words.pos -= 1
        member = ios_member(words, negate) if ios else asa_member(words, negate, self.profile.mixed_groups)
        return self._member(member, negate)

    def _v6_group_line(self, words: Words, own: tuple[str, ...]) -> Reply:
        """A line in an IOS ``object-group v6-network``: IPv6 members only (an IPv4 address is invalid)."""
        negate = False
        if not looks_v6(words.items[0][0]):
            verb = words.keyword(own + tuple(k for k in self._config_keywords() if k not in own))
            if verb not in own:
                return self._config_verb(verb, words)
            negate = verb == "no"
            if negate and not words.done() and words.items[words.pos][0].lower().startswith("object-g"):
                return self._config_verb("no", words)
            if not negate:
                words.pos -= 1
        return self._member(ios_member(words, negate, v6=True), negate)

    def _member(self, member: str, negate: bool) -> Reply:
        return change_member(self.state.running[self.group], self.group, self.profile, member, negate)
