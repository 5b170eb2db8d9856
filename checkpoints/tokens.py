"""API token digests: slow, salted, compared in constant time, computed once per process.

A digest is ``scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex>``: hashlib.scrypt of the token
with the deployment's salt (``checkpoints.access.digest_salt``: its cluster's). A stolen
digest (a Serve replica's arguments, the CML control app's environment) costs an attacker
scrypt's work per guess, and a table made for one cluster is worth nothing against another.
One salt per deployment keeps digests stable across runs and machines (the management app's
Serve arguments and the control app's environment carry them and must not change every
deploy) and checks a token with one scrypt, whatever the number of principals. A digest
names its salt and cost, so a server checks digests made elsewhere as they were made.

Checking a token runs scrypt once per token per process: the digest is remembered under an
HMAC of the token keyed by a random key of this process (the token itself is never a key of
the cache), in a bounded map.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

from core.errors import Invalid

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1  # 16 MiB, the scrypt paper's interactive cost
PREFIX = "scrypt"
CACHE_LIMIT = 4096

_process_key = secrets.token_bytes(32)
_cache: dict[bytes, str] = {}
_lock = threading.Lock()


class BadDigest(Invalid):
    """A token digest that is not one this tool writes."""


def token_digest(token: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R,
                 p: int = SCRYPT_P) -> str:
    """The digest of ``token`` under ``salt`` and these scrypt parameters."""
    key = hmac.new(_process_key, b"%d:%d:%d:" % (n, r, p) + salt + b"\0" + token.encode(),
                   hashlib.sha256).digest()
    with _lock:
        known = _cache.get(key)
    if known is not None:
        return known
    raw = hashlib.scrypt(token.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                         maxmem=128 * r * (n + p + 2) + 2 ** 20)
    digest = f"{PREFIX}${n.bit_length() - 1}${r}${p}${salt.hex()}${raw.hex()}"
    with _lock:
        if len(_cache) >= CACHE_LIMIT:  # bounded: a stream of wrong tokens cannot grow it
            _cache.clear()
        _cache[key] = digest
    return digest


def parameters(digest: str) -> tuple[int, int, int, bytes]:
    """(n, r, p, salt) of a digest; BadDigest when it is not one of ours."""
    try:
        prefix, log_n, r, p, salt, raw = digest.split("$")
        n, r, p, salt = 2 ** int(log_n), int(r), int(p), bytes.fromhex(salt)
        if prefix != PREFIX or len(bytes.fromhex(raw)) != 32 or not (10 <= int(log_n) <= 20):
            raise ValueError
    except (ValueError, AttributeError):
        raise BadDigest("a token digest must look like scrypt$<log2 N>$<r>$<p>$<salt>$<hash> "
                        "(digests of older versions: deploy again)") from None
    return n, r, p, salt


def same(known: str, digest: str) -> bool:
    return hmac.compare_digest(known.encode(), digest.encode())
