"""ASA: ``network-object`` member syntax and ``show running-config object-group id N`` parsing.

The ASA keeps ``host X`` and ``X 255.255.255.255`` as different lines; both
are the same /32 here, and a removal rebuilds each line in the form the ASA shows.
"""

from __future__ import annotations

import re

from ts_isr.targets.cisco.members import ABSENT, Dialect, GroupContents, group_body, parse_members

_NEXT_GROUP = re.compile(r"object-group ", re.IGNORECASE)


class AsaDialect(Dialect):
    name = "ASA"
    device_type = "cisco_asa"
    member_prefix = "network-object "
    session_commands = ("terminal width 511",)  # no `$`-wrapped lines in what is read back

    def read_commands(self, group: str) -> tuple[str, ...]:
        return (f"show running-config object-group id {group}",)

    def parse_group(self, group: str, text: str) -> GroupContents:
        """The configuration form: ``object-group network N`` then indented members.

        Nothing printed (or an ``ERROR: ... does not exist``) means no such group yet.
        """
        body = group_body(text, f"object-group network {group}", _NEXT_GROUP)
        return ABSENT if body is None else parse_members(body, prefix=self.member_prefix)
