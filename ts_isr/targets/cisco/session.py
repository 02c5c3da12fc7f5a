"""The SSH session with a Cisco device: strict login through netmiko, then channel I/O and prompts.

netmiko does the login, enable and prompts; every later command is written and
read here on its channel, so that every read is bounded.
"""

from __future__ import annotations

import codecs
import re
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ts_isr.errors import (
    AuthenticationFailed,
    ConnectionLost,
    DeviceError,
    DeviceMisbehaved,
    DeviceTimeout,
    HostKeyError,
    TsError,
    Unreachable,
)
from ts_isr.files import check_trusted, trusted_path
from ts_isr.log import escape, log
from ts_isr.targets.cisco.bounds import Budget, command_budget
from ts_isr.targets.cisco.members import Dialect

ERROR_LINE = re.compile(r"^\s*(%|ERROR:)", re.IGNORECASE)
# Answers that mean the line's effect is already in place (ASA): not a failure.
ALREADY_DONE = re.compile(r"already exists|does not exist in this group|not a member", re.IGNORECASE)
ABSENT_GROUP = re.compile(r"not found|does not exist", re.IGNORECASE)
INVALID_INPUT = re.compile(r"%\s*Invalid input", re.IGNORECASE)
CONFIG_PROMPT_END = re.compile(r"\(config[\w-]*\)#\s*$")


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
        return HostKeyError(
            f"host key changed for {where}: the device is not the one trusted in {device.known_hosts}; "
            "if it was replaced or re-keyed, run setup at a terminal: it shows both fingerprints and asks"
        )
    if "not found in known_hosts" in text:
        return HostKeyError(
            f"host key of {where} is unknown (not in {device.known_hosts}); "
            "run setup, or upload_rules --trust-host-key once to trust it"
        )
    if "TCP connection to device failed" in text or "Connection refused" in text:
        return Unreachable(
            f"cannot reach {where} (unreachable); check the device address, ssh_port and any firewall"
        )
    detail = escape(text.strip().splitlines()[-1]) if text.strip() else type(exc).__name__
    return Unreachable(
        f"SSH to {where} timed out or failed ({detail}); check that the device is up and answers SSH"
    )


def login_error(text: str, device: Device, dialect: Dialect, *, timed_out: bool) -> DeviceError:
    """netmiko's ValueError or ReadTimeout during login, named by what failed.

    The ASA driver enables during login, so there it is mostly the enable
    password; on IOS it comes from finding the prompt.
    """
    text = text.strip()
    if "enable mode" in text or (dialect.name == "ASA" and timed_out):
        return AuthenticationFailed(
            f"enable refused on {device.host} (no privileged prompt after enable); "
            "check enable_pw in the config"
        )
    detail = escape(text.splitlines()[-1]) if text else "a read timed out"
    return DeviceError(
        f"{device.host}:{device.port} logged in but showed no prompt netmiko recognises ({detail}); "
        f"check personality={dialect.name.lower()} and that the user's login ends at a '>' or '#' prompt"
    )


READ_CHUNK = 65536
_READ_ADVICE = "check the device (if a group is really that large, raise max_policy_size) and run again"


