"""``upload_rules --inventory nornir.yaml``: every device of a fleet, on Nornir's threaded runner.

The lists are fetched once per distinct list settings and shared read-only;
each device is then built and synchronised by the very code of a
single-device run (:mod:`ts_isr.devicerun`), under its own lock, with its own
records and its own log file.  A failed fetch changes no device that depends
on it; a failed device never stops the others.  Logins open at
``connect_rate`` a second at most, so the devices' AAA servers are not flooded.
"""

from __future__ import annotations

import errno
import gc
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ts_isr.config import Config, read_values
from ts_isr.devicerun import RunOptions, device_lock, note_sync, policy_families, sync_device
from ts_isr.errors import Exit, FetchError, TsError
from ts_isr.fetch import FetchedLists, build_for, fetch_lists_of, list_settings, settle_servers
from ts_isr.files import safe_name
from ts_isr.fleet.inventory import FleetDevice, fleet_devices, unique_devices
from ts_isr.fleet.load import open_inventory
from ts_isr.fleet.pacer import Pacer
from ts_isr.fleet.report import Outcome, progress, summary
from ts_isr.fleet.select import select
from ts_isr.lock import run_lock
from ts_isr.log import DeviceFiles, current_device, escape, log, log_bug
from ts_isr.monitoring import note_policy, recorded_run

PROG = "upload_rules"


@dataclass(frozen=True)
class FleetOptions:
    inventory: Path
    workers: int
    limit: str | None = None
    filters: tuple[str, ...] = ()
    shard: str | None = None
    dry_run: bool = False
    force: bool = False
    trust_host_key: bool = False
    print_policy: bool = False


def device_log(shared: Config, name: str) -> Path:
    """Each device's seed-style log: ``fleet/<host>.log`` beside the fleet's own tsoutput."""
    return Path(shared.tsoutput).parent / "fleet" / f"{safe_name(name)}.log"


def fleet_of(shared: Config, options: FleetOptions) -> tuple[Any, list[FleetDevice], list[Outcome]]:
    """The selected hosts: Nornir narrowed to the good ones, their devices, and the bad hosts' lines."""
    nornir = select(
        open_inventory(options.inventory, options.workers), options.limit, options.filters, options.shard
    )
    devices, bad = fleet_devices(nornir.inventory.hosts.values(), read_values(shared.path), shared.path)
    devices, same = unique_devices(devices)
    bad += same
    for host in bad:
        log.error(host.reason)
    good = {device.name for device in devices}
    return (
        nornir.filter(filter_func=lambda host: host.name in good),
        devices,
        [Outcome(host.name, "failed", reason=host.reason, kind="inventory") for host in bad],
    )


class DeviceLogError(TsError):
    """A device's own log file cannot be written: that device is not touched, the others run."""

    kind = "log"


def open_device_log(files: DeviceFiles, shared: Config, name: str) -> None:
    """Open ``name``'s log in ``files``, or fail that device alone in one line: an unwritable log
    (a planted link, another user's file, a name too long for the file system) is no reason to
    lose the other devices, nor to change a device whose dialogue could not be kept."""
    path = device_log(shared, name)
    try:
        files.open(name, path)
    except TsError as exc:  # refused by the trust checks: the message names the file and the fix
        raise DeviceLogError(f"its log file cannot be used: {exc}; the device was not touched") from None
    except OSError as exc:
        fix = (
            "give the host a shorter name in the inventory"
            if exc.errno == errno.ENAMETOOLONG
            else f"fix {escape(str(path.parent))} or its permissions"
        )
        raise DeviceLogError(
            f"cannot open its log file {escape(str(path))}: {exc.strerror}; {fix}; the device was not touched"
        ) from None


def fetch_all(devices: list[FleetDevice], record: bool) -> dict[tuple, FetchedLists | TsError]:
    """One fetch per distinct list settings, each whole or failed (a failure is kept, not raised)."""
    fetched: dict[tuple, FetchedLists | TsError] = {}
    for device in devices:
        key = list_settings(device.config)
        if key in fetched:
            continue
        try:
            fetched[key] = fetch_lists_of(device.config)
            settle_servers(device.config, fetched[key], record)
        except TsError as exc:
            log.error(f"the lists of {device.config.block_list} could not be fetched: {exc}")
            fetched[key] = exc
    return fetched


class Progress:
    """A Nornir processor: ``N of M devices done, F failed`` on a terminal as devices finish."""

    def __init__(self, total: int, failed_already: int) -> None:
        self.total, self.done, self.failed = total, 0, failed_already
        self.shown = sys.stderr.isatty()
        self.lock = threading.Lock()

    def task_instance_completed(self, task: Any, host: Any, result: Any) -> None:
        with self.lock:
            self.done += 1
            self.failed += bool(result.failed)
            if self.shown:
                print(
                    f"\r{progress(self.done, self.total, self.failed)} ", end="", file=sys.stderr, flush=True
                )

    def task_completed(self, task: Any, result: Any) -> None:
        if self.shown:
            print(file=sys.stderr)

    # Nornir calls every hook of its Processor protocol; these have nothing to show.
    def task_started(self, task: Any) -> None: ...
    def task_instance_started(self, task: Any, host: Any) -> None: ...
    def subtask_instance_started(self, task: Any, host: Any) -> None: ...
    def subtask_instance_completed(self, task: Any, host: Any, result: Any) -> None: ...


