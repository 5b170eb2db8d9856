"""The lab's fixtures (a pytest plugin, loaded by tests/conftest.py): labs of network
namespaces made for a test and removed after it, whatever happened. Where labs cannot be
made (not root), the tests that need one skip with one line saying why; in CI (CI=true,
run as root) they fail instead, so the lab's proofs cannot silently go missing."""
from __future__ import annotations

import os

import pytest

from lab import Lab, available, cleanup_stale


@pytest.fixture(scope="session")
def lab_ready():
    """Labs can be made here; the leftovers of killed earlier runs are removed first."""
    reason = available()
    if reason:
        if os.environ.get("CI") == "true":  # CI is root: a lab it cannot make is a failure
            pytest.fail(f"no lab in CI: {reason}")
        pytest.skip(f"no lab: {reason}")
    cleanup_stale()


@pytest.fixture
def new_lab(lab_ready):
    """``new_lab()`` makes a lab owned by this test run; every lab made is removed after
    the test."""
    made: list[Lab] = []

    def make() -> Lab:
        lab = Lab.create(owner_pid=os.getpid())
        made.append(lab)
        return lab
    yield make
    for lab in made:
        lab.down()
