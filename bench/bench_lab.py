"""How many configuration lines a second the lab device takes, alone and through netmiko (knobs off).

The lab must be much faster than any client (at least 5,000 lines/s through netmiko's
``send_config_set(cmd_verify=False)``) so that benchmarks of the upload measure the client.  The
baseline is the device alone: the same lines written in one go on a bare paramiko shell channel,
timed until the prompt after the last line; netmiko's figures are given as ratios against it.

    .venv/bin/python bench/bench_lab.py [--lines 30000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import paramiko
from netmiko import ConnectHandler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.lab import LabDevice, lab_device

TARGET_LINES_PER_S = 5000


def member_lines(count: int, offset: int) -> list[str]:
    return [f"host 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(offset, offset + count)]


def bare_channel_seconds(device: LabDevice, lines: list[str]) -> float:
    """The device alone: one write of every line on a raw shell, read until the prompt after `end`."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(device.host, device.port, device.username, device.password, look_for_keys=False)
    channel = client.invoke_shell()

    def read_until(marker: bytes) -> None:
        tail = b""
        while marker not in tail:
            tail = (tail + channel.recv(1 << 20))[-256:]

    channel.sendall(f"enable\n{device.secret}\nconfigure terminal\nobject-group network BENCH\n".encode())
    read_until(b"(config-network-group)#")
    started = time.perf_counter()
    channel.sendall(("\n".join(lines) + "\nend\n").encode())
    read_until(b"ISR4331#")
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def netmiko_seconds(device: LabDevice, lines: list[str], joined: bool) -> float:
    """netmiko's send_config_set(cmd_verify=False): one call, lines as a list or as one string.

    global_delay_factor=0 removes netmiko's own 50 ms sleep per line; its final 2 s of silence
    (read_channel_timing) is part of every call and part of the figure.
    """
    conn = ConnectHandler(**device.netmiko_params(), global_delay_factor=0, fast_cli=True)
    conn.enable()
    commands = ["object-group network BENCH", *lines]
    started = time.perf_counter()
    conn.send_config_set("\n".join(commands) if joined else commands, cmd_verify=False, read_timeout=300)
    elapsed = time.perf_counter() - started
    conn.disconnect()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=30000)
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    count = args.lines
    with tempfile.TemporaryDirectory() as tmp, lab_device(Path(tmp), "ios") as device:
        bare = bare_channel_seconds(device, member_lines(count, 0))
        joined = netmiko_seconds(device, member_lines(count, count), joined=True)
        listed = netmiko_seconds(device, member_lines(count, 2 * count), joined=False)
        members = len(device.running()["BENCH"])
    assert members == 3 * count, f"device holds {members} members, expected {3 * count}"
    for label, seconds in (
        ("device alone (bare channel, one write)", bare),
        ("netmiko send_config_set, one string", joined),
        ("netmiko send_config_set, list of lines", listed),
    ):
        rate = count / seconds
        print(f"{label:42s} {count} lines {seconds:6.2f} s {rate:9,.0f} lines/s {seconds / bare:6.1f}x")
    slowest = count / max(joined, listed)
    met = slowest >= TARGET_LINES_PER_S
    print(
        f"targets {'met' if met else 'NOT met'}: through netmiko at least {slowest:,.0f} lines/s "
        f"(target >= {TARGET_LINES_PER_S:,})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
