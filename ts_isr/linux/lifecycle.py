"""The firewall's lifecycle on the host: sets and chain installed, the boot state saved, a prefix retired,
everything removed.  Shared by ``add``, ``update``, ``restore`` and ``remove``."""

from __future__ import annotations

from collections.abc import Callable

from ts_isr.files import write_atomic
from ts_isr.linux.firewall import ChainSpec, Firewall
from ts_isr.linux.names import Names, derive_names
from ts_isr.linux.settings import Paths
from ts_isr.log import log
from ts_isr.policy import Policy
from ts_isr.targets.base import plan_changes
from ts_isr.targets.ipset import IpsetTarget, policy_of


def apply_firewall(
    names: Names, spec: ChainSpec, policy: Policy | None, before_sets: Callable[[], None] = lambda: None
) -> tuple[bool, IpsetTarget]:
    """Sets first (the chain refers to them), then the chain on top; ``None`` keeps the sets' content.

    ``before_sets`` runs just before the sets change.
    """
    target = IpsetTarget(names)
    installed = target.read()
    if policy is None:
        policy = policy_of(installed)
    plan = plan_changes(installed, policy, target.families, ordered=False)
    desired = {change.kind: change.desired for change in plan.changes}
    changed = False
    if not plan.unchanged or not target.complete(desired):
        before_sets()
        target.apply(plan)
        changed = True
    else:
        log.info(f"Policy unchanged: {len(policy.block)} block and {len(policy.allow)} allow entries")
    if Firewall(names).install(target.families_present(), spec):
        log.info(f"Chain {names.chain} written and jumped to first from INPUT, OUTPUT and FORWARD")
        changed = True
    return changed, target


def install_policy(names: Names, spec: ChainSpec, policy: Policy | None, paths: Paths) -> bool:
    """:func:`apply_firewall`, then the boot state saved whenever it may be stale."""

    # Until the state is saved, the boot state is stale: the marker makes a later run save it.
    def mark_pending() -> None:
        write_atomic(paths.state_pending, "the sets changed after the boot state was saved\n")

    changed, target = apply_firewall(names, spec, policy, mark_pending)
    if changed or not paths.state.exists() or paths.state_pending.exists():
        target.save_state(paths.state)
        paths.state_pending.unlink(missing_ok=True)
    return changed


def installed_prefix(paths: Paths) -> str | None:
    """The prefix whose chain and sets are on the host, as recorded after the last good install."""
    try:
        return paths.installed_prefix.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def retire_and_record(previous: str | None, names: Names, paths: Paths) -> bool:
    """Retire the prefix installed before, then record the new one.

    The record is written only once the retirement worked, so a failed
    prefix change is retried, not forgotten.
    """
    changed = retire_prefix(previous, names)
    if installed_prefix(paths) != names.prefix:
        write_atomic(paths.installed_prefix, names.prefix + "\n", 0o644)
    return changed


def install_and_retire(
    names: Names, spec: ChainSpec, policy: Policy | None, paths: Paths, configured_before: str | None
) -> bool:
    """Install under the configured prefix, then retire the one installed before.

    ``configured_before`` stands in for installs made before the record existed.
    """
    previous = installed_prefix(paths) or configured_before
    changed = install_policy(names, spec, policy, paths)
    return retire_and_record(previous, names, paths) or changed


def retire_prefix(previous: str | None, names: Names) -> bool:
    """A new prefix: its chain is on top now, so the old chain and sets can go without a gap."""
    if not previous or previous == names.prefix:
        return False
    log.info(f"Prefix changed from {previous} to {names.prefix}: removing the {previous} chain and sets")
    return remove_installation(derive_names(previous))


def remove_installation(names: Names) -> bool:
    """The seed's order: flush the sets, remove the rules that use them, destroy the sets.

    A chain that is not tsadmin's alone (host rules in it, host rules jumping
    to it) is refused before the sets are emptied.
    """
    target = IpsetTarget(names)
    firewall = Firewall(names)
    firewall.check_owned(removing=True)
    present = target.present()
    target.flush_all()
    changed = firewall.remove()
    target.destroy_all()
    return changed or bool(present)


def installed_anything(names: Names) -> bool:
    """Any set or the chain of ``names`` exists: an undo must put it back rather than remove it."""
    return bool(IpsetTarget(names).present()) or Firewall(names).installed()
