"""Issue 11's benchmark: a fleet of lab devices against one device, measured in the same run.

200 lab devices served by one lab process (40 ms round trip, 1 ms per line), a
2,000-entry policy from Knot: the initial load, then a run with 1% churn, for
``--workers`` 1, 10, 25 and 50, each on a fresh fleet.  Each is the whole
``upload_rules --inventory`` process (its peak memory from ``wait4``); one device
alone (``upload_rules`` on the same kind of device) is measured first.

Reported: wall time, devices a minute, peak memory, and parallel efficiency =
(one device's time x devices) / (fleet time x workers).  Targets: the 1%-churn
run at 25 workers within 12x one device's churn (efficiency >= 0.67); peak
memory that grows with the workers, not the devices (<= 400 MB at 50 workers).

    .venv/bin/python bench/bench_fleet.py [--devices 200] [--entries 2000] [--workers 1 10 25 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from tests.support.knot import KnotServer, make_zone_records  # noqa: E402
from tests.support.lab import lab_device, lab_fleet  # noqa: E402
from tests.support.upload import odd_hosts  # noqa: E402

ZONE = "bench.test"
KNOBS = {"rtt_ms": 40, "line_cost_ms": 1}


def run(argv: list[str]) -> tuple[float, float, int]:
    """(seconds, peak MB, exit status) of one upload_rules process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "ts_isr.commands.upload_rules", *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, process.returncode


def write_config(folder: Path, knot: KnotServer, devices: list, single: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "threatstop.conf"
    text = (
        f"block_list=block.{ZONE}\ndns_server=127.0.0.1\nport={knot.port}\nstate_dir={folder}/state\n"
        f"tsoutput={folder}/logs/tsoutput.log\nknown_hosts={folder}/known_hosts\nmetrics_dir=off\n"
        "ssh_timeout=30\nconnect_rate=100\nmax_shrink=1.0\n"
    )
    if single:
        device = devices[0]
        text += f"device={device.host}\nssh_port={device.port}\nusername={device.username}\n"
        text += f"password={device.password}\nenable_pw={device.secret}\npersonality={device.platform}\n"
    config.write_text(text)
    config.chmod(0o600)
    (folder / "known_hosts").write_text("".join(device.known_hosts_line() + "\n" for device in devices))
    if not single:
        hosts = {
            f"r{i:03}": {
                "hostname": device.host,
                "port": device.port,
                "username": device.username,
                "password": device.password,
                "platform": f"cisco_{device.platform}",
                "connection_options": {"netmiko": {"extras": {"secret": device.secret}}},
            }
            for i, device in enumerate(devices)
        }
        (folder / "hosts.yaml").write_text(yaml.safe_dump(hosts))
        (folder / "nornir.yaml").write_text(
            "inventory:\n  plugin: SimpleInventory\n  options:\n    host_file: hosts.yaml\n"
        )
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 10, 25, 50])
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    first = odd_hosts("198.18", args.entries)
    churned = odd_hosts("198.18", args.entries, start=args.entries // 100)  # 1% gone, 1% new
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        knot = KnotServer(work / "knot")
        knot.add_zone(ZONE + ".", make_zone_records(a={"block": first}))
        with knot:

            def policy(hosts: list[str]) -> None:
                knot.add_zone(ZONE + ".", make_zone_records(a={"block": hosts}))
                knot.reload()

            with lab_device(work, **KNOBS) as device:
                config = write_config(work / "single", knot, [device], single=True)
                policy(first)
                one_load, _, status = run(["--config", str(config)])
                policy(churned)
                one_churn, one_peak, status2 = run(["--config", str(config)])
                assert status == status2 == 0, (status, status2)
            print(
                f"one device: initial load {one_load:.2f} s, 1% churn {one_churn:.2f} s, "
                f"peak {one_peak:.0f} MB ({args.entries} entries, RTT {KNOBS['rtt_ms']} ms, "
                f"{KNOBS['line_cost_ms']} ms a line)"
            )
            for workers in args.workers:
                with lab_fleet(work / f"fleet-{workers}", args.devices, **KNOBS) as devices:
                    folder = work / f"run-{workers}"
                    config = write_config(folder, knot, devices, single=False)
                    fleet = ["--config", str(config), "--inventory", str(folder / "nornir.yaml")]
                    fleet += ["--workers", str(workers)]
                    policy(first)
                    load, load_peak, status = run(fleet)
                    policy(churned)
                    churn, churn_peak, status2 = run(fleet)
                if status or status2:
                    print(f"  workers {workers}: the fleet run failed (exit {status}, {status2})")
                    ok = False
                    continue
                for what, seconds, one, peak in (
                    ("initial", load, one_load, load_peak),
                    ("1% churn", churn, one_churn, churn_peak),
                ):
                    efficiency = one * args.devices / (seconds * workers)
                    print(
                        f"  workers {workers:2}, {what:8}: {seconds:7.1f} s, "
                        f"{args.devices / seconds * 60:6.0f} devices/min, peak {peak:5.0f} MB, "
                        f"{seconds / one:5.1f}x one device, parallel efficiency {efficiency:.2f}"
                    )
                if workers == 25:
                    met = churn <= 12 * one_churn
                    print(f"  target: 1% churn at 25 workers <= 12x one device: {'met' if met else 'MISSED'}")
                    ok &= met
                if workers == 50:
                    met = max(load_peak, churn_peak) <= 400
                    print(f"  target: peak memory at 50 workers <= 400 MB: {'met' if met else 'MISSED'}")
                    ok &= met
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
