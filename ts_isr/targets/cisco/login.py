"""netmiko's login and enable, bounded in bytes: a device that floods while netmiko reads fails the run.

netmiko's read_channel goes on reading for as long as data arrives, and keeps all of it: a device
flooding after authentication grew a run to 377 MB in 21 s (954 MB with ssh_timeout=60) before
netmiko's own timeout ended it.  Every read netmiko makes goes through its channel object's
``read_buffer``, so the driver here gives this one connection a channel that counts the bytes
(netmiko itself is not patched) and fails the login, in one line, past ``LOGIN_BYTES``.  Imported
only to log in, as netmiko is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import paramiko
from netmiko import BaseConnection
from netmiko.channel import SSHChannel
from netmiko.ssh_dispatcher import ssh_dispatcher

from ts_isr.errors import DeviceMisbehaved

LOGIN_BYTES = 1 << 20  # a login and enable print a banner (a few KB at most) and a few prompts


@dataclass
class LoginBudget:
    """The bytes netmiko may read from one device, and what it is doing (for the message)."""

    host: str
    limit: int = LOGIN_BYTES
    what: str = "logging in"
    read: int = 0

    def spend(self, size: int) -> None:
        """Count ``size`` more bytes; past the limit, fail (every later read too, so netmiko's
        clean-up after the failure reads no more of the flood)."""
        self.read += size
        if self.read > self.limit:
            raise DeviceMisbehaved(
                f"{self.host} sent more than {self.limit} bytes while {self.what} (a login shows a banner "
                "and a few prompts); the session was closed; check the device (is something flooding "
                "its terminal sessions?) and run again"
            )


class LoginChannel(SSHChannel):
    """netmiko's SSH channel with each read counted against a :class:`LoginBudget`."""

    def __init__(self, conn: paramiko.Channel | None, encoding: str, budget: LoginBudget) -> None:
        super().__init__(conn, encoding)
        self.budget = budget

    def read_buffer(self) -> str:
        """netmiko's one read of what is there, counted (characters: as many as bytes, near enough)."""
        self.budget.spend(0)  # over already: no more of the flood, not even for netmiko's clean-up
        data = super().read_buffer()
        self.budget.spend(len(data))
        return data


@functools.cache
def _driver(device_type: str) -> type[BaseConnection]:
    """netmiko's driver for ``device_type``, its channel counted from the moment the shell opens."""
    base: Any = ssh_dispatcher(device_type)

    class Bounded(base):
        def __init__(self, *args: Any, login_budget: LoginBudget, **kwargs: Any) -> None:
            self.login_budget = login_budget  # before netmiko's __init__, which logs in
            super().__init__(*args, **kwargs)

        def establish_connection(self, width: int = 511, height: int = 1000) -> None:
            super().establish_connection(width, height)
            self.channel = LoginChannel(self.remote_conn, self.encoding, self.login_budget)

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{base.__name__}"
    return Bounded


def connect(device_type: str, budget: LoginBudget, **params: Any) -> BaseConnection:
    """What netmiko's ConnectHandler does (log in, and on the ASA enable), every byte read counted."""
    return _driver(device_type)(device_type=device_type, login_budget=budget, **params)
