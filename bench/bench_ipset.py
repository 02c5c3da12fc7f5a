"""tsadmin's install of 200,000 entries vs a raw ``ipset restore`` of the same entries, in a namespace.

Everything runs as root inside a network namespace this bench creates, with
Knot serving the policy on that namespace's loopback:

1. Baseline: ``ipset restore`` of a prepared file (one ``create``, 200,000 ``add``).
2. tsadmin's update path on an empty host: read the sets, plan, one restore
   batch (twins, swap), the chain, the saved state, not counting the DNS
   fetch.  Target: <= 1.5x the baseline.  Also the fetch, and the whole
   ``tsadmin update`` command (a fresh process: start-up, fetch, install).
3. An update with 1% churn (2,000 entries replaced), against the same baseline.

Printed as ratios against the baseline measured in the same run (medians).
Usage: bench_ipset.py [--entries 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.knot import KnotServer, make_zone_records  # noqa: E402
from tests.support.netns import NetnsPair, entered  # noqa: E402
from ts_isr.commands.tsadmin import chain_spec  # noqa: E402
from ts_isr.config import load_config, save_config  # noqa: E402
from ts_isr.fetch import fetch_policy  # noqa: E402
from ts_isr.linux.backend import make_backend  # noqa: E402
from ts_isr.linux.lifecycle import install_policy  # noqa: E402
from ts_isr.linux.settings import LINUX_KEYS, LINUX_TITLE, Paths  # noqa: E402

ZONE = "bench.threatstop.local"
PER_PART = 4000
TSADMIN = ROOT / "bin" / "tsadmin"
TARGET_RATIO = 1.5


def scattered_hosts(count: int, seed: int) -> list[str]:
    """Distinct hosts far apart: aggregation cannot shrink them, as in a real block list."""
    rng = random.Random(seed)
    picked = rng.sample(range(0x0B000000, 0x0B000000 + (1 << 26)), count)
    return [str(ipaddress.IPv4Address(a << 1)) for a in picked]


def policy_zone(hosts: list[str]) -> str:
    parts = {f"blk-{i}": hosts[i * PER_PART : (i + 1) * PER_PART] for i in range(-(-len(hosts) // PER_PART))}
    return make_zone_records(ptr={"blk": [f"{name}.{ZONE}." for name in parts]}, a=parts)


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def raw_restore(pair: NetnsPair, prepared: Path) -> float:
    """The baseline: the kernel's own bulk load of the same entries from a file."""

    def load() -> None:
        with prepared.open() as handle:
            pair.run(["ipset", "restore"], stdin=handle)

    elapsed = timed(load)
    pair.run(["ipset", "destroy", "rawbench"])
    return elapsed


def measure(work: Path, hosts: list[str], rounds: int, entries: int) -> dict[str, float]:
    """Every timing, as the median of ``rounds`` runs, in one namespace with Knot on its loopback."""
    prepared = work / "raw.restore"
    prepared.write_text(
        f"create rawbench hash:ip family inet hashsize {1 << 18} maxelem {1 << 19}\n"
        + "".join(f"add rawbench {host}\n" for host in hosts)
    )
    paths = Paths(work / "root")
    backend = make_backend("iptables", "TS")
    with NetnsPair(()) as pair:
        knot = KnotServer(work)
        knot.add_zone(ZONE, policy_zone(hosts))
        with entered(pair.host):
            knot.start()
        try:
            save_config(
                paths.config,
                {
                    "block_list": f"blk.{ZONE}",
                    "dns_server": "127.0.0.1",
                    "port": knot.port,
                    "max_policy_size": 1_000_000,
                },
                LINUX_KEYS,
                LINUX_TITLE,
            )
            config = load_config(paths.config, LINUX_KEYS)
            spec = chain_spec(config)
            raw, fetches, installs, commands, churns = [], [], [], [], []
            with entered(pair.host):
                for _ in range(rounds):
                    raw.append(raw_restore(pair, prepared))
                    start = time.perf_counter()
                    policy = fetch_policy(config)
                    fetches.append(time.perf_counter() - start)
                    assert len(policy.block) == entries, len(policy.block)
                    installs.append(timed(lambda p=policy: install_policy(backend, spec, p, paths)))
                    backend.remove()
                    command = [sys.executable, str(TSADMIN), "update", "--root", str(paths.root)]
                    commands.append(timed(lambda c=command: pair.run(c)))
                    backend.remove()
                # 1% churn: every round serves the other list of the two (2,000 entries apart) than
                # the one installed, so each update replaces 1%.
                install_policy(backend, spec, fetch_policy(config), paths)
                churned = hosts[: -entries // 100] + scattered_hosts(entries // 100, seed=2)
                for round_ in range(rounds):
                    knot.add_zone(ZONE, policy_zone(churned if round_ % 2 == 0 else hosts))
                    knot.reload()
                    policy = fetch_policy(config)
                    churns.append(timed(lambda p=policy: install_policy(backend, spec, p, paths)))
                backend.remove()
        finally:
            knot.stop()
    return {
        name: statistics.median(values)
        for name, values in (
            ("raw", raw),
            ("install", installs),
            ("fetch", fetches),
            ("command", commands),
            ("churn", churns),
        )
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    rounds, entries = args.rounds, args.entries
    if os.geteuid() != 0:
        sys.exit("bench_ipset needs root: it creates a network namespace with ipset and iptables in it")
    hosts = scattered_hosts(entries, seed=1)
    with tempfile.TemporaryDirectory(prefix="bench_ipset.") as scratch:
        medians = measure(Path(scratch), hosts, rounds, entries)
    base, install, fetch = medians["raw"], medians["install"], medians["fetch"]
    print(f"entries: {entries}, rounds: {rounds} (medians)")
    print(f"raw ipset restore (baseline): {base:.3f} s")
    ratio = install / base
    print(f"tsadmin install, no DNS:      {install:.3f} s  ratio {ratio:.2f}x (target <= {TARGET_RATIO}x)")
    print(f"tsadmin fetch over DNS:       {fetch:.3f} s")
    print(f"install + fetch:              {install + fetch:.3f} s  ratio {(install + fetch) / base:.2f}x")
    print(
        f"`tsadmin update` command:     {medians['command']:.3f} s  "
        f"ratio {medians['command'] / base:.2f}x (fresh process, fetch included)"
    )
    churn = medians["churn"]
    print(f"update with 1% churn:         {churn:.3f} s  ratio {churn / base:.2f}x")
    met = ratio <= TARGET_RATIO
    print(f"targets {'met' if met else 'NOT met'} (install {ratio:.2f}x, target <= {TARGET_RATIO}x)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
