"""nft within the host's memory (issue 15): a load that cannot fit is refused before nft runs, and an nft
that grows past its bound fails with one line, in bounded time, instead of meeting the OOM killer."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

from tests.support.netns import NetnsPair, entered
from tests.support.tools import require_tool
from ts_isr.errors import DeviceError
from ts_isr.linux.firewall import ChainSpec
from ts_isr.linux.nft_backend import render_transaction
from ts_isr.linux.nft_memory import run_nft
from ts_isr.policy import Policy
from ts_isr.ranges import Cidr

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parent.parent


def scattered(count: int) -> tuple[Cidr, ...]:
    rng = random.Random(7)
    return tuple(Cidr(4, a << 1, 32) for a in sorted(rng.sample(range(0x0B000000, 0x0F000000), count)))


def meminfo(tmp_path: Path, available_mb: int) -> str:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal: 1048576 kB\nMemAvailable: {available_mb * 1024} kB\n")
    return str(path)


def test_a_load_that_cannot_fit_is_refused_before_nft_runs(tmp_path: Path) -> None:
    require_tool("nft")
    script = render_transaction("TSM", "ThreatSTOP-TSMblock ", ChainSpec(), Policy(scattered(10), ()))
    with NetnsPair(()) as pair, entered(pair.host):
        with pytest.raises(DeviceError, match="lower max_policy_size to") as refused:
            run_nft(script, 1_000_000, meminfo(tmp_path, 700))  # the seed's 1 GB host, 700 MB free
        assert "nothing was changed" in str(refused.value)
        assert "TSM" not in pair.run(["nft", "list", "ruleset"]).stdout


def test_nft_past_its_bound_fails_in_one_line_and_changes_nothing(tmp_path: Path) -> None:
    """The estimate is told 10 entries for 220,000 (nft needs ~330 MB): the bound (256 MB) must stop it."""
    require_tool("nft")
    policy = Policy(scattered(220_000), ())
    script = list(render_transaction("TSM", "ThreatSTOP-TSMblock ", ChainSpec(), policy))
    with NetnsPair(()) as pair, entered(pair.host):
        start = time.monotonic()
        with pytest.raises(DeviceError, match="memory bound of 256 MB") as failed:
            run_nft(script, 10, meminfo(tmp_path, 4096))
        assert time.monotonic() - start < 120
        assert "\n" not in str(failed.value)
        assert "TSM" not in pair.run(["nft", "list", "ruleset"]).stdout, "one transaction: all or nothing"


LOAD_IN_A_SMALL_PROCESS = """
import random, sys
sys.path.insert(0, {root!r})
from ts_isr.linux.firewall import ChainSpec
from ts_isr.linux.nft_backend import render_transaction
from ts_isr.linux.nft_memory import run_nft
from ts_isr.policy import Policy
from ts_isr.ranges import Cidr
rng = random.Random(7)
hosts = tuple(Cidr(4, a << 1, 32) for a in sorted(rng.sample(range(0x0B000000, 0x0F000000), 20_000)))
script = render_transaction("TSM", "ThreatSTOP-TSMblock ", ChainSpec(), Policy(hosts, ()))
print(run_nft(script, 20_000, {meminfo!r}))
"""


def test_a_load_within_the_bound_reports_nfts_peak(tmp_path: Path) -> None:
    """In a small process of its own: a child's peak counts its parent's pages from the fork, and the
    test runner is large."""
    require_tool("nft")
    code = LOAD_IN_A_SMALL_PROCESS.format(root=str(ROOT), meminfo=meminfo(tmp_path, 4096))
    with NetnsPair(()) as pair:
        done = pair.run([sys.executable, "-c", code])
        assert done.returncode == 0, done.stdout + done.stderr
        peak = int(done.stdout.split()[-1])
        assert 0 < peak < 2 * (32 << 20) + 20_000 * 1600
        assert "table inet TSM" in pair.run(["nft", "-t", "list", "ruleset"]).stdout
