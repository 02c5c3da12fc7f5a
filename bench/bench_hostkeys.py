"""Issue 5's benchmark: fetching the device's SSH host key, as a ratio against OpenSSH's ssh-keyscan.

Setup fetches the key with a key exchange only (no login), as ``ssh-keyscan``
does.  Both ask the same lab device in the same run, alternately, so a busy
machine slows both alike.  Ours is a call inside a running process (setup is
already running when it fetches the key), so ssh-keyscan's own start-up is
taken off its time: ``ssh-keyscan`` asking a closed port, measured in the same
rounds.  Target: <= 2x ssh-keyscan's work (medians of the rounds).

Run: ``.venv/bin/python bench/bench_hostkeys.py [--rounds N]`` (or scripts/bench.sh).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.lab import lab_device  # noqa: E402
from tests.support.tools import free_port  # noqa: E402
from ts_isr.hostkeys import fetch_host_key, fingerprint  # noqa: E402

TARGET_RATIO = 2.0


def keyscan(keyscan_bin: str, host: str, port: int, check: bool = True) -> str:
    done = subprocess.run(
        [keyscan_bin, "-T", "30", "-t", "ed25519", "-p", str(port), host],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )
    return done.stdout


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    keyscan_bin = shutil.which("ssh-keyscan")
    if keyscan_bin is None:
        print("ssh-keyscan is not installed (Debian: openssh-client)")
        return 1
    ours, theirs, startups = [], [], []
    closed_port = free_port()
    with tempfile.TemporaryDirectory() as tmp, lab_device(Path(tmp)) as dev:
        key = fetch_host_key(dev.host, dev.port, 30)  # warm both paths once
        assert key.get_base64() in keyscan(keyscan_bin, dev.host, dev.port), "both see the same key"
        for _ in range(args.rounds):
            ours.append(timed(lambda: fetch_host_key(dev.host, dev.port, 30)))
            theirs.append(timed(lambda: keyscan(keyscan_bin, dev.host, dev.port)))
            startups.append(timed(lambda: keyscan(keyscan_bin, dev.host, closed_port, check=False)))
    our_ms, their_ms, startup_ms = (statistics.median(times) * 1000 for times in (ours, theirs, startups))
    ratio = our_ms / (their_ms - startup_ms)
    print(f"host key {fingerprint(key)}: {args.rounds} rounds (medians)")
    print(f"fetch_host_key (in-process call)            {our_ms:7.1f} ms")
    print(f"ssh-keyscan (whole process)                 {their_ms:7.1f} ms")
    print(f"ssh-keyscan start-up (asking a closed port) {startup_ms:7.1f} ms")
    print(f"ratio {ratio:.2f}x ssh-keyscan without its start-up (target <= {TARGET_RATIO}x)")
    met = ratio <= TARGET_RATIO
    print("targets met" if met else "targets NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
