"""CMLClient's rate limit, with a fake clock and a scripted transport (no server, no sleeping).
The client against a real simulator is in tests/cml_simulator/test_contract.py."""
from __future__ import annotations

import json
import threading

import requests

from cluster.platforms.cml.client import CMLClient
from tests.fakes import FakeClock


class ScriptedTransport:
    """A ``requests.Session`` stand-in: answers with the statuses it is given (then 200), and
    notes the clock's time of every request it receives."""

    def __init__(self, clock: FakeClock, statuses=()):
        self.clock = clock
        self.headers: dict = {}
        self.statuses = list(statuses)
        self.sent: list[float] = []
        self._lock = threading.Lock()

    def request(self, method, url, **kwargs) -> requests.Response:
        with self._lock:
            self.sent.append(self.clock.monotonic())
            status = self.statuses.pop(0) if self.statuses else 200
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps({"message": "scripted"} if status >= 400 else {}).encode()
        return response


def client_at(rate: float, statuses=()) -> tuple[CMLClient, ScriptedTransport, FakeClock]:
    clock = FakeClock(start=0.0)
    transport = ScriptedTransport(clock, statuses)
    client = CMLClient("https://cml.example", "key-0123456789", session=transport,
                       max_requests_per_second=rate, backoff=0.0, clock=clock)
    return client, transport, clock


def test_requests_beyond_the_burst_are_spaced_at_the_configured_rate():
    client, transport, _ = client_at(rate=4)  # burst: half a second's worth, 2 requests
    for _ in range(6):
        client.request("GET", "/projects", "list projects")
    assert transport.sent == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert client.calls == 6


def test_every_retry_takes_a_token_too():
    client, transport, _ = client_at(rate=2, statuses=[503, 429, 502])
    client.request("GET", "/projects", "list projects")  # three refusals, then answered
    assert transport.sent == [0.0, 0.5, 1.0, 1.5]
    assert (client.calls, client.throttled) == (4, 1)