class Session:
    """One SSH session: netmiko logs in and enables, then this reads and writes its channel."""

    def __init__(self, dialect: Dialect, device: Device) -> None:
        self.dialect = dialect
        self.device = device
        self.conn = None
        self.broken = False  # the session died or hung: log off without another command
        self.in_config = False  # the last prompt was a configuration prompt: `end` before `disable`
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def connect(self) -> None:
        from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout

        from ts_isr.hostkeys import device_known_hosts  # paramiko: imported only to log in
        from ts_isr.targets.cisco.login import LoginBudget, connect  # netmiko's login, bounded in bytes

        device = self.device
        log.info("Logging into remote device.")
        if device.known_hosts.exists():  # whoever could change it could plant a fake device's key
            check_trusted(trusted_path(device.known_hosts, "known_hosts"), "known_hosts")
        budget = LoginBudget(device.host)
        try:
            with device_known_hosts(device.known_hosts, device.host, device.port) as known_hosts:
                self.conn = connect(
                    self.dialect.device_type,
                    budget,
                    host=device.host,
                    port=device.port,
                    username=device.username,
                    password=device.password or "",
                    secret=device.secret or "",
                    ssh_strict=True,
                    system_host_keys=False,
                    alt_host_keys=True,
                    alt_key_file=str(known_hosts),
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
            raise AuthenticationFailed(
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
        budget.what = "entering privileged mode"
        try:
            self._enable()
        except DeviceMisbehaved:
            self.broken = True  # it floods: logging off must not wait for its prompt
            raise
        for command in self.dialect.session_commands:
            self.command(command, self.priv_prompt(), "preparing the session")

    def _enable(self) -> None:
        """netmiko's enable (its reads still counted against the login's budget)."""
        from netmiko.exceptions import ReadTimeout

        device = self.device
        try:
            if not self.conn.check_enable_mode():
                self.conn.enable()
        except (ValueError, ReadTimeout, OSError, EOFError) as exc:
            raise AuthenticationFailed(
                f"enable refused on {device.host} ({escape(str(exc))}); check enable_pw in the config"
            ) from None
        if not self.conn.check_enable_mode():
            raise AuthenticationFailed(f"enable refused on {device.host}; check enable_pw in the config")
        self.conn.read_channel()  # what netmiko read ahead; from here on the channel is read here

    def close(self) -> None:
        if self.conn is None:
            return
        log.info("Leaving privileged mode.")
        try:
            if self.broken:
                raise DeviceError("the session is broken")
            if self.in_config:  # a failure left it there; `disable` would be refused and waited for
                self.command("end", self.priv_prompt(), "leaving configuration mode")
            user_prompt = re.compile(re.escape(self.conn.base_prompt) + r"[^\n#>]*>\s*$")
            self.command("disable", user_prompt, "leaving privileged mode")
        except (TsError, OSError, EOFError) as exc:  # the session may be gone; logging off still matters
            log.debug(f"leaving privileged mode: {escape(str(exc))}")
        log.info("Logging off.")
        conn, self.conn = self.conn, None
        try:
            if self.broken:  # netmiko's logout waits for a prompt a broken or hostile device never sends
                conn.paramiko_cleanup()
            else:
                conn.disconnect()
        except Exception as exc:
            log.debug(f"logging off: {escape(str(exc))}")

    # -- channel I/O ---------------------------------------------------------------------------

    def channel(self):
        if self.conn is None:
            raise DeviceError("not connected")
        return self.conn.remote_conn

    def lost(self, what: str) -> DeviceError:
        self.broken = True
        return ConnectionLost(
            f"connection to {self.device.host} lost {what}; the next run repairs the group "
            "(check the device's logs and the network)"
        )

    def write(self, text: str) -> None:
        try:
            self.conn.write_channel(text)
        except (OSError, EOFError) as exc:
            raise self.lost(f"while sending ({exc})") from None

    def read_some(self, wait: float) -> str:
        """At most ``READ_CHUNK`` bytes: netmiko's read_channel reads for as long as data keeps
        coming, which a device that floods never stops."""
        channel = self.channel()
        if channel.closed or channel.exit_status_ready():
            raise EOFError
        if not channel.recv_ready():
            select.select([channel], [], [], wait)
            if not channel.recv_ready():
                return ""
        try:
            data = channel.recv(READ_CHUNK)
        except (OSError, EOFError):
            raise EOFError from None
        if not data:
            raise EOFError
        return self.decoder.decode(data)

    def receive(self, wait: float, when: str) -> str:
        """:meth:`read_some`, the session given up (one line saying ``when``) if the connection is gone."""
        try:
            return self.read_some(wait)
        except EOFError:
            raise self.lost(when) from None

    def read_until(self, pattern: re.Pattern[str], what: str, budget: Budget) -> str:
        """Read until ``pattern`` ends the output, within ``budget`` in time and bytes.

        Silence longer than ssh_timeout fails as before; the budget also stops
        a device that keeps printing too slowly (trickle) or too much (flood).
        """
        chunks: list[str] = []
        size = 0
        tail = ""
        started = last = time.monotonic()
        while True:
            chunk = self.receive(0.2, f"while {what}")
            now = time.monotonic()
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
                last = now
                if size > budget.size:
                    raise self.hostile(f"sent more than {budget.size} bytes while {what}", budget)
                tail = (tail + chunk)[-300:]
                if pattern.search(tail):
                    return "".join(chunks)
            else:
                self.check_silence(now - last, f"while {what}", "check the device, or raise ssh_timeout")
            if now - started > budget.seconds:
                raise self.hostile(f"still answering after {budget.seconds:.0f} s while {what}", budget)

    def hostile(self, what: str, budget: Budget, advice: str = _READ_ADVICE) -> DeviceError:
        """The device broke a bound: the session is given up, nothing more is sent to it."""
        self.broken = True
        why = f" ({budget.why})" if budget.why else ""
        return DeviceMisbehaved(f"{self.device.host} {what}{why}; nothing more was sent to it; {advice}")

    def check_silence(self, silent: float, when: str, advice: str) -> None:
        """A device silent for longer than ssh_timeout is hung: the session is given up."""
        if silent > self.device.timeout:
            self.broken = True
            raise DeviceTimeout(
                f"{self.device.host} timed out: no answer for {self.device.timeout:.0f} s {when}; {advice}"
            )

    def priv_prompt(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.conn.base_prompt) + r"[^\n#>]*#\s*$")

    def command(self, command: str, until: re.Pattern[str], what: str, budget: Budget | None = None) -> str:
        """One command and its whole answer (without the echo), logged."""
        log.debug(f"send: {command}")
        self.write(command + "\n")
        output = self.read_until(until, what, budget or command_budget(self.device.timeout))
        self.in_config = CONFIG_PROMPT_END.search(output) is not None
        body = output.replace("\r", "").split("\n", 1)[1] if "\n" in output else ""
        body = until.sub("", body).rstrip()
        log.debug(f"reply: {escape(body, 2000)}")
        return body

    def confirm_end(self, prompt: re.Pattern[str], what: str) -> None:
        """The last answer really ended at its prompt: an empty line must come back as the prompt alone.

        A device works through its input in order, so whatever it still owed
        the last command (after a prompt printed inside its output) comes
        before the answer to the empty line, and fails the read.
        """
        log.debug("send: (empty line: did the answer end at that prompt?)")
        self.write("\n")
        rest = prompt.sub("", self.read_until(prompt, what, command_budget(self.device.timeout)))
        if rest.strip():
            log.debug(f"reply after the prompt: {escape(rest, 2000)}")
            self.broken = True
            raise DeviceError(
                f"{self.device.host} went on printing after its prompt while {what} (a prompt inside the "
                "output?), so the read may be incomplete; nothing was changed or recorded "
                "(check the device and run again)"
            )
