"""A token bucket: at most ``rate`` events a second on average and ``burst`` at once.

One bucket is shared by every thread that must stay under one limit (the CML client's
threads, the simulator's request threads), so it is guarded by a lock and never sleeps while
holding it. Two ways to take a token:

- ``acquire`` (a client): reserve the next token and sleep until it is due. The count may go
  below zero: each missing token is a reservation, so callers are served in the order they
  came and a burst of threads is spread out at exactly ``rate`` a second.
- ``try_acquire`` (a server enforcing a limit): take one only if it is there now; otherwise
  take none and say how long until one will be (a 429's Retry-After).

``wait_time`` takes none: how long until one will be (a server that spends tokens only on
some requests, e.g. failed logins, asks it before doing the work).
"""
from __future__ import annotations

import threading

from core.timing import SYSTEM_CLOCK, Clock


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None, clock: Clock = SYSTEM_CLOCK):
        """``burst`` defaults to one second's worth (``rate``); it is at least one token."""
        if rate <= 0:
            raise ValueError(f"a rate limit must be > 0 per second (got {rate})")
        self.rate = float(rate)
        self.burst = max(1.0, float(rate if burst is None else burst))
        self.clock = clock
        self._tokens = self.burst  # starts full
        self._at = clock.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:  # with the lock held
        now = self.clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def reserve(self) -> float:
        """Take the next token: the seconds to wait before it may be used (0.0: now)."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            return max(0.0, -self._tokens / self.rate)

    def acquire(self) -> float:
        """Take the next token, sleeping until it is due; returns the seconds slept."""
        wait = self.reserve()
        if wait > 0:
            self.clock.sleep(wait)
        return wait

    def try_acquire(self) -> float:
        """Take a token if one is there now (0.0); otherwise take none and return the
        seconds until one will be."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def wait_time(self) -> float:
        """The seconds until a token will be there (0.0: one is now), taking none."""
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