def one_device(
    device: FleetDevice,
    fetched: FetchedLists | TsError,
    pacer: Pacer,
    options: FleetOptions,
    shared: Config,
    files: DeviceFiles,
) -> Outcome:
    """Build and synchronise one device, under its lock; any failure is this device's alone."""
    token = current_device.set(device.name)
    started = time.monotonic()
    opened = False
    try:
        open_device_log(files, shared, device.name)
        opened = True
        outcome = _sync_one(device, fetched, pacer, options)
    except TsError as exc:
        log.error(str(exc))
        outcome = Outcome(device.name, "failed", reason=str(exc).splitlines()[0], kind=exc.kind)
    except Exception as exc:  # a bug must not stop the other devices; its trace is in the logs
        outcome = internal_failure(device.name, exc)
    finally:
        if opened:
            files.close_file(device.name)
        current_device.reset(token)
    return replace(outcome, seconds=time.monotonic() - started)


def internal_failure(name: str, exc: BaseException | None) -> Outcome:
    """A bug costs its device alone: one line, its trace in the device's log (None: no result)."""
    if exc is None:
        reason = "internal error: the device's task gave no result; report it with the log"
        log.error(reason)
    else:
        reason = log_bug(exc, "report it with the log")
    return Outcome(name, "failed", reason=reason, kind="internal")


def outcome_of(name: str, multi: Any) -> Outcome:
    """``name``'s Outcome from Nornir's results.  Anything else (the traceback text Nornir keeps when
    an exception escaped the task, or no result at all) becomes that host's failure in one line, so
    one bug costs one device, never the summary of the others."""
    result = multi[0] if multi else None
    if isinstance(getattr(result, "result", None), Outcome):
        return result.result
    exc = getattr(result, "exception", None)
    token = current_device.set(name)
    try:
        return internal_failure(name, exc if isinstance(exc, BaseException) else None)
    finally:
        current_device.reset(token)


def _sync_one(
    device: FleetDevice, fetched: FetchedLists | TsError, pacer: Pacer, options: FleetOptions
) -> Outcome:
    if isinstance(fetched, TsError):
        raise FetchError(f"its lists could not be fetched ({fetched}); the device was not touched")
    config = device.config
    run = RunOptions(options.dry_run, options.force, options.trust_host_key)
    # A dry run records nothing: no run record, no last good policy.
    recording = nullcontext(None) if options.dry_run else recorded_run(config, device.name, PROG)
    with run_lock(device_lock(config), PROG), recording as record:
        built = build_for(
            fetched,
            config,
            force=options.force,
            record=record is not None,
            families=policy_families(config),
            store_key=device.name,
        )
        if record is not None:
            note_policy(record, built)
        pacer.wait()
        result = sync_device(config, built, run)
        if record is not None:
            note_sync(record, result)
    return Outcome(
        device.name,
        "changed" if result.changed else "unchanged",
        sum(result.added.values()),
        sum(result.removed.values()),
        added_ipv6=result.added_ipv6,
        removed_ipv6=result.removed_ipv6,
    )


def print_policies(devices: list[FleetDevice], fetched: dict[tuple, FetchedLists | TsError]) -> Exit:
    """``--print-policy`` for a fleet: each device's built policy, its lines named by the device."""
    failed = False
    for device in devices:
        lists = fetched[list_settings(device.config)]
        if isinstance(lists, TsError):
            failed = True
            continue
        built = build_for(
            lists, device.config, record=False, families=policy_families(device.config), store_key=device.name
        )
        print("\n".join(f"{device.name}: {line}" for line in built.policy.lines()))
    return Exit.FAILED if failed else Exit.UNCHANGED


def settle_heap() -> tuple[int, int, int]:
    """Before the devices: what the run has built so far (modules, inventory, lists) lasts the whole
    run, so it is frozen out of the collector's walks; and a collection comes every 20,000
    allocations, not every 700, as each device allocates thousands of addresses that reference
    counting frees anyway.  Measured on a 100-device churn run: 1.3 s of its 10 s of CPU went to
    1,741 collections; 0.3 s to 57 after this.  Returns the thresholds to put back."""
    collecting = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    return collecting


def run_fleet(shared: Config, options: FleetOptions, emit: Callable[[str], None] = print) -> Exit:
    """The whole fleet run; the summary table at the end (on a terminal, or when a device failed)."""
    with run_lock(Path(shared.state_dir) / f"{PROG}-fleet.lock", f"{PROG} fleet"):
        nornir, devices, outcomes = fleet_of(shared, options)
        log.info(f"Fleet: {len(devices)} devices selected, {len(outcomes)} refused.")
        fetched = fetch_all(devices, record=not (options.dry_run or options.print_policy))
        if options.print_policy:
            return print_policies(devices, fetched)
        by_name = {device.name: device for device in devices}
        pacer = Pacer(shared.connect_rate)

        def task(task: Any) -> Any:
            from nornir.core.task import Result

            device = by_name[task.host.name]
            lists = fetched[list_settings(device.config)]
            outcome = one_device(device, lists, pacer, options, shared, files)
            return Result(host=task.host, result=outcome, failed=outcome.failed)

        processor = Progress(len(devices), len(outcomes))
        files = DeviceFiles()
        log.addHandler(files)
        collecting = settle_heap()
        try:
            results = (
                nornir.with_processors([processor]).run(task=task, name="ts_isr sync") if devices else {}
            )
        finally:
            log.removeHandler(files)
            gc.unfreeze()
            gc.set_threshold(*collecting)
        outcomes += [outcome_of(name, results.get(name)) for name in by_name]
    failures = [outcome for outcome in outcomes if outcome.failed]
    if failures or sys.stdout.isatty() or options.dry_run:
        for line in summary(outcomes):
            emit(line)
    if failures:
        return Exit.FAILED
    return Exit.CHANGED if any(outcome.result == "changed" for outcome in outcomes) else Exit.UNCHANGED
