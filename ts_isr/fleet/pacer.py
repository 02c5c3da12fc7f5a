"""Logins at a bounded rate: 200 routers must not ask one TACACS/RADIUS server in the same second."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Hands out start times at least ``1/rate`` seconds apart, to any number of threads."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return at this caller's turn: the next free slot, never sooner than ``interval`` after
        the previous one."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)
