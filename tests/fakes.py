"""Fakes behind the real interfaces, for fast tests: a clock that moves only when told."""
from __future__ import annotations


class FakeClock:
    """``core.timing.Clock`` without real time: ``sleep`` advances it at once."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
