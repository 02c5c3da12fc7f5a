"""Cisco IOS and ASA object-groups over SSH: strict login, canonical members, and the streaming push.

Speed without losing a line: configuration lines are streamed without waiting
for each one, keeping at most a window of bytes the device has not echoed yet
(so its input buffer never overflows).  Each echo is matched to the line sent,
``%`` errors are read per line from the echoed output, and lines the device
dropped (a later line echoed first, or silence answered only by an empty probe
line) are sent again.  The window grows while the device keeps up and shrinks
for good when it drops input.  netmiko does the login, enable and prompts; the
stream works on its channel.
"""

from __future__ import annotations

import re
import select
import socket
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ts_isr.errors import DeviceError, TsError
from ts_isr.log import escape, log
from ts_isr.ranges import Cidr, int_to_text, range_to_cidrs
from ts_isr.targets.base import Members, Plan, Target

_ERROR_LINE = re.compile(r"^\s*(%|ERROR:)", re.IGNORECASE)
# Answers that mean the line's effect is already in place (ASA): not a failure.
_ALREADY_DONE = re.compile(r"already exists|does not exist in this group|not a member", re.IGNORECASE)
_ABSENT = re.compile(r"not found|does not exist", re.IGNORECASE)
_INVALID_INPUT = re.compile(r"%\s*Invalid input", re.IGNORECASE)
_CONFIG_PROMPT = re.compile(r"[^\s#>()]+\(config[\w-]*\)#")
_CONFIG_PROMPT_END = re.compile(r"\(config[\w-]*\)#\s*$")


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)


def dotted_quad(text: str) -> int | None:
    """``a.b.c.d`` exactly as a Cisco device prints it (no prefix, no length, no leading zero), or None."""
    if not _DOTTED_QUAD.fullmatch(text):
        return None
    return int.from_bytes(bytes(int(octet) for octet in text.split(".")), "big")


