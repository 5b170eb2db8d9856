"""What an approver sees of a change: each setting that changes, as ``before -> after``, with
the values of secrets redacted.

Settings are flattened to dotted paths (``args.greeting``, ``runtime_env.env_vars.MODE``,
``deployments.Hello.num_replicas``: a list of named items is keyed by name). A value is
redacted when it is an environment variable's (``env_vars.*``, a job's ``environment.*``: any
of them may hold a credential) or when its name says secret (token, secret, password, key,
digest, principals, ...): the plan says ``changed`` / ``set`` / ``removed`` for it, never the
value, nor a digest of it. What was redacted still counts: the values are sealed into the
action (``Action.sealed``, a keyed hash, in the fingerprint and nowhere else), so a plan
approved with one secret does not cover another.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re

ENV_SECTIONS = frozenset({"env_vars", "environment"})
SECRET_WORDS = frozenset({"token", "tokens", "secret", "secrets", "password", "passwd", "key",
                          "apikey", "digest", "digests", "credential", "credentials",
                          "principals", "auth", "authorization", "cookie", "private"})
REDACTED = "(redacted)"
_MISSING = object()


# a builder's args that name files of the host the control plane runs on (the management
# API's config and state dir): not what an approver decides on, not for every reader
HOST_PATH_WORDS = frozenset({"dir", "file", "path", "config"})


def secret_path(path: tuple) -> bool:
    if any(part in ENV_SECTIONS for part in path[:-1]):
        return True
    if "args" in path[:-1] and set(re.split(r"[^a-z0-9]+", str(path[-1]).lower())) & \
            HOST_PATH_WORDS:
        return True
    return any(set(re.split(r"[^a-z0-9]+", str(part).lower())) & SECRET_WORDS for part in path)


def flatten(value, path: tuple = ()) -> dict[tuple, object]:
    """``{path: leaf}``; a secret's whole value is one leaf (nothing inside it is shown)."""
    if path and secret_path(path):
        return {path: value}
    if isinstance(value, (dict, list)) and not value:  # empty is unset
        return {}
    if isinstance(value, dict):
        out = {}
        for key in sorted(value, key=str):
            out.update(flatten(value[key], (*path, key)))
        return out
    if (isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v
                                                  for v in value)):
        out = {}
        for item in value:
            out.update(flatten({k: v for k, v in item.items() if k != "name"},
                               (*path, item["name"])))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        # other lists holding settings: by position, so a secret inside one is found
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, (*path, index)) if isinstance(item, (dict, list))
                       else {(*path, index): item})
        return out
    return {path: value}


def _shown(value) -> str:
    if value is _MISSING:
        return "(none)"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _name(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def diff(before: dict, after: dict) -> tuple[dict[str, str], dict]:
    """(changes, sealed): ``{"args.greeting": '"hi" -> "hello"', "runtime_env.env_vars.TOKEN":
    "changed"}``, and the new values of the redacted settings that changed (to seal)."""
    old, new = flatten(before), flatten(after)
    changes, sealed = {}, {}
    for path in sorted(set(old) | set(new), key=_name):
        was, now = old.get(path, _MISSING), new.get(path, _MISSING)
        if was == now:
            continue
        if secret_path(path):
            changes[_name(path)] = ("set" if was is _MISSING else "removed" if now is _MISSING
                                    else "changed")
            sealed[_name(path)] = None if now is _MISSING else now
        else:
            changes[_name(path)] = f"{_shown(was)} -> {_shown(now)}"
    return changes, sealed


def settings(value: dict) -> tuple[dict[str, object], dict]:
    """(shown, sealed) of a new thing's settings: every value, secrets as ``(redacted)``."""
    shown, sealed = {}, {}
    for path, leaf in flatten(value).items():
        if secret_path(path):
            shown[_name(path)], sealed[_name(path)] = REDACTED, leaf
        else:
            shown[_name(path)] = leaf
    return shown, sealed


def redact(value):
    """``value`` with every secret's value replaced by ``(redacted)`` (for answers that show
    a whole config, e.g. a running app's)."""
    def walk(item, path):
        if path and secret_path(path):
            return REDACTED
        if isinstance(item, dict):
            return {k: walk(v, (*path, k)) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, (*path, v.get("name", i)) if isinstance(v, dict) else path)
                    for i, v in enumerate(item)]
        return item
    return walk(value, ())


def seal(key: bytes, sealed: dict) -> str | None:
    """A keyed hash of redacted values: equal for equal values, worthless without the key
    (a guessed value cannot be checked against it). None when nothing was redacted."""
    if not sealed:
        return None
    canonical = json.dumps(sealed, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, b"plan-seal\0" + canonical.encode(), hashlib.sha256).hexdigest()[:32]
