"""Issue 5's benchmark: fetching the device's SSH host key, as a ratio against OpenSSH's ssh-keyscan.

Setup fetches the key with a key exchange only (no login), as ``ssh-keyscan``
does.  Both ask the same lab device in the same run, alternately, so a busy
machine slows both alike.  Target: <= 2x ssh-keyscan (median of the rounds).

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.lab import lab_device  # noqa: E402
from ts_isr.hostkeys import fetch_host_key, fingerprint  # noqa: E402

TARGET_RATIO = 2.0


def keyscan(keyscan_bin: str, host: str, port: int) -> str:
    done = subprocess.run(
        [keyscan_bin, "-T", "30", "-t", "ed25519", "-p", str(port), host],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    keyscan_bin = shutil.which("ssh-keyscan")
    if keyscan_bin is None:
        print("ssh-keyscan is not installed (Debian: openssh-client)")
        return 1
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp, lab_device(Path(tmp)) as dev:
        key = fetch_host_key(dev.host, dev.port, 30)  # warm both paths once
        assert key.get_base64() in keyscan(keyscan_bin, dev.host, dev.port), "both see the same key"
        for _ in range(args.rounds):
            start = time.perf_counter()
            fetch_host_key(dev.host, dev.port, 30)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            keyscan(keyscan_bin, dev.host, dev.port)
            theirs.append(time.perf_counter() - start)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"host key {fingerprint(key)}: {args.rounds} rounds")
    print(f"fetch_host_key  median {statistics.median(ours) * 1000:7.1f} ms")
    print(f"ssh-keyscan     median {statistics.median(theirs) * 1000:7.1f} ms")
    verdict = "OK" if ratio <= TARGET_RATIO else "SLOWER THAN TARGET"
    print(f"ratio {ratio:.2f}x ssh-keyscan (target <= {TARGET_RATIO}x): {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
