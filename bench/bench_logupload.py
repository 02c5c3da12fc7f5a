"""Log upload: 200 MB of syslog through loguploadclient's core vs ``gzip -c FILE | curl --data-binary @-``.

Both send the same files to the same local HTTPS server (tests/support), which
inflates everything it receives; the bench reassembles each file from what the
server got (the client's parts by their offsets) and checks it against the
file's own SHA-256, so both must deliver every byte.  Printed: the throughput ratio (target >= 0.8x the
pipeline) and the client's peak memory (target <= 60 MB).  The peak is the
client process's own VmHWM: on Linux ru_maxrss carries the forking parent's
peak over exec, so it would report the bench's size, not the client's.
Usage: bench_logupload.py [--mb 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.https_server import LogServer, Upload  # noqa: E402

FILES = 4
TARGET_RATIO = 0.8
TARGET_PEAK_MB = 60

CLIENT = """
import json, sys, time
from pathlib import Path
from ts_isr.logupload import Destination, Device, LogSpool, Uploader, upload_logs
logfile, state, url, ca = sys.argv[1:5]
start = time.perf_counter()
spool = LogSpool(Path(logfile), Path(state), reopen_command=None)
with Uploader(Destination(url, ca_bundle=Path(ca)), Device("198.51.100.7", "192.0.2.1")) as uploader:
    report = upload_logs(spool, uploader, keep_days=0)
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - start, "bytes": report.bytes_sent, "peak_kb": peak_kb}))
"""


def make_logs(directory: Path, total_mb: int) -> list[Path]:
    """``FILES`` syslog files of ACL hits, varied enough to compress like real ones."""
    directory.mkdir(parents=True)
    paths = []
    per_file = total_mb * 1_000_000 // FILES
    for index in range(FILES):
        path = directory / f"device.log.{FILES - index}"
        with path.open("wb") as out:
            written, n = 0, index * 10_000_000
            while written < per_file:
                block = b"".join(
                    b"Nov 21 12:%02d:%02d 192.0.2.1 %d: %%SEC-6-IPACCESSLOGP: list 101 denied tcp "
                    b"203.0.%d.%d(%d) -> 198.51.100.%d(443), %d packets\n"
                    % (
                        i // 60 % 60,
                        i % 60,
                        i,
                        i * 7 % 256,
                        i * 13 % 256,
                        1024 + i * 31 % 60000,
                        i % 200,
                        i % 9 + 1,
                    )
                    for i in range(n, n + 10_000)
                )
                out.write(block)
                written += len(block)
                n += 10_000
        os.utime(path, (time.time() - 3600 * (FILES - index),) * 2)
        paths.append(path)
    return paths


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def reassembled_hashes(uploads: list[Upload], whole_files: bool) -> list[str]:
    """SHA-256 of every file as the server received it, oldest first.

    The pipeline sends one file a request; the client sends parts named by
    ``file_name`` and ``offset``, which must follow each other with no gap or overlap.
    """
    if whole_files:
        return [hashlib.sha256(upload.data or b"").hexdigest() for upload in uploads]
    files: dict[str, list[Upload]] = {}
    for upload in uploads:
        files.setdefault(upload.fields["file_name"], []).append(upload)
    hashes = []
    for name, parts in files.items():
        digest, end = hashlib.sha256(), 0
        for part in sorted(parts, key=lambda u: int(u.fields["offset"])):
            assert int(part.fields["offset"]) == end, f"{name}: a gap or overlap at byte {end}"
            digest.update(part.data or b"")
            end += part.size
        hashes.append(digest.hexdigest())
    return hashes


def run_pipeline(paths: list[Path], server: LogServer) -> float:
    start = time.perf_counter()
    for path in paths:
        subprocess.run(
            f"gzip -c {path} | curl -sS --fail --cacert {server.ca_file} -H 'Content-Type: application/gzip' "
            f"--data-binary @- -o /dev/null {server.url}",
            shell=True,
            check=True,
        )
    return time.perf_counter() - start


def run_client(paths: list[Path], work: Path, server: LogServer) -> tuple[float, dict]:
    """Hard links named as logrotate's files, adopted and sent by the client in its own process."""
    logdir = work / "log"
    logdir.mkdir(parents=True)
    for path in paths:
        os.link(path, logdir / path.name)
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT,
            str(logdir / "device.log"),
            str(work / "state"),
            server.url,
            str(server.ca_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args, _ = parser.parse_known_args()  # scripts/bench.sh passes its arguments to every bench
    with tempfile.TemporaryDirectory(prefix="bench-logupload.") as tmp:
        paths = make_logs(Path(tmp) / "logs", args.mb)
        total = sum(p.stat().st_size for p in paths)
        expected = [sha256_of(p) for p in paths]  # oldest first, the order both send in
        pipeline_times, client_times, peaks = [], [], []
        with LogServer(Path(tmp) / "server") as server:
            for round_ in range(args.rounds):
                server.uploads.clear()
                pipeline_times.append(run_pipeline(paths, server))
                assert reassembled_hashes(server.uploads, True) == expected, "the pipeline lost data"
                server.uploads.clear()
                seconds, report = run_client(paths, Path(tmp) / f"client{round_}", server)
                assert reassembled_hashes(server.uploads, False) == expected, "the client lost data"
                assert report["bytes"] == total, f"the client reports {report['bytes']} of {total} bytes"
                server.uploads.clear()
                client_times.append(seconds)
                peaks.append(report["peak_kb"] / 1024)
    pipeline, client = min(pipeline_times), min(client_times)
    print(f"logs: {total / 1e6:.0f} MB in {FILES} files, best of {args.rounds} rounds")
    print(f"gzip|curl pipeline: {pipeline:.2f} s ({total / 1e6 / pipeline:.0f} MB/s)")
    print(f"loguploadclient:    {client:.2f} s ({total / 1e6 / client:.0f} MB/s, process start included)")
    ratio, peak = pipeline / client, max(peaks)
    print(f"throughput ratio client/pipeline: {ratio:.2f}x (target >= {TARGET_RATIO:.2f}x)")
    print(f"client peak memory (VmHWM): {peak:.1f} MB (target <= {TARGET_PEAK_MB} MB)")
    met = ratio >= TARGET_RATIO and peak <= TARGET_PEAK_MB
    print("targets met" if met else "targets NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
