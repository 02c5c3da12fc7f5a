"""One Cisco device's run, the same for a single-device run, setup and every device of a fleet.

The factory (:func:`cisco_target`) makes the target from a device's checked
settings; :func:`sync_device` trusts its key when asked, connects, and
synchronises it with a built policy; :func:`note_sync`
tells the run's record what it did.  Each device has its own
lock, ownership records and last good policy in ``state_dir``, named by
:func:`device_key`, so a single-device run and a fleet run never push to the
same device at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ts_isr.commands.answers import search_lines
from ts_isr.config import Config
from ts_isr.fetch import BuiltPolicy
from ts_isr.files import safe_name
from ts_isr.ranges import Cidr
from ts_isr.runrecord import RunRecord, load_record
from ts_isr.sync import PLACEHOLDERS, OwnershipStore, SyncOptions, SyncResult, synchronise
from ts_isr.targets.base import slot
from ts_isr.targets.cisco import CiscoTarget, Device
from ts_isr.targets.cisco.asa import AsaDialect
from ts_isr.targets.cisco.ios import IosDialect
from ts_isr.targets.dryrun import DryRunTarget

COMMAND = "upload_rules"


def device_key(config: Config) -> str:
    """What names a device's state files and lock: its address and SSH port."""
    return f"{config.device}-{config.ssh_port}"


def device_of(config: Config) -> Device:
    return Device(
        host=str(config.device),
        port=config.ssh_port,
        username=config.username,
        password=config.password,
        secret=config.enable_pw,
        known_hosts=config.known_hosts,
        timeout=config.ssh_timeout,
    )


def groups_of(config: Config, kinds: tuple[str, ...]) -> dict[str, str]:
    """Slot -> group name: each list's group and, on IOS, its ``object-group v6-network`` where named."""
    groups = {kind: config[f"object_group_{kind}"] for kind in kinds}
    if config.personality == "ios":
        for kind in kinds:
            if config.get(f"object_group_{kind}_v6"):
                groups[slot(kind, 6)] = config[f"object_group_{kind}_v6"]
    return groups


def policy_families(config: Config) -> frozenset[int]:
    """The families the device of ``config`` may take (an ASA's release is known only at login):
    only they compete for ``max_policy_size``."""
    if config.personality == "asa":
        return frozenset({4, 6}) if config.get("ipv6", True) else frozenset({4})
    v6 = config.get("object_group_block_v6") or config.get("object_group_allow_v6")
    return frozenset({4, 6}) if v6 else frozenset({4})


def cisco_target(config: Config, kinds: tuple[str, ...]) -> CiscoTarget:
    """The device of ``config``, with the groups for ``kinds``; not connected yet."""
    dialect = AsaDialect() if config.personality == "asa" else IosDialect()
    return CiscoTarget(
        dialect,
        device_of(config),
        groups_of(config, kinds),
        exclusive=config.exclusive_groups,
        max_policy_size=config.max_policy_size,
        ipv6=config.get("ipv6", True),
    )


def managed_kinds(allow_wanted: bool, allow_recorded: frozenset[Cidr]) -> tuple[str, ...]:
    """The block group always; the allow group when there is an allow list, and also while the tool
    still has members in it, so that removing allow_list from the config empties it (down to the
    placeholder) instead of leaving the old allowed addresses there for good."""
    return ("block", "allow") if allow_wanted or allow_recorded - PLACEHOLDERS else ("block",)


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    force: bool = False
    trust_host_key: bool = False


def device_lock(config: Config) -> Path:
    return config.state_dir / f"{COMMAND}-{safe_name(device_key(config))}.lock"


def sync_device(config: Config, built: BuiltPolicy, options: RunOptions) -> SyncResult:
    """Log into the device and bring its groups to ``built``; the caller holds its lock."""
    policy = built.policy
    store = OwnershipStore(config.state_dir, device_key(config))
    kinds = managed_kinds(bool(config.allow_list or policy.allow), store.load(config.object_group_allow))
    if options.trust_host_key:
        from ts_isr import hostkeys  # paramiko: imported only when a device is contacted

        hostkeys.trust(
            config.known_hosts, str(config.device), config.ssh_port, config.ssh_timeout, unasked=True
        )
    device = cisco_target(config, kinds)
    target = DryRunTarget(device) if options.dry_run else device
    sync_options = SyncOptions(
        groups=device.groups,
        exclusive=config.exclusive_groups,
        max_shrink=config.max_shrink,
        force=options.force,
        write_memory=config.write_memory,
        record=not options.dry_run,
    )
    with target:
        device.connect()
        result = synchronise(target, policy, store, sync_options)
    return replace(result, pushed=device.pushed, resent=device.resent)


def note_sync(record: RunRecord, result: SyncResult) -> None:
    record.result = "changed" if result.changed else "unchanged"
    record.device_entries = dict(result.members)
    record.lines_pushed, record.lines_resent = result.pushed, result.resent
    record.changes = {
        kind: {"add": result.added.get(kind, 0), "remove": result.removed.get(kind, 0)}
        for kind in result.members
    }


def search_device(config: Config, texts: Sequence[str], label: str, store_key: str = "") -> list[str]:
    """``--search`` for one device: the last good policy's answer, and whether the device's group
    for the entry (its IPv6 group on IOS) held it at its last run."""
    groups = groups_of(config, ("block", "allow"))
    record = load_record(config.state_dir, COMMAND, label)
    return search_lines(texts, config.state_dir, store_key=store_key, groups=groups, record=record)
