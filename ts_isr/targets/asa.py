"""ASA: ``network-object`` member syntax and ``show running-config object-group id N`` parsing.

The ASA keeps ``host X`` and ``X 255.255.255.255`` as different text; both are
the same /32 here, and a removal quotes the member exactly as the ASA shows it.
"""

from __future__ import annotations

from ts_isr.ranges import Cidr
from ts_isr.targets.cisco import Dialect, GroupContents, mask_text, parse_members


class AsaDialect(Dialect):
    name = "ASA"
    device_type = "cisco_asa"
    member_prefix = "network-object "
    session_commands = ("terminal width 511",)  # no `$`-wrapped lines in what is read back

    def read_commands(self, group: str) -> tuple[str, ...]:
        return (f"show running-config object-group id {group}",)

    def member_line(self, cidr: Cidr) -> str:
        if cidr.prefixlen == 32:
            return f"network-object host {cidr.address_text()}"
        return f"network-object {cidr.address_text()} {mask_text(cidr.prefixlen)}"

    def parse_group(self, group: str, text: str) -> GroupContents:
        """The configuration form: ``object-group network N`` then indented members.

        Nothing printed (or an ``ERROR: ... does not exist``) means no such group yet.
        """
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        header = f"object-group network {group}".lower()
        lowered = [line.lower() for line in lines]
        if header not in lowered:
            return GroupContents(exists=False, members={}, others=())
        body = []
        for line in lines[lowered.index(header) + 1 :]:
            if line.lower().startswith("object-group "):
                break
            body.append(line)
        return parse_members(body, prefix=self.member_prefix)
