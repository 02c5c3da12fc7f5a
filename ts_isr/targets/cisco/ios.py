"""IOS / IOS-XE (ISR routers): object-group member syntax and ``show object-group`` parsing.

Pure text in, addresses out; the SSH side is in :mod:`ts_isr.targets.cisco.session`.
"""

from __future__ import annotations

import re

from ts_isr.targets.cisco.members import ABSENT, Dialect, GroupContents, group_body, parse_members

# `show object-group` without a name (older IOS) prints every group: "Network object group X",
# "Service object group Y"; the group read ends at the next one.
_NEXT_GROUP = re.compile(r"[a-z0-9-]+ object group ", re.IGNORECASE)


class IosDialect(Dialect):
    """``host X`` / ``X MASK`` members (IPv6 groups: ``host X`` / ``X/LEN`` in ``object-group
    v6-network``); read with ``show object-group name N`` (older IOS: without name)."""

    name = "IOS"
    device_type = "cisco_ios"
    member_prefix = ""

    def read_commands(self, group: str) -> tuple[str, ...]:
        return (f"show object-group name {group}", f"show object-group {group}")

    def parse_group(self, group: str, text: str, v6: bool = False) -> GroupContents:
        """The members of ``show object-group`` output: a header line, then one member per line.

        An empty answer or "not found" (or a group of the other type) means the group does not exist yet.
        """
        header = f"{'V6-Network' if v6 else 'Network'} object group {group}"
        body = group_body(text, header, _NEXT_GROUP)
        return ABSENT if body is None else parse_members(body, prefix=self.member_prefix)
