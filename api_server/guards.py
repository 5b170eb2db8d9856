"""Request guards in front of every view: the Host a browser may use (DNS rebinding), JSON
only for mutations (no cross-site form posts), bounded and shallow bodies, chunked ones
included (they come without a Content-Length)."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)
MAX_JSON_DEPTH = 64
MUTATING = ("POST", "PUT", "PATCH")


def host_allowed(host_header: str, allowed_names: frozenset[str]) -> bool:
    """An IP literal is always fine (rebinding needs a name the attacker controls); a name
    must be localhost or one the config lists (api.allowed_hosts)."""
    host = host_header.strip()
    if host.startswith("["):  # [::1]:8080
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.lower().rstrip(".") in allowed_names


def json_depth(data: bytes) -> int:
    """How deeply ``data`` nests arrays and objects (strings skipped), without parsing it:
    Python's parser recurses, and a deep enough document crashes it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and
                                            media.endswith("+json"))


def client_address(remote: str | None, forwarded_for: str | None, trusted: tuple) -> str:
    """Who calls: the peer, or when the peer is a trusted proxy (``api.trusted_proxies``),
    the address it appended to X-Forwarded-For (the rightmost one no trusted proxy is).
    Entries to the left of that are the caller's own words: never taken."""
    address = remote or "?"
    hops = [hop.strip()[:64] for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and _among(address, trusted):
        address = hops.pop()
    return address


def _among(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def may_carry_body(method: str, content_length: int | None, transfer_encoding: str | None) -> bool:
    """Whether a request may have a body to check: one with a length, a chunked one (no
    Content-Length at all), and every mutation (what a view could read, the guard reads)."""
    return bool(content_length) or "chunked" in (transfer_encoding or "").lower() \
        or method in MUTATING


def bodiless_operations(spec_paths: dict) -> frozenset[tuple[str, str]]:
    """(METHOD, Flask rule) of the mutations whose spec declares no request body: a POST
    without a body (and so without a Content-Type) is what the spec allows them."""
    return frozenset((method.upper(), re.sub(r"\{(\w+)\}", r"<\1>", path))
                     for path, operations in spec_paths.items()
                     for method, operation in operations.items()
                     if method.upper() in MUTATING and "requestBody" not in operation)


def cross_site(origin: str | None, host: str, allowed_origins: tuple[str, ...]) -> bool:
    """A browser request from another site's page (its Origin is neither this server nor an
    origin of api.cors_origins). No Origin: not a browser's cross-site request."""
    if origin is None:
        return False
    if origin in allowed_origins:
        return False
    return urlsplit(origin).netloc.lower() != host.lower()
