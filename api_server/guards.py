"""Request guards in front of every view: the Host a browser may use (DNS rebinding), JSON
only for mutations (no cross-site form posts), bounded and shallow bodies."""
from __future__ import annotations

import ipaddress

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
