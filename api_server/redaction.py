"""What the API's answers leave out.

Secrets, for every caller: the values of a Serve app's ``env_vars`` and builder ``args``
(where API keys and passwords go; the management API's args hold the principals' token
digests and the control plane's paths), wherever they appear: a running app's deployed
config, an operation's parameters kept in its run, the config's changes since the last
success. The names stay, so a caller sees what is set.

Paths, for callers without the operator role: where the control plane keeps its config and
state (a viewer reads the cluster, not the deployer's machine). The config file is named by
its file name only."""
from __future__ import annotations

import shlex
from pathlib import Path

from marshmallow import fields

from checkpoints.changes import REDACTED, redact

SECRET_MAPPINGS = frozenset({"env_vars", "args"})  # whose values may be secrets


def without_secrets(value):
    """``value`` with every secret redacted: what the plans call one (checkpoints.changes:
    environment values, keys named like a secret) and every value of ``env_vars`` and
    ``args`` inside it (where API keys and passwords go)."""
    return _mappings_redacted(redact(value))


def _mappings_redacted(value):
    if isinstance(value, dict):
        return {key: _redacted(item) if key in SECRET_MAPPINGS else _mappings_redacted(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_mappings_redacted(item) for item in value]
    return value


def _redacted(mapping):
    if isinstance(mapping, dict):
        return {name: REDACTED for name in mapping}
    return REDACTED if mapping else mapping


class WithoutSecrets(fields.Dict):
    """A mapping dumped with its secrets redacted (see ``without_secrets``)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(without_secrets(value), attr, obj, **kwargs)


def _is_path(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last.endswith(("_dir", "_file")) or last == "jobs_config"


def config_change(change: dict, sees_paths: bool) -> dict:
    """One ``{key, before, after}`` of the config's changes, fit for the caller."""
    parts = change["key"].split(".")
    if SECRET_MAPPINGS & set(parts[:-1]) or (not sees_paths and _is_path(change["key"])):
        return {**change, **{side: REDACTED for side in ("before", "after") if side in change}}
    return change


def config_name(source: str, sees_paths: bool) -> str:
    """The config file: its path, or for a viewer its file name."""
    return source if sees_paths else Path(source).name


def command(text: str | None, source: str, sees_paths: bool) -> str | None:
    """A command that names the config file (``--config PATH``), fit for the caller."""
    if not text or sees_paths:
        return text
    return text.replace(shlex.quote(source), shlex.quote(Path(source).name))
