"""The streaming push: configuration lines sent without waiting for each echo, under flow control.

Speed without losing a line: configuration lines are streamed without waiting
for each one, keeping at most a window of bytes the device has not echoed yet
(so its input buffer never overflows).  Each echo is matched to the line sent,
``%`` errors are read per line from the echoed output, and lines the device
dropped (a later line echoed first, or silence answered only by an empty probe
line) are sent again.  The window grows while the device keeps up and shrinks
for good when it drops input.  :class:`Stream` is pure; :func:`push` drives it
on a session's channel.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ts_isr.log import current_device, escape, log
from ts_isr.targets.cisco.bounds import (
    LOG_LINE_BYTES,
    MAX_RESENDS,
    SLACK_BYTES,
    Budget,
    push_budget,
    resend_limit,
)
from ts_isr.targets.cisco.prompts import MAX_LINE_BYTES, PromptSplitter
from ts_isr.targets.cisco.session import ALREADY_DONE, ERROR_LINE, Session


@dataclass(frozen=True)
class LineError:
    line: str
    message: str


_PROBE = ""  # an empty line: its prompt proves that everything sent before it was read

# Queueing the device adds on top of the fastest echo seen before the window stops growing: enough
# to ride out a busy client, far below any input buffer on a device that works a line a millisecond.
_QUEUE_ALLOWANCE = 0.05
_GATHER = 0.005


@dataclass
class Stream:
    """The flow-controlled pipeline of configuration lines; pure, fed with what the device prints.

    ``pending`` holds lines not sent yet (or to send again), ``in_flight``
    what was sent and not yet echoed, in order, with the time it was sent.
    Output is split into records at each configuration prompt: the record's
    first line is the echo of one line, the rest is the device's answer.

    The window (unechoed bytes) grows by each echoed line, like TCP's slow
    start, while echoes come back about as fast as the quickest one seen: once
    lines queue up in the device, a larger window adds no speed, only risk.
    A drop halves it and caps it below where the drop happened.
    """

    pending: deque[str]
    window: int = 1024
    cap: int = 16384
    min_window: int = 128
    in_flight: deque[tuple[str, float]] = field(default_factory=deque)
    in_flight_bytes: int = 0
    fastest: float = float("inf")
    done: int = 0
    resent: int = 0
    drops: int = 0
    garbled: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    seconds: float = 0.0  # how long the push took
    resends: dict[str, int] = field(default_factory=dict)  # how often each line was sent again
    most_resent: tuple[int, str] = (0, "")
    _prompts: PromptSplitter = field(default_factory=PromptSplitter)

    @classmethod
    def of(cls, lines: Sequence[str], window: int = 1024) -> Stream:
        return cls(pending=deque(lines), window=window)

    @property
    def finished(self) -> bool:
        return not self.pending and not self.in_flight

    def take(self, now: float) -> list[str]:
        """The lines to write now: as many as fit the window (at least one when nothing is in flight)."""
        batch = []
        while self.pending:
            size = len(self.pending[0]) + 1
            if self.in_flight and self.in_flight_bytes + size > self.window:
                break
            line = self.pending.popleft()
            self.in_flight.append((line, now))
            self.in_flight_bytes += size
            batch.append(line)
        return batch

    def probe(self, now: float) -> None:
        self.in_flight.append((_PROBE, now))
        self.in_flight_bytes += 1

    def feed(self, text: str, now: float) -> None:
        """Take what the device printed; linear in it (see prompts.py), so a flood cannot pin the CPU."""
        for record in self._prompts.feed(text):
            self._record(record, now)

    @property
    def overlong(self) -> int:
        """The length of a line the device printed past MAX_LINE_BYTES without a break (0: none)."""
        return self._prompts.overlong

    def _position(self, echo: str) -> int | None:
        for position, (line, _) in enumerate(self.in_flight):
            if line == echo:
                return position
        return None

    def _record(self, record: str, now: float) -> None:
        lines = record.replace("\r", "").split("\n")
        echo = lines[0].strip()
        answer = [line.strip() for line in lines[1:] if line.strip()]
        position = self._position(echo)
        if position is None:
            if echo:
                # Part of a line was lost: whatever the device made of it, the read-back finds it.
                self.garbled.append(echo)
                self._shrink()
            return
        self._lost_until(position)
        line, sent = self.in_flight.popleft()
        self.in_flight_bytes -= len(line) + 1
        if line == _PROBE:
            return
        self.done += 1
        latency = now - sent
        self.fastest = min(self.fastest, latency)
        if latency <= 2 * self.fastest + _QUEUE_ALLOWANCE and self.window < self.cap:
            self.window = min(self.cap, self.window + len(line) + 1)
        problems = [text for text in answer if ERROR_LINE.match(text) and not ALREADY_DONE.search(text)]
        if problems:
            self.errors.append(LineError(line, problems[0]))

    def _lost_until(self, position: int) -> None:
        """Everything in flight before ``position`` was dropped by the device: send it again."""
        if position == 0:
            return
        lost = [self.in_flight.popleft()[0] for _ in range(position)]
        self.in_flight_bytes -= sum(len(line) + 1 for line in lost)
        again = [line for line in lost if line != _PROBE]
        self.pending.extendleft(reversed(again))
        self.resent += len(again)
        for line in again:
            self.resends[line] = self.resends.get(line, 0) + 1
            self.most_resent = max(self.most_resent, (self.resends[line], line))
        self._shrink()

    def _shrink(self) -> None:
        """The device dropped input: never again offer it as much."""
        self.drops += 1
        self.cap = max(self.min_window, self.window * 3 // 4)
        self.window = max(self.min_window, self.window // 2)


_PUSH_ADVICE = "the next run repairs the group (check the device)"


@dataclass
class Replies:
    """What a push read, and the share of it tsoutput.log keeps (a babbling device must not fill it)."""

    log_budget: int
    received: int = 0

    def log(self, chunk: str) -> None:
        before = self.received
        self.received += len(chunk)
        if self.received <= self.log_budget:
            log.debug(f"reply: {escape(chunk, 4000)}")
        elif before <= self.log_budget:
            log.debug(f"reply: (the rest of this push's replies is not logged: over {self.log_budget} bytes)")


def check_bounds(
    session: Session, stream: Stream, budget: Budget, elapsed: float, total: int, where: str
) -> None:
    """Fail the push, in one line, once it takes too long, prints without end or keeps dropping lines."""
    if stream.overlong:
        endless = (
            f"printed more than {MAX_LINE_BYTES} bytes without a line break while {where} "
            "(no configuration line is answered like that)"
        )
        raise session.hostile(endless, budget, _PUSH_ADVICE)
    if elapsed > budget.seconds:
        took = f"took more than {budget.seconds:.0f} s {where} ({stream.done} done)"
        raise session.hostile(took, budget, _PUSH_ADVICE)
    times, line = stream.most_resent
    if times > MAX_RESENDS or stream.resent > resend_limit(total):
        dropped = (
            f"dropped input while {where}: '{escape(line)}' sent {times + 1} times, "
            f"{stream.resent} lines sent again in all (it swallows lines?)"
        )
        raise session.hostile(dropped, budget, _PUSH_ADVICE)


def push(session: Session, group: str, lines: list[str]) -> Stream:
    """Stream ``lines`` (inside ``group``, already entered) within its bounds, and log how it went."""
    stream = Stream.of(lines)
    total = len(lines)
    budget = push_budget(total, session.device.timeout)
    replies = Replies(SLACK_BYTES + total * LOG_LINE_BYTES)
    where = f'pushing {total} lines to "{group}"'
    started = last_output = last_shown = last_probe = time.monotonic()
    show_progress = sys.stderr.isatty() and total > 200 and current_device.get() is None  # not in a fleet
    stall = min(1.0, session.device.timeout)
    while not stream.finished:
        batch = stream.take(time.monotonic())
        if batch:
            for line in batch:
                log.debug(f"send: {line}")
            session.write("".join(line + "\n" for line in batch))
        if stream.in_flight_bytes * 2 > stream.window:
            # Plenty queued in the device: let echoes gather, one wake-up for many lines.
            time.sleep(_GATHER)
        chunk = session.receive(0.05, f"after {stream.done} of {total} lines")
        now = time.monotonic()
        if chunk:
            replies.log(chunk)
            if replies.received > budget.size:
                flood = f"sent more than {budget.size} bytes while {where}"
                raise session.hostile(flood, budget, _PUSH_ADVICE)
            stream.feed(chunk, now)
            last_output = now
        else:
            session.check_silence(
                now - last_output,
                f"after {stream.done} of {total} lines",
                "the next run repairs the group",
            )
            if stream.in_flight and now - max(last_output, last_probe) > stall:
                log.debug("send: (empty line: has the device read everything?)")
                last_probe = now
                stream.probe(now)
                session.write("\n")
        check_bounds(session, stream, budget, now - started, total, where)
        if show_progress and now - last_shown > 0.5:
            last_shown = now
            rate = stream.done / max(now - started, 1e-6)
            print(f"\r  {stream.done}/{total} lines, {rate:.0f}/s ", end="", file=sys.stderr, flush=True)
    took = time.monotonic() - started
    if show_progress:
        print(f"\r  {stream.done}/{total} lines, done ", file=sys.stderr)
    stream.seconds = took
    log.info(
        f'Sent {stream.done} configuration lines to "{group}" in {took:.1f} s '
        f"({stream.done / max(took, 1e-6):.0f}/s)."
    )
    if stream.resent or stream.garbled:
        log.warning(
            f"the device dropped input: {stream.resent} lines sent again, "
            f"{len(stream.garbled)} garbled (verified by read-back)"
        )
    for garbled in stream.garbled[:5]:
        log.debug(f"garbled echo: {escape(garbled)}")
    for error in stream.errors[:10]:
        log.warning(f"device refused '{error.line}': {escape(error.message)}")
    if len(stream.errors) > 10:
        log.warning(f"... and {len(stream.errors) - 10} more refused lines (all in the log file)")
    for error in stream.errors[10:]:
        log.debug(f"device refused '{error.line}': {escape(error.message)}")
    return stream
