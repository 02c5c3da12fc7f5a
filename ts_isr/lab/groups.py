"""What a member line does to a lab group: added or removed in the platform's words, descriptions
kept first, IPv6 removals matched by address whatever their spelling, the member limit."""

from __future__ import annotations

import ipaddress

from ts_isr.lab.model import IOS, Profile, Reply


def change_member(members: dict[str, None], group: str, profile: Profile, member: str, negate: bool) -> Reply:
    """Add or remove one member line in ``group``, answering as the platform does (the ASA warns
    about a member already there, or not there, and takes the line as done)."""
    ios = profile.platform == IOS
    if member.startswith("description"):
        described = [key for key in members if key.startswith("description")]
        for key in described:
            del members[key]
        if not negate:
            rest = dict(members)
            members.clear()
            members[member] = None
            members.update(rest)
        return Reply(changed=bool(described) or not negate)
    if negate:
        member = _stored(members, member)
        if member in members:
            del members[member]
            return Reply(changed=True)
        if ios:
            return Reply()
        return Reply(
            [
                f"WARNING: Deleting obj ({_object_text(member)}) from grp ({group}) failed; "
                "object does not exist in this group"
            ]
        )
    if member in members:
        if ios:
            return Reply()
        return Reply(
            [f"WARNING: Adding obj ({_object_text(member)}) to grp ({group}) failed; object already exists"]
        )
    limit = profile.max_members
    if limit is not None and _entries(members) >= limit:
        if ios:
            return Reply([f"% Object-group {group} has reached the maximum of {limit} entries", ""])
        return Reply([f"ERROR: Object-group {group} has reached the maximum of {limit} objects"])
    members[member] = None
    return Reply(changed=True)


def _stored(members: dict[str, None], member: str) -> str:
    """The stored line an IPv6 removal means: devices compare addresses, not their spelling."""
    if member in members or ":" not in member:
        return member
    try:
        wanted = _v6_key(member)
        return next((line for line in members if ":" in line and _v6_key(line) == wanted), member)
    except ValueError:
        return member


def _v6_key(line: str) -> tuple[str, ...]:
    words = line.split()
    return (*words[:-1], str(ipaddress.ip_network(words[-1], strict=False)))


def _entries(members: dict[str, None]) -> int:
    """The group's members but its description, which ``_member`` always keeps first: O(1) per add."""
    return len(members) - next(iter(members), "").startswith("description")


def _object_text(member: str) -> str:
    return member.removeprefix("network-object ").removeprefix("host ").removeprefix("object ")
