"""Cisco IOS and ASA object-groups over SSH.

One idea per module: :mod:`.members` (member text, parsed and formatted, and
the dialects' common shape), :mod:`.ios` and :mod:`.asa` (each platform's
syntax), :mod:`.login` (netmiko's login, bounded in bytes), :mod:`.session`
(bounded channel I/O), :mod:`.prompts` (finding prompts in linear time),
:mod:`.stream` (the flow-controlled push) and :mod:`.target` (read, apply, save).
"""

from ts_isr.targets.cisco.members import (
    ABSENT,
    Dialect,
    GroupContents,
    Member,
    group_body,
    mask_prefixlen,
    never_empty,
    parse_member,
    parse_members,
    removal_lines,
)
from ts_isr.targets.cisco.session import Device, Session, login_error
from ts_isr.targets.cisco.stream import Stream
from ts_isr.targets.cisco.target import CiscoTarget

__all__ = [
    "ABSENT",
    "CiscoTarget",
    "Device",
    "Dialect",
    "GroupContents",
    "Member",
    "Session",
    "Stream",
    "group_body",
    "login_error",
    "mask_prefixlen",
    "never_empty",
    "parse_member",
    "parse_members",
    "removal_lines",
]
