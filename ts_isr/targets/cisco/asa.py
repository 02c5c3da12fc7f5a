"""ASA: ``network-object`` member syntax and ``show running-config object-group id N`` parsing.

The ASA keeps ``host X`` and ``X 255.255.255.255`` as different lines; both
are the same /32 here, and a removal rebuilds each line in the form the ASA shows.
"""

from __future__ import annotations

import re

from ts_isr.targets.cisco.members import ABSENT, Dialect, GroupContents, group_body, parse_members

_NEXT_GROUP = re.compile(r"object-group ", re.IGNORECASE)
_VERSION = re.compile(r"Adaptive Security Appliance Software Version (\d+)\.(\d+)", re.IGNORECASE)
MIXED_GROUPS = (9, 0)  # the first release whose network object-groups take IPv6 beside IPv4


def asa_version(show_version: str) -> tuple[int, int] | None:
    """The (major, minor) release ``show version`` names, or None when it names none."""
    match = _VERSION.search(show_version)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


class AsaDialect(Dialect):
    """``network-object host X`` / ``network-object X MASK`` / ``network-object X/LEN`` members."""

    name = "ASA"
    device_type = "cisco_asa"
    member_prefix = "network-object "
    session_commands = ("terminal width 511",)  # no `$`-wrapped lines in what is read back

    def read_commands(self, group: str) -> tuple[str, ...]:
        return (f"show running-config object-group id {group}",)

    def group_type(self, v6: bool = False) -> str:
        return "network"  # mixed groups: IPv6 members beside IPv4 ones (9.0 and later)

    def parse_group(self, group: str, text: str, v6: bool = False) -> GroupContents:
        """The configuration form: ``object-group network N`` then indented members of both families.

        Nothing printed (or an ``ERROR: ... does not exist``) means no such group yet.
        """
        body = group_body(text, f"object-group network {group}", _NEXT_GROUP)
        return ABSENT if body is None else parse_members(body, prefix=self.member_prefix)
