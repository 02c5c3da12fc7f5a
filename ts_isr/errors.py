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
    """A failure whose message says what went wrong and what to do about it."""

    exit_code = Exit.FAILED


class ConfigError(TsError):
    exit_code = Exit.CONFIG


class LockedError(TsError):
    exit_code = Exit.LOCKED


class FetchError(TsError):
    """The policy could not be fetched whole; nothing may be applied."""


class DeviceError(TsError):
    """The device refused, failed or could not be reached."""
