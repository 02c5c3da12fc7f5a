"""``tsadmin add``'s changes to the host, whole or nothing.

Everything is rendered and checked first (:class:`AddPlan`); then each step
notes its undo in a :class:`~ts_isr.linux.rollback.Rollback` before it
changes anything, so a failure at any step puts back the rules, sets, files,
crontab and units as they were before this ``add``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ts_isr.config import save_config
from ts_isr.linux import host, schedule
from ts_isr.linux.backend import Backend, make_backend
from ts_isr.linux.firewall import ChainSpec
from ts_isr.linux.lifecycle import install_policy, mark_pending
from ts_isr.linux.rollback import Rollback
from ts_isr.linux.settings import LINUX_KEYS, LINUX_TITLE, Paths
from ts_isr.policy import Policy
from ts_isr.policystore import FILE_NAME as LAST_GOOD
from ts_isr.policystore import save_last_good


@dataclass(frozen=True)
class AddPlan:
    """What ``add`` installs, every text rendered and checked before the first change."""

    config_file: Path
    values: dict[str, str]  # the config to write
    before: dict[str, str] | None  # the config as it was (None: there was none)
    backend: Backend
    spec: ChainSpec
    spec_before: ChainSpec  # the chain an undo puts back on an earlier installation
    policy: Policy | None
    backups: dict[str, str]
    br_netfilter: bool
    logfile: Path
    kernel_log: tuple[str, Path, str] | None  # daemon, snippet, text
    syslog_running: bool
    state_dir: Path | None  # where the fetch keeps the last good policy
    logrotate: str
    scheduler: str  # "cron" or "systemd"
    unit: str


def install_host(plan: AddPlan, paths: Paths) -> bool:
    """Every step of ``add``; True when anything changed.  A failure undoes the steps before it."""
    with Rollback() as undo:
        return _install(plan, paths, undo)


def _install(plan: AddPlan, paths: Paths, undo: Rollback) -> bool:
    for what in plan.backups:
        undo.file(paths.backup(what))
    changed = bool(host.backup_once(paths, plan.backups))
    # The firewall first: the later steps only make sense around it.
    note_firewall(plan.backend, plan.spec_before, undo, paths)
    undo.file(paths.state)
    undo.file(paths.state_pending)
    changed |= install_policy(plan.backend, plan.spec, plan.policy, paths)
    if plan.policy is not None and plan.state_dir is not None:
        undo.file(plan.state_dir / LAST_GOOD)
        save_last_good(plan.state_dir, plan.policy)
    if plan.before is None or any(plan.before.get(name) != value for name, value in plan.values.items()):
        undo.file(plan.config_file)
        save_config(plan.config_file, plan.values, LINUX_KEYS, LINUX_TITLE)
        changed = True
    undo.file(paths.modules_load)
    changed |= host.set_br_netfilter(paths, plan.br_netfilter)
    if plan.kernel_log is not None:
        daemon, snippet, _ = plan.kernel_log
        if plan.syslog_running:
            undo.add(f"reload {daemon}", lambda: host.reload_syslog(paths, daemon))
        undo.file(snippet)
    host.route_kernel_log(paths, plan.logfile, plan.kernel_log, running=plan.syslog_running)
    undo.file(paths.root / host.LOGROTATE_SNIPPET)
    changed |= host.install_logrotate(paths, plan.logrotate)
    changed |= schedule.install_schedule(paths, plan.scheduler, plan.config_file, undo)
    if host.systemd_runs(paths) and not paths.systemd_unit.exists():
        undo.add("disable the boot unit", lambda: host.remove_unit(paths))
    undo.file(paths.systemd_unit)
    return host.install_unit(paths, plan.unit) or changed


def note_firewall(backend: Backend, spec_before: ChainSpec, undo: Rollback, paths: Paths) -> None:
    """A first install is undone by removing it; an earlier one is put back with its entries and rules."""
    prefix = backend.names.prefix
    if not backend.present():
        undo.add(f"remove the {prefix} sets and rules", lambda: make_backend(backend.kind, prefix).remove())
        return
    previous = backend.read_policy()

    def put_back() -> None:
        """Marked stale while the sets change: a put-back that stops part-way leaves the next update
        to read them back rather than trust the boot state's record.  Whole, the host is as before."""
        pending = paths.state_pending.exists()
        make_backend(backend.kind, prefix).apply(spec_before, previous, lambda: mark_pending(paths))
        if not pending:
            paths.state_pending.unlink(missing_ok=True)

    undo.add(f"put the {prefix} sets and rules back", put_back)
