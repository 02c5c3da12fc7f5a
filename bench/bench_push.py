"""The streaming push against the lab ISR: lines a second against the device's limit and netmiko's default.

The lab ISR works 1 ms per line (a limit of 1000 lines/s) behind a 4 KiB input
buffer, at a round trip of 2 ms (LAN) and 40 ms (WAN).  For each: the initial
load of 30,000 entries, then a run with 1% churn, both verified by read-back
(no line lost), and netmiko's default ``send_config_set`` (cmd_verify on) on a
sample of the same lines on the same device.  Everything is reported as ratios
measured in this run.

    .venv/bin/python bench/bench_push.py [--entries 30000] [--sample 150] [--rtt 2 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netmiko import ConnectHandler  # noqa: E402

from tests.support.lab import lab_device  # noqa: E402
from ts_isr.log import setup_logging  # noqa: E402
from ts_isr.policy import Policy  # noqa: E402
from ts_isr.ranges import Cidr  # noqa: E402
from ts_isr.sync import OwnershipStore, SyncOptions, synchronise  # noqa: E402
from ts_isr.targets.cisco import CiscoTarget, Device  # noqa: E402
from ts_isr.targets.cisco.ios import IosDialect  # noqa: E402

LINE_COST_MS = 1.0
INPUT_BUFFER = 4096
GROUP = "threatstop-block"


def hosts(count: int, start: int = 0) -> list[Cidr]:
    """Addresses that never aggregate (every other one), so each is one line."""
    base = 198 << 24 | 18 << 16
    return [Cidr(4, base + 2 * n + 1, 32) for n in range(start, start + count)]


def timed_sync(lab, known_hosts: Path, state: Path, block: list[Cidr]) -> tuple[float, CiscoTarget]:
    device = Device(lab.host, lab.port, lab.username, lab.password, lab.secret, known_hosts, 60.0)
    target = CiscoTarget(IosDialect(), device, {"block": GROUP})
    started = time.perf_counter()
    with target:
        target.connect()
        synchronise(
            target, Policy(tuple(block), ()), OwnershipStore(state, "bench"), SyncOptions({"block": GROUP})
        )
    return time.perf_counter() - started, target


def netmiko_default_rate(lab, lines: list[str]) -> float:
    """netmiko's send_config_set as most scripts call it: cmd_verify on, one round trip per line."""
    conn = ConnectHandler(**lab.netmiko_params())
    conn.enable()
    started = time.perf_counter()
    conn.send_config_set([f"object-group network {GROUP}-netmiko", *lines], read_timeout=600)
    elapsed = time.perf_counter() - started
    conn.disconnect()
    return (len(lines) + 1) / elapsed


def lab_ceiling_rate(lab, lines: list[str]) -> float:
    """What the lab really does a second: every line written at once to a device that cannot drop input.

    The lab sleeps ``line_cost_ms`` per line on an asyncio loop; sleeping and
    the SSH work cost it more than the nominal cost, so its true limit is below 1/cost.
    """
    conn = ConnectHandler(**lab.netmiko_params())
    conn.enable()
    conn.config_mode()
    conn.write_channel(f"object-group network {GROUP}-ceiling\n")
    conn.read_until_pattern(r"network-group\)#")
    started = time.perf_counter()
    conn.write_channel("".join(line + "\n" for line in lines))
    prompt = "(config-network-group)#"
    prompts, tail = 0, ""
    while prompts < len(lines):
        # Only the new chunk is searched (with the tail a prompt may straddle): scanning the whole
        # output every turn would take the CPU the lab needs on a small box and lower its ceiling.
        window = tail + conn.read_channel()
        prompts += window.count(prompt)
        tail = window[-(len(prompt) - 1) :]
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    conn.disconnect()
    return len(lines) / elapsed


def bench(rtt_ms: float, entries: int, sample: int, work: Path) -> dict[str, float]:
    policy = hosts(entries)
    churn = max(1, entries // 100)
    changed = policy[churn:] + hosts(churn, start=entries)
    with lab_device(work, line_cost_ms=LINE_COST_MS, input_buffer=INPUT_BUFFER, rtt_ms=rtt_ms) as lab:
        known_hosts = work / f"known_hosts-{lab.port}"
        known_hosts.write_text(lab.known_hosts_line() + "\n")
        state = work / f"state-{lab.port}"
        first_time, first = timed_sync(lab, known_hosts, state, policy)
        second_time, second = timed_sync(lab, known_hosts, state, changed)
        running = lab.running()[GROUP]
        lost = len({f"host {c.address_text()}" for c in changed} ^ set(running))
        netmiko_rate = netmiko_default_rate(lab, [f"host 203.0.{n // 250}.{n % 250}" for n in range(sample)])
    with lab_device(work, line_cost_ms=LINE_COST_MS, rtt_ms=rtt_ms) as lab:
        ceiling = lab_ceiling_rate(lab, [f"host 203.0.{n // 250}.{n % 250}" for n in range(3000)])
    limit = 1000.0 / LINE_COST_MS
    push_rate = first.pushed / first.push_seconds
    return {
        "rtt_ms": rtt_ms,
        "initial_lines": first.pushed,
        "initial_run_s": first_time,
        "push_lines_per_s": push_rate,
        "of_device_limit": push_rate / limit,
        "lab_ceiling_lines_per_s": ceiling,
        "of_lab_ceiling": push_rate / ceiling,
        "resent": first.resent + second.resent,
        "incremental_lines": second.pushed,
        "incremental_run_s": second_time,
        "incremental_push_s": second.push_seconds,
        "push_time_ratio": second.push_seconds / first.push_seconds,
        "line_ratio": second.pushed / first.pushed,
        "netmiko_default_lines_per_s": netmiko_rate,
        "speedup_vs_netmiko": push_rate / netmiko_rate,
        "lost_lines": lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=30000)
    parser.add_argument("--sample", type=int, default=150, help="lines for netmiko's default (it is slow)")
    parser.add_argument("--rtt", type=float, nargs="+", default=[2.0, 40.0])
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    setup_logging(None, quiet=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        for rtt in args.rtt:
            result = bench(rtt, args.entries, args.sample, Path(tmp))
            print(
                f"RTT {rtt:g} ms: initial {result['initial_lines']} lines in {result['initial_run_s']:.1f} s "
                f"(push {result['push_lines_per_s']:.0f} lines/s = {result['of_device_limit']:.0%} of the "
                f"device's 1000/s), {result['resent']} resent, {result['lost_lines']} lost"
            )
            print(
                f"  the lab's own ceiling (all lines at once, no input buffer): "
                f"{result['lab_ceiling_lines_per_s']:.0f} lines/s; "
                f"the push reaches {result['of_lab_ceiling']:.0%} of it"
            )
            print(
                f"  incremental (1% churn): {result['incremental_lines']} lines, push "
                f"{result['incremental_push_s']:.2f} s = {result['push_time_ratio']:.3f} of the initial push "
                f"for {result['line_ratio']:.3f} of its lines; whole run {result['incremental_run_s']:.1f} s"
            )
            print(
                f"  netmiko send_config_set default: {result['netmiko_default_lines_per_s']:.1f} lines/s; "
                f"streaming is {result['speedup_vs_netmiko']:.1f}x faster"
            )
            ok = result["of_lab_ceiling"] >= 0.8 and result["speedup_vs_netmiko"] >= 10
            ok = ok and result["lost_lines"] == 0
            print(
                "  targets (>=80% of the device's real limit, >=10x netmiko, nothing lost): "
                + ("met" if ok else "NOT MET")
            )
            failed |= not ok
    print("targets NOT met" if failed else "targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
