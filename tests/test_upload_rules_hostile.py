"""upload_rules against a hostile lab device (issue 16): every read and push is bounded, nothing is lost.

Each run is a child process (as cron starts it), so its wall time and peak memory are measured; the
figures print with ``pytest -s``.  Bounds are asserted with wide margins: the machine is loaded.
"""

from __future__ import annotations

import pytest

from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import lab_device
from tests.support.upload import ZONE, Run, expected_members, odd_hosts
from ts_isr.errors import Exit

POLICY = odd_hosts("198.18", 3)
USERS = [f"host 10.9.{n // 200}.{n % 200 + 1}" for n in range(40)]  # a user's own members, 40 lines
BOUNDED = {"ssh_timeout": 5, "max_policy_size": 100}  # a read may take 5 s + 1,200 lines x 2 ms
WALL_LIMIT = 40.0  # the old code was still running after 180 s
MEMORY_LIMIT_MB = 250.0  # the old code: 456 MB after 25 s of flood, 1.16 GB for a million members


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    server.add_zone(ZONE, make_zone_records(a={"small": POLICY}))
    server.start()
    yield server
    server.stop()


def failed_within_bounds(run: Run, case: str, said: str) -> str:
    """Run once against the hostile device: it fails with one line saying ``said``, within the bounds."""
    result = run.measured(timeout=WALL_LIMIT + 20, block_list=f"small.{ZONE}", **BOUNDED)
    log_size = (run.dir / "tsoutput.log").stat().st_size
    with run.capsys.disabled():
        figures = f"{result.seconds:.1f} s, peak {result.peak_mb:.0f} MB, log {log_size} B"
        print(f"\n{case}: exit {result.code}, {figures}\n{case}: {result.out.strip().splitlines()[-1]}")
    assert result.code == Exit.FAILED, result.out[-2000:]
    errors = [line for line in result.out.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and said in errors[0] and run.device.host in errors[0], result.out[-2000:]
    assert result.seconds < WALL_LIMIT and result.peak_mb < MEMORY_LIMIT_MB
    assert log_size < 1_000_000, "what is logged of a device's replies is capped"
    return errors[0]


@pytest.mark.parametrize(
    "case, knobs, said",
    [
        ("trickle", {"trickle_ms": 1000}, "still answering after 7 s while reading group"),
        ("flood", {"flood": True}, "sent more than 142336 bytes while reading group"),
        ("million", {"extra_members": 1_000_000}, "sent more than 142336 bytes while reading group"),
    ],
)
def test_a_read_that_goes_on_fails_in_time_and_memory(tmp_path, knot, capsys, case, knobs, said):
    with lab_device(tmp_path, preload={"threatstop-block": USERS}, **knobs) as device:
        run = Run(tmp_path, knot, device, capsys)
        failed_within_bounds(run, case, said)
        assert device.running() == {"threatstop-block": USERS}
        assert "configure terminal" not in device.commands() and run.owned() == ""


@pytest.mark.parametrize(
    "case, knobs, said",
    [
        ("babble", {"babble": True}, "bytes while pushing 3 lines"),
        ("black hole", {"black_hole": True}, "dropped input while pushing 3 lines"),
    ],
)
def test_a_push_that_never_ends_fails_and_the_next_run_repairs(tmp_path, knot, capsys, case, knobs, said):
    with lab_device(tmp_path, preload={"threatstop-block": USERS}, **knobs) as device:
        run = Run(tmp_path, knot, device, capsys)
        failed_within_bounds(run, case, said)
        assert set(USERS) <= set(device.running()["threatstop-block"]), "the user's members stay"
        assert not set(USERS) & set(run.owned().split())
    with lab_device(tmp_path, preload=None, state_dir=device.state_dir) as healthy:
        again = Run(tmp_path, knot, healthy, capsys)
        assert again(block_list=f"small.{ZONE}", **BOUNDED)[0] == Exit.CHANGED
        assert again.group() == set(USERS) | expected_members("ios", POLICY)


def test_a_prompt_inside_the_output_fails_the_read_and_nothing_is_claimed(tmp_path, knot, capsys):
    """The issue's case: a fake prompt hid the user's last two members (also in the policy), which the
    tool then added to its ownership record, so that a later honest run removed the user's lines."""
    mine = [*USERS, f"host {POLICY[0]}", f"host {POLICY[2]}"]
    with lab_device(tmp_path, preload={"threatstop-block": mine}, fake_prompt=True) as device:
        run = Run(tmp_path, knot, device, capsys)
        failed_within_bounds(run, "fake prompt", "went on printing after its prompt")
        assert device.running() == {"threatstop-block": mine}
        assert run.owned() == "" and not list(run.dir.joinpath("state").glob("pending-*"))
