"""How tsadmin runs a host tool: one line when it fails, a bounded wait when it hangs."""

from __future__ import annotations

import subprocess

import pytest

from ts_isr.errors import DeviceError
from ts_isr.linux.system import run_tool, start_tool, stream_tool


def test_a_failing_tool_is_one_line_with_its_first_error() -> None:
    with pytest.raises(DeviceError) as failed:
        run_tool(["sh", "-c", "echo; echo 'no such set' >&2; echo 'more' >&2; exit 3"])
    assert str(failed.value) == "sh -c failed: no such set"


def test_a_tool_that_hangs_is_stopped_at_its_timeout() -> None:
    started = start_tool(["sh", "-c", "exec sleep 59.91"], timeout=1)
    with pytest.raises(DeviceError, match=r"^sh did not finish in 1s; check the host's load$"):
        started()
    alive = subprocess.run(["pgrep", "-f", "^sleep 59.91$"], capture_output=True, text=True, check=False)
    assert alive.stdout == "", "the hung tool was killed, not left behind"


def test_a_started_tool_takes_its_input_and_gives_its_output_when_asked() -> None:
    started = start_tool(["tr", "a-z", "A-Z"], "ipset list -t\n")
    assert started() == "IPSET LIST -T\n"


def test_a_tool_whose_child_holds_its_output_open_is_still_stopped_at_its_timeout() -> None:
    """The wait is bounded by the timeout, not by the pipes: a child the tool left behind may keep
    them open for a minute."""
    started = start_tool(["sh", "-c", "sleep 59.92 & wait"], timeout=1)
    try:
        with pytest.raises(DeviceError, match=r"^sh did not finish in 1s"):
            started()
        left = subprocess.run(["pgrep", "-f", "^sleep 59.92$"], capture_output=True, text=True, check=False)
        assert left.stdout.strip(), "returned while the child still held the pipes open"
    finally:
        subprocess.run(["pkill", "-f", "^sleep 59.92$"], check=False)


def test_a_batch_tool_that_stops_reading_is_stopped_at_its_timeout() -> None:
    """``ipset restore`` stuck in the kernel, say: the batch fills the pipe, and the run still ends."""
    chunks = ("x" * 65536 + "\n" for _ in range(64))  # far more than a pipe holds
    with pytest.raises(DeviceError, match=r"^sh did not finish in 1s; check the host's load$"):
        stream_tool(["sh", "-c", "exec sleep 59.93"], chunks, timeout=1)
    left = subprocess.run(["pgrep", "-f", "^sleep 59.93$"], capture_output=True, text=True, check=False)
    assert left.stdout == "", "the stuck tool was killed"
