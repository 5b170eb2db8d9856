"""Token digests: scrypt with a salt and a cost named in the digest, parsed back strictly,
compared in constant time, remembered per process under a keyed hash in a bounded map."""
import hashlib

import pytest

from checkpoints import tokens
from core.errors import Invalid

FAST = 2 ** 10  # the smallest cost a digest may name: quick tests
SALT = bytes(range(16))


def digest(token: str, salt: bytes = SALT, n: int = FAST) -> str:
    return tokens.token_digest(token, salt, n=n)


def test_a_digest_names_its_cost_and_salt_and_holds_the_scrypt_of_the_token():
    made = digest("alice-token-0123456789")
    prefix, log_n, r, p, salt, raw = made.split("$")
    assert (prefix, log_n, r, p, salt) == ("scrypt", "10", "8", "1", SALT.hex())
    assert raw == hashlib.scrypt(b"alice-token-0123456789", salt=SALT, n=FAST, r=8, p=1,
                                 dklen=32).hex()
    assert tokens.parameters(made) == (FAST, 8, 1, SALT)


def test_the_default_cost_is_scrypts_interactive_one():
    assert tokens.parameters(tokens.token_digest("t" * 16, SALT))[:3] == (2 ** 14, 8, 1)


def test_the_same_token_gives_another_digest_under_another_salt_or_cost():
    one = digest("alice-token-0123456789")
    assert one == digest("alice-token-0123456789")
    assert one != digest("alice-token-0123456789", salt=b"\x01" * 16)
    assert one != digest("alice-token-0123456789", n=2 * FAST)  # not the one remembered
    assert one != digest("alice-token-012345678X")


@pytest.mark.parametrize("bad", [
    hashlib.sha256(b"an old digest").hexdigest(),
    "bcrypt$10$8$1$" + SALT.hex() + "$" + "00" * 32,  # another scheme
    "scrypt$10$8$1$" + SALT.hex() + "$" + "00" * 31,  # a hash of the wrong length
    "scrypt$9$8$1$" + SALT.hex() + "$" + "00" * 32,  # a cost out of range
    "scrypt$21$8$1$" + SALT.hex() + "$" + "00" * 32,
    "scrypt$10$8$1$not-hex$" + "00" * 32,
    "scrypt$10$8$1$" + SALT.hex() + "$" + "00" * 32 + "$extra",
    None,
])
def test_a_digest_that_is_not_one_of_ours_is_refused(bad):
    with pytest.raises(tokens.BadDigest, match="scrypt\\$<log2 N>"):
        tokens.parameters(bad)
    assert issubclass(tokens.BadDigest, Invalid)  # the caller's config to correct


def test_digests_are_compared_whole():
    made = digest("alice-token-0123456789")
    assert tokens.same(made, made)
    assert not tokens.same(made, made[:-1] + ("0" if made[-1] != "0" else "1"))
    assert not tokens.same(made, made[:-1])


def test_remembered_digests_are_keyed_without_the_token_and_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "_cache", {})
    monkeypatch.setattr(tokens, "CACHE_LIMIT", 3)
    first = digest("token-number-0")
    assert all(b"token-number-0" not in key for key in tokens._cache)
    for n in range(1, 7):
        digest(f"token-number-{n}")
        assert len(tokens._cache) <= 3
    assert digest("token-number-0") == first  # forgotten, made again the same
