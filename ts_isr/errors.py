"""Failures that end a command with one clear line and a documented exit code."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit codes shared by every command (documented in README.md).

    A body returns CHANGED when it changed something; the process exits 0
    for it, as systemd, Ansible and ``cmd && next`` expect of a success,
    unless ``--detailed-exitcodes`` (Puppet's convention) asks for 4.
    """

    UNCHANGED = 0
    FAILED = 1
    CONFIG = 2
    LOCKED = 3
    CHANGED = 4


class TsError(Exception):
    """A failure whose message says what went wrong and what to do about it; ``kind`` names it in a
    fleet's summary."""

    exit_code = Exit.FAILED
    kind = "error"


class ConfigError(TsError):
    exit_code = Exit.CONFIG
    kind = "config"


class LockedError(TsError):
    exit_code = Exit.LOCKED
    kind = "locked"


class FetchError(TsError):
    """The policy could not be fetched whole; nothing may be applied."""

    kind = "fetch"


class DeviceError(TsError):
    """The device refused, failed or could not be reached (the kinds below say which, as NAPALM's
    exceptions do, so a fleet's summary or a retry can tell them apart)."""

    kind = "device"


class AuthenticationFailed(DeviceError):
    """The device refused the login or the enable password: a retry would fail the same way."""

    kind = "authentication"


class HostKeyError(DeviceError):
    """The device's SSH host key is unknown or changed: a person must look before anything is sent."""

    kind = "host_key"


class Unreachable(DeviceError):
    """No SSH session could be opened: the device, the network or its SSH server is down."""

    kind = "unreachable"


class DeviceTimeout(DeviceError):
    """The device stopped answering within ``ssh_timeout``."""

    kind = "timeout"


class ConnectionLost(DeviceError):
    """The session dropped mid-run: the next run repairs the groups."""

    kind = "connection_lost"


class DeviceMisbehaved(DeviceError):
    """The device broke a bound (too much output, too slow, a read that ended early)."""

    kind = "misbehaved"
