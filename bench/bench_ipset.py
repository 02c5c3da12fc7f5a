"""Each Linux firewall backend loading 200,000 entries, against the raw tool loading the same entries.

Everything runs as root inside a network namespace this bench creates, one
fresh process per case (so each peak memory is that case's own):

- raw ``ipset restore`` of a prepared file (one ``create``, 200,000 ``add``);
- raw ``nft -f`` of a prepared file (a table with one interval set, the same entries);
- per backend (``iptables``: ipset + iptables; ``nftables``): the first load through the backend
  interface (render, load, rules), then an update with 1% churn (2,000 entries replaced) by a new
  backend, as a new ``tsadmin update`` process would (it has the boot state and the last good policy
  its fetch read), then that update's boot state saved (printed apart: it follows the change).
  Each policy is made as an update makes it: built from the fetched addresses by ``build_policy``,
  and the last good one read back from its file by ``policystore.parse``.  (Built otherwise, say
  sorted from addresses drawn at random, its entries lie scattered in memory, and every walk over
  them costs about four times as much as over the ones an update walks.)

Targets: first load at most 1.5x its raw tool; a 1% ipset churn at most 0.1x its first load.
Each ratio is the median of the rounds' own ratios (a round runs a backend right after its raw tool),
with the lowest and highest; times are printed as medians of ``--rounds``, with two peaks: the
case's Python process (``ru_maxrss``), and the whole case, process and the tools it ran together
(``memory.max_usage_in_bytes`` of a memory cgroup made for it; a tool's own ``ru_maxrss`` would
count its parent's pages, copied at fork).
Usage: bench_ipset.py [--entries 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.netns import NetnsPair  # noqa: E402
from ts_isr.linux.backend import make_backend  # noqa: E402
from ts_isr.linux.firewall import ChainSpec, LastApplied  # noqa: E402
from ts_isr.policy import ListBuilder, Policy, build_policy, ipv4_value  # noqa: E402
from ts_isr.policystore import parse, render  # noqa: E402

LOAD_TARGET = 1.5
CHURN_TARGET = 0.1
# Each backend right after its raw tool: a round's ratio compares runs made under the same load.
CASES = ("raw-ipset", "iptables", "raw-nft", "nftables")
PAIRS = (("iptables", "raw-ipset"), ("nftables", "raw-nft"))


def built(hosts: list[str]) -> Policy:
    """The block list of ``hosts`` as a fetch builds it: A-record addresses through a ListBuilder."""
    block = ListBuilder()
    block.add_v4_hosts(ipv4_value(host) for host in hosts)  # type: ignore[misc]
    policy, _ = build_policy(block.ranges(), ListBuilder().ranges())
    return policy


def scattered_hosts(count: int, seed: int) -> list[str]:
    """Distinct hosts far apart: aggregation cannot shrink them, as in a real block list."""
    rng = random.Random(seed)
    picked = rng.sample(range(0x0B000000, 0x0B000000 + (1 << 26)), count)
    return [str(ipaddress.IPv4Address(a << 1)) for a in picked]


CGROUP = Path("/sys/fs/cgroup/memory")


def own_peak() -> dict[str, float]:
    """This process's peak resident memory, in MB."""
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_raw(argv: list[str], text: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip().splitlines()[0][:300]}")
    return elapsed


