"""The firewall's lifecycle on the host, whatever the backend: the policy installed and its boot state
saved, a prefix retired, everything removed.  Shared by ``add``, ``update``, ``restore`` and ``remove``."""

from __future__ import annotations

from pathlib import Path

from ts_isr.files import write_atomic
from ts_isr.linux.backend import Backend, make_backend
from ts_isr.linux.firewall import ChainSpec, LastApplied
from ts_isr.linux.settings import Paths
from ts_isr.log import log
from ts_isr.policy import Policy


def install_policy(
    backend: Backend, spec: ChainSpec, policy: Policy | None, paths: Paths, previous: Policy | None = None
) -> bool:
    """The backend's sets and rules, then the boot state saved whenever it may be stale.

    ``previous`` is the policy the last update fetched: with a boot state saved
    since (none pending), what the sets should hold.
    """

    current = previous is not None and not paths.state_pending.exists()
    last = LastApplied(previous, paths.state) if current else None
    changed = backend.apply(spec, policy, lambda: mark_pending(paths), last)
    if changed or not paths.state.exists() or paths.state_pending.exists():
        backend.save(paths.state)
        paths.state_pending.unlink(missing_ok=True)
    return changed


def mark_pending(paths: Paths) -> None:
    """The sets are about to change: until the boot state is saved, it and its record are stale, and
    the marker makes a later run read the sets back and save it."""
    write_atomic(paths.state_pending, "the sets changed after the boot state was saved\n")


def installed_prefix(paths: Paths) -> str | None:
    """The prefix whose rules and sets are on the host, as recorded after the last good install."""
    return _record(paths.installed_prefix)


def installed_firewall(paths: Paths) -> str | None:
    """The backend installed, as recorded (installs from before the record used iptables)."""
    return _record(paths.installed_firewall) or ("iptables" if installed_prefix(paths) else None)


def _record(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def retire_and_record(previous: str | None, backend: Backend, paths: Paths) -> bool:
    """Retire the installation before (another prefix or another backend), then record the new one.

    The record is written only once the retirement worked, so a failed
    change is retried, not forgotten.
    """
    changed = retire(previous, installed_firewall(paths) or backend.kind, backend)
    if installed_prefix(paths) != backend.names.prefix:
        write_atomic(paths.installed_prefix, backend.names.prefix + "\n", 0o644)
    if _record(paths.installed_firewall) != backend.kind:
        write_atomic(paths.installed_firewall, backend.kind + "\n", 0o644)
    return changed


def install_and_retire(
    backend: Backend,
    spec: ChainSpec,
    policy: Policy | None,
    paths: Paths,
    configured_before: str | None,
    previous_policy: Policy | None = None,
) -> bool:
    """Install under the configured prefix, then retire the one installed before.

    ``configured_before`` stands in for installs made before the record existed.
    """
    previous = installed_prefix(paths) or configured_before
    same = previous == backend.names.prefix and installed_firewall(paths) == backend.kind
    changed = install_policy(backend, spec, policy, paths, previous_policy if same else None)
    return retire_and_record(previous, backend, paths) or changed


def retiring(previous: str | None, previous_kind: str, backend: Backend) -> Backend | None:
    """The installation ``backend`` replaces (another prefix or another firewall), if any."""
    if not previous or (previous, previous_kind) == (backend.names.prefix, backend.kind):
        return None
    return make_backend(previous_kind, previous)


def retire(previous: str | None, previous_kind: str, backend: Backend) -> bool:
    """A new prefix or backend: its rules are on top now, so the old ones can go without a gap."""
    old = retiring(previous, previous_kind, backend)
    if old is None:
        return False
    log.info(
        f"Now {backend.kind} with prefix {backend.names.prefix}: removing the {old.kind} rules of {previous}"
    )
    return old.remove()