def mask_text(prefixlen: int) -> str:
    return int_to_text(4, (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF)


def mask_prefixlen(text: str) -> int | None:
    """The prefix length of a dotted netmask; None for a non-contiguous or malformed one."""
    mask = dotted_quad(text)
    if mask is None:
        return None
    inverted = ~mask & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


@dataclass(frozen=True)
class Member:
    """One address member line of a group, parsed: ``host X``, ``X MASK`` or ``range A B``.

    A line is a member only when :meth:`text` rebuilds it exactly, so a
    removal sent back to the device is made of parsed values, never of the
    device's own text.  The tool writes ``host X`` for a single address and
    ``X MASK`` for a wider network; any other line (a ``range``, an
    ``X 255.255.255.255``) is a user's.
    """

    form: str  # "host", "mask" or "range"
    first: int
    last: int

    @classmethod
    def of(cls, cidr: Cidr) -> Member:
        return cls("host" if cidr.prefixlen == 32 else "mask", cidr.network, cidr.last)

    @property
    def cidrs(self) -> tuple[Cidr, ...]:
        return tuple(range_to_cidrs(4, self.first, self.last))

    @property
    def in_tools_form(self) -> bool:
        """Written the way the tool writes members (see :meth:`of`); only such a line can be its own."""
        return self.form == "host" or (self.form == "mask" and self.first != self.last)

    def text(self) -> str:
        if self.form == "host":
            return f"host {int_to_text(4, self.first)}"
        if self.form == "range":
            return f"range {int_to_text(4, self.first)} {int_to_text(4, self.last)}"
        prefixlen = 33 - (self.last - self.first + 1).bit_length()
        return f"{int_to_text(4, self.first)} {mask_text(prefixlen)}"


def parse_member(text: str) -> Member | None:
    """``host X``, ``X MASK`` or ``range A B`` in the device's exact form; None for anything else."""
    words = text.split(" ")
    if len(words) == 2 and words[0] == "host":
        address = dotted_quad(words[1])
        return None if address is None else Member("host", address, address)
    if len(words) == 2:
        address, prefixlen = dotted_quad(words[0]), mask_prefixlen(words[1])
        if address is None or prefixlen is None:
            return None
        hostmask = (1 << (32 - prefixlen)) - 1
        return None if address & hostmask else Member("mask", address, address | hostmask)
    if len(words) == 3 and words[0] == "range":
        first, last = dotted_quad(words[1]), dotted_quad(words[2])
        if first is None or last is None or first > last:
            return None
        return Member("range", first, last)
    return None


@dataclass(frozen=True)
class GroupContents:
    """One object-group as read: each IPv4 network it holds, with every member line that covers it.

    ``others`` are the lines this tool never manages: description,
    group-object, any, objects, IPv6 members, anything not in exact form.
    """

    members: Mapping[Cidr, tuple[Member, ...]]
    others: tuple[str, ...]

    @property
    def cidrs(self) -> frozenset[Cidr]:
        return frozenset(self.members)

    @property
    def held_by_user(self) -> frozenset[Cidr]:
        """The networks a line in a form the tool never writes covers (a ``range``, an
        ``X 255.255.255.255``): a user's line, so the tool removes them only in an exclusive group."""
        return frozenset(
            cidr for cidr, members in self.members.items() if not all(m.in_tools_form for m in members)
        )


ABSENT = GroupContents(members={}, others=())


def group_body(text: str, header: str, next_group: re.Pattern[str]) -> list[str] | None:
    """The stripped lines after ``header`` up to the next group's header; None without ``header``.

    ``next_group`` is matched on the line as printed: members are indented,
    so a description that reads like a header never ends the group.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    lowered = [line.strip().lower() for line in lines]
    if header.lower() not in lowered:
        return None
    body = []
    for line in lines[lowered.index(header.lower()) + 1 :]:
        if next_group.match(line):
            break
        body.append(line.strip())
    return body


def parse_members(lines: Iterable[str], prefix: str) -> GroupContents:
    """Member lines (already stripped) into networks; what is not an address member is the user's."""
    members: dict[Cidr, list[Member]] = {}
    others: list[str] = []
    for line in lines:
        member = parse_member(line[len(prefix) :]) if line.startswith(prefix) else None
        if member is None:
            others.append(line)
            continue
        for cidr in member.cidrs:
            members.setdefault(cidr, []).append(member)
    return GroupContents(members={c: tuple(m) for c, m in members.items()}, others=tuple(others))


def removal_lines(
    contents: GroupContents, remove: Iterable[Cidr], keep: frozenset[Cidr], *, users_lines: bool
) -> tuple[list[Cidr], list[tuple[Member, frozenset[Cidr]]]]:
    """The members whose removal takes ``remove`` out, each with the networks it takes.

    Every line covering a network goes, so none is left behind to hold it;
    a line in a form the tool never writes only with ``users_lines``
    (exclusive groups).  A ``range`` covers several networks, so those in
    ``keep`` that no other line still holds come back first as single
    members (returned as additions, sent before).
    """
    taken: dict[Member, None] = {}
    for cidr in remove:
        for member in contents.members.get(cidr, ()):
            if users_lines or member.in_tools_form:
                taken[member] = None
    still_held = {c for c, members in contents.members.items() if any(m not in taken for m in members)}
    gone = {cidr for member in taken for cidr in member.cidrs}
    readd = sorted((gone & keep) - still_held)
    return readd, [(member, frozenset(member.cidrs)) for member in taken]


def never_empty(
    present: frozenset[Cidr], removals: Iterable[tuple[str, frozenset[Cidr]]], other_members: bool
) -> tuple[list[str], list[str]]:
    """The removals to send, and those held back so that the group keeps a member.

    ``present`` is what the group holds once the additions are in; a group
    used by an ACL may not be emptied, and an empty block group blocks nothing.
    """
    if other_members:
        return [line for line, _ in removals], []
    left = set(present)
    send, held = [], []
    for line, cidrs in removals:
        if left - cidrs:
            left -= cidrs
            send.append(line)
        else:
            held.append(line)
    return send, held


class Dialect(ABC):
    """What differs between IOS and ASA: member prefix, how a group is read, session settings."""

    name: str
    device_type: str  # netmiko's
    member_prefix: str
    session_commands: tuple[str, ...] = ()  # terminal settings netmiko does not make in privileged EXEC

    @abstractmethod
    def read_commands(self, group: str) -> tuple[str, ...]:
        """Commands that show one group, the preferred first (the next is tried on ``% Invalid input``)."""

    @abstractmethod
    def parse_group(self, group: str, text: str) -> GroupContents:
        """The group in the output of a read command."""

    def line(self, member: Member) -> str:
        """The configuration line of ``member`` inside the group."""
        return self.member_prefix + member.text()

    def member_line(self, cidr: Cidr) -> str:
        """The configuration line that adds ``cidr`` inside the group."""
        return self.line(Member.of(cidr))


@dataclass(frozen=True)
class LineError:
    line: str
    message: str


_PROBE = ""  # an empty line: its prompt proves that everything sent before it was read

# Queueing the device adds on top of the fastest echo seen before the window stops growing: enough
# to ride out a busy client, far below any input buffer on a device that works a line a millisecond.
_QUEUE_ALLOWANCE = 0.05
_GATHER = 0.005


@dataclass
class Stream:
    """The flow-controlled pipeline of configuration lines; pure, fed with what the device prints.

    ``pending`` holds lines not sent yet (or to send again), ``in_flight``
    what was sent and not yet echoed, in order, with the time it was sent.
    Output is split into records at each configuration prompt: the record's
    first line is the echo of one line, the rest is the device's answer.

    The window (unechoed bytes) grows by each echoed line, like TCP's slow
    start, while echoes come back about as fast as the quickest one seen: once
    lines queue up in the device, a larger window adds no speed, only risk.
    A drop halves it and caps it below where the drop happened.
    """

    pending: deque[str]
    window: int = 1024
    cap: int = 16384
    min_window: int = 128
    in_flight: deque[tuple[str, float]] = field(default_factory=deque)
    in_flight_bytes: int = 0
    fastest: float = float("inf")
    done: int = 0
    resent: int = 0
    drops: int = 0
    garbled: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    _buffer: str = ""

    @classmethod
    def of(cls, lines: Sequence[str], window: int = 1024) -> Stream:
        return cls(pending=deque(lines), window=window)

    @property
    def finished(self) -> bool:
        return not self.pending and not self.in_flight

    def take(self, now: float) -> list[str]:
        """The lines to write now: as many as fit the window (at least one when nothing is in flight)."""
        batch = []
        while self.pending:
            size = len(self.pending[0]) + 1
            if self.in_flight and self.in_flight_bytes + size > self.window:
                break
            line = self.pending.popleft()
            self.in_flight.append((line, now))
            self.in_flight_bytes += size
            batch.append(line)
        return batch

    def probe(self, now: float) -> None:
        self.in_flight.append((_PROBE, now))
        self.in_flight_bytes += 1

    def feed(self, text: str, now: float) -> None:
        self._buffer += text
        while True:
            match = _CONFIG_PROMPT.search(self._buffer)
            if match is None:
                return
            record, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            self._record(record, now)

    def _position(self, echo: str) -> int | None:
        for position, (line, _) in enumerate(self.in_flight):
            if line == echo:
                return position
        return None

    def _record(self, record: str, now: float) -> None:
        lines = record.replace("\r", "").split("\n")
        echo = lines[0].strip()
        answer = [line.strip() for line in lines[1:] if line.strip()]
        position = self._position(echo)
        if position is None:
            if echo:
                # Part of a line was lost: whatever the device made of it, the read-back finds it.
                self.garbled.append(echo)
                self._shrink()
            return
        self._lost_until(position)
        line, sent = self.in_flight.popleft()
        self.in_flight_bytes -= len(line) + 1
        if line == _PROBE:
            return
        self.done += 1
        latency = now - sent
        self.fastest = min(self.fastest, latency)
        if latency <= 2 * self.fastest + _QUEUE_ALLOWANCE and self.window < self.cap:
            self.window = min(self.cap, self.window + len(line) + 1)
        problems = [text for text in answer if _ERROR_LINE.match(text) and not _ALREADY_DONE.search(text)]
        if problems:
            self.errors.append(LineError(line, problems[0]))

    def _lost_until(self, position: int) -> None:
        """Everything in flight before ``position`` was dropped by the device: send it again."""
        if position == 0:
            return
        lost = [self.in_flight.popleft()[0] for _ in range(position)]
        self.in_flight_bytes -= sum(len(line) + 1 for line in lost)
        again = [line for line in lost if line != _PROBE]
        self.pending.extendleft(reversed(again))
        self.resent += len(again)
        self._shrink()

    def _shrink(self) -> None:
        """The device dropped input: never again offer it as much."""
        self.drops += 1
        self.cap = max(self.min_window, self.window * 3 // 4)
        self.window = max(self.min_window, self.window // 2)


@dataclass(frozen=True)
class Device:
    """Where and how to log in; secrets stay in this object and never reach a command line."""

    host: str
    port: int
    username: str
    password: str | None = field(repr=False)
    secret: str | None = field(repr=False)
    known_hosts: Path
    timeout: float


def _connect_error(exc: Exception, device: Device) -> DeviceError:
    where = f"{device.host}:{device.port}"
    text = str(exc)
    if "does not match" in text:
        return DeviceError(
            f"host key changed for {where}: the device is not the one trusted in {device.known_hosts}; "
            "if it was replaced or re-keyed, run setup at a terminal: it shows both fingerprints and asks"
        )
    if "not found in known_hosts" in text:
        return DeviceError(
            f"host key of {where} is unknown (not in {device.known_hosts}); "
            "run setup, or upload_rules --trust-host-key once to trust it"
        )
    if "TCP connection to device failed" in text or "Connection refused" in text:
        return DeviceError(
            f"cannot reach {where} (unreachable); check the device address, ssh_port and any firewall"
        )
    detail = escape(text.strip().splitlines()[-1]) if text.strip() else type(exc).__name__
    return DeviceError(
        f"SSH to {where} timed out or failed ({detail}); check that the device is up and answers SSH"
    )


def login_error(text: str, device: Device, dialect: Dialect, *, timed_out: bool) -> DeviceError:
    """netmiko's ValueError or ReadTimeout during login, named by what failed.

    The ASA driver enables during login, so there it is mostly the enable
    password; on IOS it comes from finding the prompt.
    """
    text = text.strip()
    if "enable mode" in text or (dialect.name == "ASA" and timed_out):
        return DeviceError(
            f"enable refused on {device.host} (no privileged prompt after enable); "
            "check enable_pw in the config"
        )
    detail = escape(text.splitlines()[-1]) if text else "a read timed out"
    return DeviceError(
        f"{device.host}:{device.port} logged in but showed no prompt netmiko recognises ({detail}); "
        f"check personality={dialect.name.lower()} and that the user's login ends at a '>' or '#' prompt"
    )


class CiscoTarget(Target):
    """IOS or ASA object-groups, one per list kind, over one SSH session."""

    families = frozenset({4})

    def __init__(
        self, dialect: Dialect, device: Device, groups: Mapping[str, str], *, exclusive: bool = False
    ) -> None:
        self.dialect = dialect
        self.device = device
        self.groups = dict(groups)
        self.exclusive = exclusive  # exclusive_groups=yes: the tool may take out a user's range too
        self.contents: dict[str, GroupContents] = {}
        self.conn = None
        self.pushed = 0
        self.push_seconds = 0.0
        self.resent = 0
        self.broken = False  # the session died or hung: log off without another command
        self.in_config = False  # the last prompt was a configuration prompt: `end` before `disable`

    # -- session ---------------------------------------------------------------------------------

    def connect(self) -> None:
        from netmiko import ConnectHandler
        from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout

        device = self.device
        log.info("Logging into remote device.")
        try:
            self.conn = ConnectHandler(
                device_type=self.dialect.device_type,
                host=device.host,
                port=device.port,
                username=device.username,
                password=device.password or "",
                secret=device.secret or "",
                ssh_strict=True,
                system_host_keys=False,
                alt_host_keys=True,
                alt_key_file=str(device.known_hosts),
                use_keys=False,
                allow_agent=False,
                conn_timeout=device.timeout,
                auth_timeout=device.timeout,
                banner_timeout=device.timeout,
                timeout=device.timeout,
                read_timeout_override=device.timeout,
                # netmiko would set the ASA's terminal width in configuration mode; an unchanged
                # policy must never enter it, so the dialect sets it from privileged EXEC below.
                allow_auto_change=False,
            )
        except NetmikoAuthenticationException:
            raise DeviceError(
                f"authentication failed for user {device.username} on {device.host}:{device.port}; "
                "check username and password in the config (or run setup again)"
            ) from None
        except NetmikoTimeoutException as exc:
            raise _connect_error(exc, device) from None
        except (OSError, EOFError) as exc:
            raise _connect_error(exc, device) from None
        except UnicodeDecodeError:
            raise DeviceError(
                f"cannot read {device.known_hosts}: it is not UTF-8 text; remove the odd line or run setup"
            ) from None
        except (ValueError, ReadTimeout) as exc:
            raise login_error(
                str(exc), device, self.dialect, timed_out=isinstance(exc, ReadTimeout)
            ) from None
        # Small lines must leave at once: Nagle's algorithm would hold them for the device's delayed ACK.
        self.conn.remote_conn.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("Entering Privileged Mode.")
        try:
            if not self.conn.check_enable_mode():
                self.conn.enable()
        except (ValueError, ReadTimeout, OSError, EOFError) as exc:
            raise DeviceError(
                f"enable refused on {device.host} ({escape(str(exc))}); check enable_pw in the config"
            ) from None
        if not self.conn.check_enable_mode():
            raise DeviceError(f"enable refused on {device.host}; check enable_pw in the config")
        for command in self.dialect.session_commands:
            self._command(command, self._priv_prompt(), "preparing the session")

    def close(self) -> None:
        if self.conn is None:
            return
        log.info("Leaving privileged mode.")
        try:
            if self.broken:
                raise DeviceError("the session is broken")
            if self.in_config:  # a failure left it there; `disable` would be refused and waited for
                self._command("end", self._priv_prompt(), "leaving configuration mode")
            user_prompt = re.compile(re.escape(self.conn.base_prompt) + r"[^\n#>]*>\s*$")
            self._command("disable", user_prompt, "leaving privileged mode")
        except (TsError, OSError, EOFError) as exc:  # the session may be gone; logging off still matters
            log.debug(f"leaving privileged mode: {escape(str(exc))}")
        log.info("Logging off.")
        conn, self.conn = self.conn, None
        try:
            conn.disconnect()
        except Exception as exc:
            log.debug(f"logging off: {escape(str(exc))}")

    # -- channel I/O ---------------------------------------------------------------------------

    def _channel(self):
        if self.conn is None:
            raise DeviceError("not connected")
        return self.conn.remote_conn

    def _lost(self, what: str) -> DeviceError:
        self.broken = True
        return DeviceError(
            f"connection to {self.device.host} lost {what}; the next run repairs the group "
            "(check the device's logs and the network)"
        )

    def _write(self, text: str) -> None:
        try:
            self.conn.write_channel(text)
        except (OSError, EOFError) as exc:
            raise self._lost(f"while sending ({exc})") from None

    def _read_some(self, wait: float) -> str:
        channel = self._channel()
        if channel.closed or channel.exit_status_ready():
            raise EOFError
        if not channel.recv_ready():
            select.select([channel], [], [], wait)
        try:
            return self.conn.read_channel()
        except (OSError, EOFError):
            raise EOFError from None

    def _read_until(self, pattern: re.Pattern[str], what: str) -> str:
        """Read until ``pattern`` ends the output; the timeout counts silence, not total time,
        so a 30,000-member group that keeps printing is never cut off."""
        text = ""
        last = time.monotonic()
        while True:
            try:
                chunk = self._read_some(0.2)
            except EOFError:
                raise self._lost(f"while {what}") from None
            now = time.monotonic()
            if chunk:
                text += chunk
                last = now
                if pattern.search(text[-300:]):
                    return text
            else:
                self._check_silence(now - last, f"while {what}", "check the device, or raise ssh_timeout")

    def _check_silence(self, silent: float, when: str, advice: str) -> None:
        """A device silent for longer than ssh_timeout is hung: the session is given up."""
        if silent > self.device.timeout:
            self.broken = True
            raise DeviceError(
                f"{self.device.host} timed out: no answer for {self.device.timeout:.0f} s {when}; {advice}"
            )

    def _priv_prompt(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.conn.base_prompt) + r"[^\n#>]*#\s*$")

    def _command(self, command: str, until: re.Pattern[str], what: str) -> str:
        """One command and its whole answer (without the echo), logged."""
        log.debug(f"send: {command}")
        self._write(command + "\n")
        output = self._read_until(until, what)
        self.in_config = _CONFIG_PROMPT_END.search(output) is not None
        body = output.replace("\r", "").split("\n", 1)[1] if "\n" in output else ""
        body = until.sub("", body).rstrip()
        log.debug(f"reply: {escape(body, 2000)}")
        return body

    # -- Target ----------------------------------------------------------------------------------

    def read(self) -> Members:
        return {kind: self.read_kind(kind) for kind in self.groups}

    def read_kind(self, kind: str) -> frozenset[Cidr]:
        group = self.groups[kind]
        verb = "Verifying" if kind in self.contents else "Retrieving"
        log.info(f'{verb} current members of "{group}" network group.')
        self.contents[kind] = self._read_group(group)
        return self.contents[kind].cidrs

    def held_by_user(self, kind: str) -> frozenset[Cidr]:
        """Networks a line the tool never writes holds (a ``range``): the user's to remove."""
        return frozenset() if self.exclusive else self.contents.get(kind, ABSENT).held_by_user

    def _read_group(self, group: str) -> GroupContents:
        prompt = self._priv_prompt()
        for command in self.dialect.read_commands(group):
            body = self._command(command, prompt, f'reading group "{group}"')
            if _INVALID_INPUT.search(body):
                continue
            errors = [line for line in body.splitlines() if _ERROR_LINE.match(line)]
            if errors and not all(_ABSENT.search(line) for line in errors):
                raise DeviceError(
                    f'{self.device.host} refused to show group "{group}": {escape(errors[0])}; '
                    "check the user's privilege level"
                )
            return self.dialect.parse_group(group, body)
        raise DeviceError(
            f'{self.device.host} knows no command to show object-group "{group}" '
            f"({' / '.join(self.dialect.read_commands(group))}); "
            f"is personality={self.dialect.name.lower()} right?"
        )

    def apply(self, plan: Plan) -> None:
        """One configuration session: every group's additions, then (once they are in) its removals."""
        work = []
        for change in plan.changes:
            group = self.groups.get(change.kind)
            if group is None or not (change.add or change.remove):
                continue
            contents = self.contents.get(change.kind, ABSENT)
            readd, taken = removal_lines(
                contents, change.remove, contents.cidrs - frozenset(change.remove), users_lines=self.exclusive
            )
            adds = {self.dialect.member_line(cidr): cidr for cidr in (*change.add, *readd)}
            removals = [(f"no {self.dialect.line(member)}", cidrs) for member, cidrs in taken]
            work.append((change.kind, group, contents, adds, removals))
        if not work:
            return
        self._command("configure terminal", _CONFIG_PROMPT_END, "entering configuration mode")
        refused: set[str] = set()
        for kind, group, _, adds, _ in work:
            if adds:
                log.info(f"Adding new {kind} addresses.")
                refused |= {error.line for error in self._push_in_group(group, list(adds)).errors}
        for kind, group, contents, adds, removals in work:
            present = contents.cidrs | {cidr for line, cidr in adds.items() if line not in refused}
            others = any(not line.lower().startswith("description") for line in contents.others)
            send, held = never_empty(present, removals, others)
            if held:
                log.warning(
                    f'kept {len(held)} old member(s) of "{group}" so that it is never empty: '
                    "the device refused the new ones (see above)"
                )
            if send:
                log.info(f"Removing old {kind} addresses...  Please wait.  It can take some time...")
                self._push_in_group(group, send)
        self._command("end", self._priv_prompt(), "leaving configuration mode")

    def _push_in_group(self, group: str, lines: list[str]) -> Stream:
        """Stream member lines inside one group.

        Entering and leaving the group are single commands, never streamed: a
        dropped mode change must not land one list's members in another group.
        """
        body = self._command(f"object-group network {group}", _CONFIG_PROMPT_END, f'entering group "{group}"')
        errors = [line for line in body.splitlines() if _ERROR_LINE.match(line)]
        if errors:
            raise DeviceError(
                f'{self.device.host} refused "object-group network {group}": {escape(errors[0])}; '
                "is that name used by another kind of object-group? Choose another in the config"
            )
        stream = self._push(group, lines)
        self._command("exit", _CONFIG_PROMPT_END, f'leaving group "{group}"')
        return stream

    def _push(self, group: str, lines: list[str]) -> Stream:
        stream = Stream.of(lines)
        total = len(lines)
        started = last_output = last_shown = last_probe = time.monotonic()
        show_progress = sys.stderr.isatty() and total > 200
        stall = min(1.0, self.device.timeout)
        while not stream.finished:
            batch = stream.take(time.monotonic())
            if batch:
                for line in batch:
                    log.debug(f"send: {line}")
                self._write("".join(line + "\n" for line in batch))
            if stream.in_flight_bytes * 2 > stream.window:
                # Plenty queued in the device: let echoes gather, one wake-up for many lines.
                time.sleep(_GATHER)
            try:
                chunk = self._read_some(0.05)
            except EOFError:
                raise self._lost(f"after {stream.done} of {total} lines") from None
            now = time.monotonic()
            if chunk:
                log.debug(f"reply: {escape(chunk, 4000)}")
                stream.feed(chunk, now)
                last_output = now
            else:
                self._check_silence(
                    now - last_output,
                    f"after {stream.done} of {total} lines",
                    "the next run repairs the group",
                )
                if stream.in_flight and now - max(last_output, last_probe) > stall:
                    log.debug("send: (empty line: has the device read everything?)")
                    last_probe = now
                    stream.probe(now)
                    self._write("\n")
            if show_progress and now - last_shown > 0.5:
                last_shown = now
                rate = stream.done / max(now - started, 1e-6)
                print(f"\r  {stream.done}/{total} lines, {rate:.0f}/s ", end="", file=sys.stderr, flush=True)
        took = time.monotonic() - started
        if show_progress:
            print(f"\r  {stream.done}/{total} lines, done ", file=sys.stderr)
        self.pushed += stream.done
        self.push_seconds += took
        self.resent += stream.resent
        log.info(
            f'Sent {stream.done} configuration lines to "{group}" in {took:.1f} s '
            f"({stream.done / max(took, 1e-6):.0f}/s)."
        )
        if stream.resent or stream.garbled:
            log.warning(
                f"the device dropped input: {stream.resent} lines sent again, "
                f"{len(stream.garbled)} garbled (verified by read-back)"
            )
        for garbled in stream.garbled[:5]:
            log.debug(f"garbled echo: {escape(garbled)}")
        for error in stream.errors[:10]:
            log.warning(f"device refused '{error.line}': {escape(error.message)}")
        if len(stream.errors) > 10:
            log.warning(f"... and {len(stream.errors) - 10} more refused lines (all in the log file)")
        for error in stream.errors[10:]:
            log.debug(f"device refused '{error.line}': {escape(error.message)}")
        return stream

    def save(self) -> None:
        log.info("Saving the running configuration (write memory).")
        body = self._command("write memory", self._priv_prompt(), "saving the configuration")
        if any(_ERROR_LINE.match(line) for line in body.splitlines()):
            raise DeviceError(
                f"write memory failed on {self.device.host}: {escape(body.strip())}; "
                "the change is live but not saved: the next run saves it (or save it by hand)"
            )