def one_case(case: str, entries: int) -> dict[str, float]:
    """One case in this (fresh) process, inside the namespace: its timings and peaks."""
    hosts = scattered_hosts(entries, seed=1)
    if case == "raw-ipset":
        text = f"create rawbench hash:ip family inet hashsize {1 << 18} maxelem {1 << 19}\n"
        return {"load": run_raw(["ipset", "restore"], text + "".join(f"add rawbench {h}\n" for h in hosts))}
    if case == "raw-nft":
        elements = ", ".join(hosts)
        declared = "type ipv4_addr; flags interval"
        text = f"table inet rawbench {{\n set s {{\n  {declared}\n  elements = {{ {elements} }}\n }}\n}}\n"
        return {"load": run_raw(["nft", "-f", "-"], text)}
    first = built(hosts)
    churned = built(list(set(hosts[entries // 100 :]) | set(scattered_hosts(entries // 100, 2))))
    backend = make_backend(case, "TB")
    start = time.perf_counter()
    backend.apply(ChainSpec(), first, lambda: None)
    load = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="bench_ipset.") as folder:
        state = Path(folder) / "state"
        backend.save(state)
        # An update is a new process: nothing of the first load is kept but the boot state, and the
        # last good policy that the update's fetch has read for its shrink guard.
        previous = parse(render(first, datetime.now(UTC))).policy
        update = make_backend(case, "TB")
        start = time.perf_counter()
        update.apply(ChainSpec(), churned, lambda: None, LastApplied(previous, state))
        churn = time.perf_counter() - start
        start = time.perf_counter()
        update.save(state)
        save = time.perf_counter() - start
    return {"load": load, "churn": churn, "churn_save": save}


def measure(case: str, entries: int, pair: NetnsPair) -> dict[str, float]:
    """``case`` in a fresh process in the namespace and a memory cgroup of its own, then the namespace
    emptied again."""
    group = CGROUP / f"bench_ipset_{os.getpid()}_{case}"
    group.mkdir()
    try:
        argv = ["ip", "netns", "exec", pair.host, sys.executable, __file__, "--case", case]
        done = subprocess.run(
            [*argv, "--entries", str(entries)],
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid())),
        )
        whole = int((group / "memory.max_usage_in_bytes").read_text()) / (1 << 20)
    finally:
        group.rmdir()
    if done.returncode != 0:
        raise SystemExit(f"{case}: {done.stdout}{done.stderr}")
    for cleanup in (["nft", "flush", "ruleset"], ["iptables", "-F"], ["iptables", "-X"]):
        pair.run(cleanup)
    pair.run(["ipset", "destroy"])
    return {**json.loads(done.stdout.splitlines()[-1]), "whole_mb": whole}


def ratios(
    measured: list[dict[str, float]], against: list[dict[str, float]], key: str, base: str
) -> list[float]:
    """Round by round: on a shared machine a slow minute slows both runs of a round alike."""
    return [m[key] / a[base] for m, a in zip(measured, against, strict=True)]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}x (rounds {min(values):.3f}x to {max(values):.3f}x)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    if args.case:
        print(json.dumps({**one_case(args.case, args.entries), **own_peak()}))
        return 0
    if os.geteuid() != 0:
        sys.exit("bench_ipset needs root: it creates a network namespace with ipset, iptables and nft in it")
    results: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="bench_ipset."), NetnsPair(()) as pair:
        for _ in range(args.rounds):
            for case in CASES:
                results[case].append(measure(case, args.entries, pair))

    def median(case: str, key: str) -> float:
        return statistics.median(result[key] for result in results[case])

    print(f"entries: {args.entries}, rounds: {args.rounds} (medians; peaks: Python process / whole case)")
    for case in CASES:
        memory = f"peak {median(case, 'peak_mb'):.0f} MB / {median(case, 'whole_mb'):.0f} MB"
        churn = ""
        if "churn" in results[case][0]:
            saved = median(case, "churn_save")
            churn = f", 1% churn {median(case, 'churn'):.3f} s (then the boot state {saved:.3f} s)"
        print(f"{case:10} first load {median(case, 'load'):.3f} s{churn}; {memory}")
    met = True
    for backend, raw in PAIRS:
        loads = ratios(results[backend], results[raw], "load", "load")
        churns = ratios(results[backend], results[backend], "churn", "load")
        print(f"{backend}: first load {spread(loads)} {raw} (target <= {LOAD_TARGET}x)")
        wholes = [(r["churn"] + r["churn_save"]) / r["load"] for r in results[backend]]
        print(f"{backend}: 1% churn {spread(churns)} its first load; with its boot state {spread(wholes)}")
        met &= statistics.median(loads) <= LOAD_TARGET
    churn_ratio = statistics.median(ratios(results["iptables"], results["iptables"], "churn", "load"))
    met &= churn_ratio <= CHURN_TARGET
    print(
        f"targets {'met' if met else 'NOT met'} (ipset churn {churn_ratio:.3f}x, target <= {CHURN_TARGET}x)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
