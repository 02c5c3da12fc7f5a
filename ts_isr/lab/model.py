"""The lab device's model: platforms, CLI modes, its configuration state, its profile, a reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

IOS = "ios"
ASA = "asa"
PLATFORMS = (IOS, ASA)


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
    types: dict[str, str] = field(default_factory=dict)  # group -> "v6-network" (IOS); absent: "network"

    def snapshot(self) -> dict[str, Any]:
        """The state.json form: ``{"running": {GROUP: [member, ...]}, "startup": {...}, "types": {...}}``."""
        return {
            "running": {name: list(members) for name, members in self.running.items()},
            "startup": {name: list(members) for name, members in self.startup.items()},
            "types": dict(self.types),
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> DeviceState:
        def load(groups: dict[str, list[str]]) -> dict[str, dict[str, None]]:
            return {name: dict.fromkeys(members) for name, members in groups.items()}

        return cls(load(data.get("running", {})), load(data.get("startup", {})), dict(data.get("types", {})))

    def group_type(self, name: str) -> str:
        return self.types.get(name, "network")

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
    version: str = ""  # ASA release `show version` names (before 9.0: no IPv6 in network groups)

    @property
    def asa_release(self) -> str:
        text = self.version or "9.8(4)20"
        return text if "(" in text else f"{text}(1)"

    @property
    def mixed_groups(self) -> bool:
        """An ASA from 9.0 on takes IPv6 members in its network object-groups."""
        return int(self.asa_release.split(".")[0]) >= 9

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
