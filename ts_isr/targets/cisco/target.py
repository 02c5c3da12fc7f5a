"""CiscoTarget: IOS or ASA object-groups read, changed (additions before removals) and saved.

What to send is decided from the parsed groups (:mod:`.members`); lines go
through the streaming push (:mod:`.stream`) on one SSH session (:mod:`.session`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ts_isr.errors import DeviceError
from ts_isr.log import escape, log
from ts_isr.ranges import Cidr
from ts_isr.targets.base import V6_SLOT, Members, Plan, Target, list_of
from ts_isr.targets.cisco.asa import MIXED_GROUPS, AsaDialect, asa_version
from ts_isr.targets.cisco.bounds import command_budget, read_budget
from ts_isr.targets.cisco.members import ABSENT, Dialect, GroupContents, never_empty, removal_lines
from ts_isr.targets.cisco.session import (
    ABSENT_GROUP,
    CONFIG_PROMPT_END,
    ERROR_LINE,
    INVALID_INPUT,
    Device,
    Session,
)
from ts_isr.targets.cisco.stream import Stream, push

DEFAULT_MAX_POLICY_SIZE = 30000  # the config's default


class CiscoTarget(Target):
    """IOS or ASA object-groups, one per slot (list, and family on IOS), over one SSH session.

    IPv6: the ASA puts it in the same groups from 9.0 on (``ipv6=yes``, read
    from ``show version`` at login); IOS in ``object-group v6-network`` groups
    of slots ``block_v6`` / ``allow_v6``, when the config names them.
    """

    families = frozenset({4, 6})  # the most a Cisco device takes; each instance narrows it

    def __init__(
        self,
        dialect: Dialect,
        device: Device,
        groups: Mapping[str, str],
        *,
        exclusive: bool = False,
        max_policy_size: int = DEFAULT_MAX_POLICY_SIZE,
        ipv6: bool = True,
    ) -> None:
        self.dialect = dialect
        self.device = device
        self.groups = dict(groups)
        self.ipv6 = ipv6
        self.mixed = isinstance(dialect, AsaDialect)
        self.families = frozenset({4, 6}) if any(s.endswith(V6_SLOT) for s in groups) else frozenset({4})
        self.no_v6 = "" if self.mixed and ipv6 else "ipv6=no in the config"
        # The most entries the tool puts in each group (the policy is cut to this): bounds every read.
        self.entries = {"block": max_policy_size, "allow": max(1, max_policy_size // 5)}
        self.exclusive = exclusive  # exclusive_groups=yes: the tool may take out a user's range too
        self.contents: dict[str, GroupContents] = {}
        self.session = Session(dialect, device)
        self.pushed = 0
        self.push_seconds = 0.0
        self.resent = 0

    def connect(self) -> None:
        self.session.connect()
        if self.mixed and self.ipv6:
            self._check_mixed_groups()

    def _check_mixed_groups(self) -> None:
        """IPv6 in the ASA's groups from 9.0 on: ``show version`` says which release this is."""
        prompt = self.session.priv_prompt()
        text = self.session.command(
            "show version", prompt, "reading the version", command_budget(self.device.timeout)
        )
        self.session.confirm_end(prompt, "reading the version")
        version = asa_version(text)
        if version is not None and version >= MIXED_GROUPS:
            self.families = frozenset({4, 6})
            return
        self.families = frozenset({4})
        release = "no release" if version is None else f"release {version[0]}.{version[1]}"
        self.no_v6 = f"show version names {release}; IPv6 in network object-groups needs ASA 9.0 or later"

    def slot_families(self, slot_name: str) -> frozenset[int]:
        if self.mixed:
            return self.families
        return frozenset({6}) if slot_name.endswith(V6_SLOT) else frozenset({4})

    def why_skipped(self, kind: str) -> str:
        if self.mixed:
            return self.no_v6
        return f"object_group_{kind}_v6 is not set (IOS holds IPv6 in object-group v6-network groups only)"

    def close(self) -> None:
        self.session.close()

    # -- Target ----------------------------------------------------------------------------------

    def read(self) -> Members:
        return {kind: self.read_kind(kind) for kind in self.groups}

    def read_kind(self, kind: str) -> frozenset[Cidr]:
        group = self.groups[kind]
        verb = "Verifying" if kind in self.contents else "Retrieving"
        log.info(f'{verb} current members of "{group}" network group.')
        self.contents[kind] = self._read_group(kind)
        return self.contents[kind].cidrs

    def held_by_user(self, kind: str) -> frozenset[Cidr]:
        """Networks a line the tool never writes holds (a ``range``): the user's to remove."""
        return frozenset() if self.exclusive else self.contents.get(kind, ABSENT).held_by_user

    def _read_group(self, kind: str) -> GroupContents:
        group = self.groups[kind]
        prompt = self.session.priv_prompt()
        budget = read_budget(self.entries[list_of(kind)], self.device.timeout)
        for command in self.dialect.read_commands(group):
            what = f'reading group "{group}"'
            body = self.session.command(command, prompt, what, budget)
            self.session.confirm_end(prompt, what)
            if INVALID_INPUT.search(body):
                continue
            errors = [line for line in body.splitlines() if ERROR_LINE.match(line)]
            if errors and not all(ABSENT_GROUP.search(line) for line in errors):
                raise DeviceError(
                    f'{self.device.host} refused to show group "{group}": {escape(errors[0])}; '
                    "check the user's privilege level"
                )
            return self.dialect.parse_group(group, body, v6=kind.endswith(V6_SLOT))
        raise DeviceError(
            f'{self.device.host} knows no command to show object-group "{group}" '
            f"({' / '.join(self.dialect.read_commands(group))}); "
            f"is personality={self.dialect.name.lower()} right?"
        )

    def apply(self, plan: Plan) -> None:
        """One configuration session: every group's additions, then (once they are in) its removals."""
        work = []
        for change in plan.changes:
            group = self.groups.get(change.kind)
            if group is None or not (change.add or change.remove):
                continue
            contents = self.contents.get(change.kind, ABSENT)
            readd, taken = removal_lines(
                contents, change.remove, contents.cidrs - frozenset(change.remove), users_lines=self.exclusive
            )
            adds = {self.dialect.member_line(cidr): cidr for cidr in (*change.add, *readd)}
            removals = [(f"no {self.dialect.line(member)}", cidrs) for member, cidrs in taken]
            work.append((change.kind, group, contents, adds, removals))
        if not work:
            return
        self.session.command("configure terminal", CONFIG_PROMPT_END, "entering configuration mode")
        refused: set[str] = set()
        for kind, _, _, adds, _ in work:
            if adds:
                log.info(f"Adding new {kind} addresses.")
                refused |= {error.line for error in self._push_in_group(kind, list(adds)).errors}
        for kind, group, contents, adds, removals in work:
            present = contents.cidrs | {cidr for line, cidr in adds.items() if line not in refused}
            others = any(not line.lower().startswith("description") for line in contents.others)
            send, held = never_empty(present, removals, others)
            if held:
                log.warning(
                    f'kept {len(held)} old member(s) of "{group}" so that it is never empty: '
                    "the device refused the new ones (see above)"
                )
            if send:
                log.info(f"Removing old {kind} addresses...  Please wait.  It can take some time...")
                self._push_in_group(kind, send)
        self.session.command("end", self.session.priv_prompt(), "leaving configuration mode")

    def _push_in_group(self, kind: str, lines: list[str]) -> Stream:
        """Stream member lines inside the group of slot ``kind`` (IOS IPv6: ``object-group v6-network``).

        Entering and leaving the group are single commands, never streamed: a
        dropped mode change must not land one list's members in another group.
        """
        group = self.groups[kind]
        command = f"object-group {self.dialect.group_type(kind.endswith(V6_SLOT))} {group}"
        body = self.session.command(command, CONFIG_PROMPT_END, f'entering group "{group}"')
        errors = [line for line in body.splitlines() if ERROR_LINE.match(line)]
        if errors:
            raise DeviceError(
                f'{self.device.host} refused "{command}": {escape(errors[0])}; '
                "is that name used by another kind of object-group? Choose another in the config"
            )
        stream = push(self.session, group, lines)
        self.pushed += stream.done
        self.push_seconds += stream.seconds
        self.resent += stream.resent
        self.session.command("exit", CONFIG_PROMPT_END, f'leaving group "{group}"')
        return stream

    def save(self) -> None:
        log.info("Saving the running configuration (write memory).")
        body = self.session.command("write memory", self.session.priv_prompt(), "saving the configuration")
        if any(ERROR_LINE.match(line) for line in body.splitlines()):
            raise DeviceError(
                f"write memory failed on {self.device.host}: {escape(body.strip())}; "
                "the change is live but not saved: the next run saves it (or save it by hand)"
            )
