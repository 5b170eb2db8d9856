"""API tokens are kept as slow, salted digests (scrypt with the deployment's salt), compared
in constant time, and checked with scrypt once per token per process."""
from __future__ import annotations

import hashlib
import secrets

import pytest

from checkpoints import tokens
from checkpoints.access import Principals, principals_for
from cluster.config import parse_config


def config_of(cluster_name, path):
    return parse_config({"state_dir": str(path), "cluster_name": cluster_name}, environ={})


def test_digests_are_scrypt_salted_by_the_deployment(tmp_path):
    env = {"RAYDEPLOY_API_TOKENS": "alice:approver:alice-token-0123456789"}
    one = principals_for(config_of("one", tmp_path / "a"), env).digests()
    # the same wherever made (a CI runner's fresh state dir): the Serve args do not change
    again = principals_for(config_of("one", tmp_path / "b"), env).digests()
    other = principals_for(config_of("two", tmp_path / "a"), env).digests()
    assert one == again
    assert one[0]["digest"] != other[0]["digest"]  # another deployment: unrelated
    n, r, p, salt = tokens.parameters(one[0]["digest"])
    assert (n, r, p, len(salt)) == (2 ** 14, 8, 1, 16)
    expected = hashlib.scrypt(b"alice-token-0123456789", salt=salt, n=n, r=r, p=p, dklen=32)
    assert one[0]["digest"].endswith("$" + expected.hex())
    assert hashlib.sha256(b"alice-token-0123456789").hexdigest() not in str(one)


def test_a_digest_of_the_old_format_is_refused(tmp_path):
    old = hashlib.sha256(b"raydeploy:x:alice-token-0123456789").hexdigest()
    with pytest.raises(tokens.BadDigest):
        Principals(digests=[{"principal": "alice", "roles": ["approver"], "digest": old}])


def test_authentication_runs_scrypt_once_per_token_per_process(tmp_path, monkeypatch):
    token = "t-" + secrets.token_hex(16)  # new to this process
    salt = secrets.token_bytes(16)
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(tokens.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    served = Principals(digests=Principals([("alice", token, {"approver"})], salt).digests())
    assert len(calls) == 1  # digesting the configured token
    for _ in range(50):
        assert served.authenticate(token).name == "alice"
    wrong = "w-" + secrets.token_hex(16)
    for _ in range(50):
        assert served.authenticate(wrong) is None
    assert len(calls) == 2  # the right token was known; the wrong one was digested once
