"""One clock and one way to wait.

Everything that waits (for a node, an app, a job run, an approval) calls ``poll_until``
with the context's clock, so tests of expiry, leases and waits use a ``FakeClock`` and
never sleep in real time."""
from __future__ import annotations

import time as _time
from collections.abc import Callable
from typing import Protocol, TypeVar

from core.errors import Unavailable

T = TypeVar("T")


class Clock(Protocol):
    def time(self) -> float: ...  # wall time (records, expiry)
    def monotonic(self) -> float: ...  # elapsed time (waits)
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(_time.sleep)


SYSTEM_CLOCK = SystemClock()


class TimedOut(Unavailable):
    """A wait reached its deadline."""


def poll_until(predicate: Callable[[], T], timeout: float, what: str, *,
               on_wait: Callable[[str], None] | None = None, clock: Clock = SYSTEM_CLOCK,
               interval: float = 0.1, retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises TimedOut("timed out after Ns waiting for <what>") at the deadline. ``on_wait``
    gets a progress line between tries (it may raise to cancel the wait); exceptions in
    ``retry_on`` count as "not yet" (say, a dashboard that does not answer yet)."""
    start = clock.monotonic()
    while True:
        try:
            value = predicate()
        except retry_on:
            value = None
        if value:
            return value
        elapsed = clock.monotonic() - start
        if elapsed >= timeout:
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}")
        if on_wait is not None:
            on_wait(f"waiting for {what} ({elapsed:.0f}s)")
        clock.sleep(min(interval, max(timeout - elapsed, 0.0)))
