"""Idempotency keys past their first claim: a repeat gets the first answer, a failed first
request frees its key, and each step touches only the key of its caller and route."""
import pytest

from store import Store


@pytest.fixture
def keys(tmp_path):
    return Store(tmp_path / "state").idempotency


def test_a_repeat_after_the_answer_gets_that_answer(keys):
    assert keys.claim("alice", "POST /runs", "k1", "h1") is None
    keys.answer("alice", "POST /runs", "k1", 202, '{"run_id": "run-1"}')
    repeat = keys.claim("alice", "POST /runs", "k1", "h1")
    assert (repeat.body_hash, repeat.status, repeat.response) == ("h1", 202, '{"run_id": "run-1"}')


def test_a_released_key_may_be_claimed_again_with_another_body(keys):
    keys.claim("alice", "POST /runs", "k1", "h1")
    keys.release("alice", "POST /runs", "k1")
    assert keys.claim("alice", "POST /runs", "k1", "h2") is None
    assert keys.claim("alice", "POST /runs", "k1", "h1").body_hash == "h2"


def test_answering_or_releasing_touches_only_the_key_of_that_caller_and_route(keys):
    for principal, route in (("alice", "POST /a"), ("bob", "POST /a"), ("alice", "POST /b")):
        keys.claim(principal, route, "k", f"{principal} {route}")
    keys.answer("alice", "POST /a", "k", 201, "{}")
    keys.release("bob", "POST /a", "k")
    assert keys.claim("alice", "POST /b", "k", "x").status is None  # still being answered
    assert keys.claim("alice", "POST /a", "k", "x").status == 201
    assert keys.claim("bob", "POST /a", "k", "new") is None  # released: new again
