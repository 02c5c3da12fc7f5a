"""``nft -f -`` within the host's memory: refused with one line when it cannot fit, bounded when it runs.

nft parses a whole transaction into memory before the kernel sees it, and its
peak grows with the elements (measured here with nft 1.0.6, see
docs/tsadmin.md): on the seed's minimum host (1 GB) a million interval elements
would not fit.  The estimate refuses a load that cannot fit in MemAvailable;
the address-space limit makes an nft that grows past it fail with ENOMEM
instead of the kernel's OOM killer choosing a victim.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from collections.abc import Iterable

from ts_isr.errors import DeviceError
from ts_isr.linux.system import deadline, tool_path
from ts_isr.log import escape, log
from ts_isr.tools import child_env

# nft 1.0.6's peak resident memory for one transaction of /32 interval elements, measured here:
# 79 MB at 50,000, 379 MB at 250,000, 1,503 MB at 1,000,000 (about 1,570 bytes each, plus ~5 MB).
# Rounded up for the estimate; its address space is within 1% of its resident size.
BASE_BYTES = 32 << 20
BYTES_PER_ELEMENT = 1600
MIN_BOUND = 256 << 20
MEMINFO = "/proc/meminfo"
NFT_TIMEOUT = 600.0  # loading 1M interval elements takes about a minute


def available_bytes(meminfo: str) -> int:
    """MemAvailable from ``/proc/meminfo`` text."""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise DeviceError("cannot read MemAvailable from /proc/meminfo")


def estimate(entries: int) -> int:
    return BASE_BYTES + BYTES_PER_ELEMENT * entries


def check_fits(entries: int, available: int) -> None:
    """One line refusing a load nft cannot make in ``available`` bytes, before anything is sent."""
    needed = estimate(entries)
    if needed > available:
        fits = max(0, (available - BASE_BYTES) // BYTES_PER_ELEMENT)
        raise DeviceError(
            f"loading {entries} entries with nft needs about {needed >> 20} MB and this host has "
            f"{available >> 20} MB available: lower max_policy_size to {fits} or less, or use "
            "firewall = iptables (ipset needs far less memory); nothing was changed"
        )


def run_nft(
    script: Iterable[str], entries: int, meminfo_path: str = MEMINFO, timeout: float = NFT_TIMEOUT
) -> int:
    """Run ``nft -f -`` on ``script`` within the memory bound; returns nft's peak resident bytes (at
    most: the kernel counts the parent's resident pages at the fork too)."""
    with open(meminfo_path, encoding="ascii") as handle:
        available = available_bytes(handle.read())
    check_fits(entries, available)
    limit = min(max(2 * estimate(entries), MIN_BOUND), available)

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    text = "".join(script).encode()
    process = subprocess.Popen(
        [tool_path("nft"), "-f", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=bounded,  # one setrlimit in the child before exec
        env=child_env(),
    )
    assert process.stdin is not None and process.stderr is not None
    with deadline(process, "nft", timeout):  # an nft that stops reading, or never ends, is killed
        with contextlib.suppress(BrokenPipeError):  # nft stopped early: its status and error line say why
            process.stdin.write(text)
        process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss * 1024  # at most: a child's count starts at its parent's size at the fork
    log.debug(f"nft peak memory: at most {peak >> 20} MB for {entries} entries (bound {limit >> 20} MB)")
    if process.returncode != 0:
        first = next((line for line in stderr.splitlines() if line.strip()), "no error text")
        if "memory" in stderr.lower():
            first += f" (nft hit its memory bound of {limit >> 20} MB)"
        raise DeviceError(f"nft -f failed: {escape(first)}; nothing was changed (one transaction)")
    return peak
