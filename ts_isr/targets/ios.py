"""IOS / IOS-XE (ISR routers): object-group member syntax and ``show object-group`` parsing.

Pure text in, addresses out; the SSH side is in :mod:`ts_isr.targets.cisco`.
"""

from __future__ import annotations

from ts_isr.ranges import Cidr
from ts_isr.targets.cisco import Dialect, GroupContents, mask_text, parse_members


class IosDialect(Dialect):
    """``host X`` / ``X MASK`` members; read with ``show object-group name N`` (older IOS: without name)."""

    name = "IOS"
    device_type = "cisco_ios"
    member_prefix = ""

    def read_commands(self, group: str) -> tuple[str, ...]:
        return (f"show object-group name {group}", f"show object-group {group}")

    def member_line(self, cidr: Cidr) -> str:
        if cidr.prefixlen == 32:
            return f"host {cidr.address_text()}"
        return f"{cidr.address_text()} {mask_text(cidr.prefixlen)}"

    def parse_group(self, group: str, text: str) -> GroupContents:
        """The members of ``show object-group`` output: a header line, then one member per line.

        An empty answer or "not found" means the group does not exist yet.
        """
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        header = f"network object group {group}".lower()
        if not lines or not any(line.lower() == header for line in lines):
            return GroupContents(exists=False, members={}, others=())
        body = lines[[line.lower() for line in lines].index(header) + 1 :]
        return parse_members(body, prefix="")
