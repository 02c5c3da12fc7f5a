"""The one place tsadmin runs a host tool: argv lists only, batches on stdin, failures as one line."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ts_isr.errors import ConfigError, DeviceError
from ts_isr.log import escape
from ts_isr.tools import child_env, find_tool

STREAM_QUEUE = 8


def tool_path(name: str) -> str:
    """The tool's path, or :class:`DeviceError` saying to install it."""
    path = find_tool(name)
    if path is None:
        raise DeviceError(f"{name} is not installed; install it (apt-get install {name}) and run again")
    return path


def _failed(argv: list[str], stderr: str) -> DeviceError:
    """The tool's first error line, escaped: one line that says what the tool refused."""
    first = next((line for line in stderr.splitlines() if line.strip()), "no error text")
    return DeviceError(f"{' '.join(argv[:2])} failed: {escape(first)}")


def overdue(name: str, timeout: float) -> DeviceError:
    """The one line for a tool cut off at its timeout."""
    return DeviceError(f"{name} did not finish in {timeout:.0f}s; check the host's load")


@contextlib.contextmanager
def deadline(process: subprocess.Popen[Any], name: str, timeout: float) -> Iterator[None]:
    """Kill ``process`` once it outlives ``timeout``: every write to it, read from it and wait for it
    inside then ends, and one line says why (not what the cut-off tool printed, nor a broken pipe)."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(OSError):
            process.kill()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception:
        if not expired.is_set():
            raise
    finally:
        timer.cancel()
    if expired.is_set():
        raise overdue(name, timeout)


def _stop(process: subprocess.Popen[str]) -> None:
    """Kill the tool and reap it, without waiting for its output: a child it left running may hold
    the pipes open for as long as it likes."""
    process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):  # stdin's unwritten rest meets a closed pipe
                pipe.close()


def start_tool(argv: list[str], stdin: str | None = None, *, timeout: float = 600.0) -> Callable[[], str]:
    """Start a host tool now; the returned call waits for it and gives its stdout, or
    :class:`DeviceError` with the tool's first error line.  Started early, a listing runs on another
    core while Python works out what it needs the listing for."""
    command = [tool_path(argv[0]), *argv[1:]]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )

    def finish() -> str:
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise overdue(argv[0], timeout) from None
        except BaseException:  # interrupted: the tool must not outlive the run (and its lock)
            _stop(process)
            raise
        if process.returncode != 0:
            raise _failed(argv, stderr)
        return stdout

    return finish


def run_tool(argv: list[str], stdin: str | None = None, *, timeout: float = 600.0) -> str:
    """Run a host tool; its stdout, or :class:`DeviceError` with the tool's first error line."""
    return start_tool(argv, stdin, timeout=timeout)()


def stream_tool(argv: list[str], chunks: Iterable[str], *, timeout: float = 600.0) -> None:
    """Feed a batch tool (``ipset restore``) while the batch is still being rendered.

    The kernel loads the first lines while Python formats the last ones.  If
    rendering fails part-way, the tool sees the end of its input early and
    stops; batches put every irreversible step (the swaps) at the very end.
    """
    command = [tool_path(argv[0]), *argv[1:]]
    with (
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env()
        ) as process,
        deadline(process, argv[0], timeout),  # a tool that stops reading, or never ends, is killed
    ):
        # A writer thread blocks on the pipe (without the GIL) while this one renders the next chunk.
        pending: queue.Queue[bytes | None] = queue.Queue(maxsize=STREAM_QUEUE)
        writer = threading.Thread(target=_feed, args=(process, pending), daemon=True)
        writer.start()
        try:
            for chunk in chunks:
                pending.put(chunk.encode())
        finally:
            pending.put(None)
            writer.join()
        # The writer closed stdin; a batch tool stops at its first error, so stderr stays small.
        process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read().decode(errors="replace")
    if process.returncode != 0:
        raise _failed(argv, stderr)


def _feed(process: subprocess.Popen[bytes], pending: queue.Queue[bytes | None]) -> None:
    """Write queued chunks to the tool; after a broken pipe keep draining so the renderer never blocks."""
    assert process.stdin is not None
    broken = False
    while (chunk := pending.get()) is not None:
        if not broken:
            try:
                process.stdin.write(chunk)
            except BrokenPipeError:
                broken = True  # the tool stopped early: its exit status and error line say why
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()


def require_root(command: str) -> None:
    """Every tsadmin command changes or reads kernel firewall state: say so at once without root."""
    if os.geteuid() != 0:
        raise ConfigError(f"tsadmin {command} must run as root; run: sudo tsadmin {command}")
