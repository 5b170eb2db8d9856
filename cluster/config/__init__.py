"""Cluster configuration: one YAML file, validated by marshmallow into typed objects.

Every bad field is reported at once (``ConfigError.errors``: dotted path -> messages), and
nothing is started from a config that failed. Older shapes are mapped onto ours before
validation (``legacy``), and a few environment variables override fields.

    model   the typed, frozen Config objects
    schema  the marshmallow schemas (platform sections come from the platform registry)
    legacy  older shapes and environment overrides
"""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from cluster.config.legacy import apply_env, map_legacy
from cluster.config.model import Config, NodeResources, ServeApp
from cluster.config.schema import APP_NAME, IMPORT_PATH, PLATFORM_SECTIONS, ROUTE_PREFIX, ConfigSchema, Strict
from cluster.platforms.base import ConfigShapeError
from core.errors import Invalid

__all__ = ["Config", "ConfigError", "NodeResources", "ServeApp", "load_config", "parse_config",
           "flatten_errors", "APP_NAME", "IMPORT_PATH", "ROUTE_PREFIX", "Strict",
           "DEFAULT_CONFIG"]

DEFAULT_CONFIG = Path("examples/cluster.local.yaml")


class ConfigError(Invalid):
    """The config is unusable. ``errors`` maps each bad field's dotted path to its messages
    (``(file)``: the file itself could not be read: one line)."""

    def __init__(self, errors: dict[str, list[str]], source: str = "config"):
        self.errors = errors
        self.source = source
        if list(errors) == ["(file)"]:
            super().__init__("; ".join(errors["(file)"]))
            return
        lines = [f"  {path}: {'; '.join(msgs)}" for path, msgs in sorted(errors.items())]
        super().__init__(f"{source} is invalid ({len(errors)} field error"
                         f"{'s' if len(errors) != 1 else ''}):\n" + "\n".join(lines))


def flatten_errors(messages, prefix="") -> dict[str, list[str]]:
    """marshmallow's nested messages as {dotted.path: [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(config)"
            for p, msgs in flatten_errors(value, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "(config)"] = list(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            out.update(flatten_errors(value, f"{prefix}.{i}"))
    else:
        out[prefix or "(config)"] = [str(messages)]
    return out


def parse_config(doc: Any, *, source: str = "config", environ=None,
                 state_dir_override: str | None = None, base_dir: Path | None = None) -> Config:
    environ = os.environ if environ is None else environ
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError({"(config)": ["The top level must be a mapping."]}, source)
    warnings: list[str] = []
    try:
        doc = map_legacy(doc, warnings)
    except ConfigShapeError as e:
        raise ConfigError(e.errors, source) from None
    origins = apply_env(doc, environ)
    document = copy.deepcopy(doc)
    try:
        data = ConfigSchema().load(doc)
    except ValidationError as e:
        errors = flatten_errors(e.messages)
        for path, var in origins.items():
            if path in errors:
                errors[f"{path} (from {var})"] = errors.pop(path)
        raise ConfigError(errors, source) from None

    if data["head"].gpus:
        warnings.append(f"head.gpus={data['head'].gpus} ignored: the head node always gets 0 GPUs")
        data["head"] = dataclasses.replace(data["head"], gpus=0)
    base = base_dir or Path.cwd()
    if state_dir_override:
        data["state_dir"] = state_dir_override
    platform_settings = {section: _settings(platform, data.pop(section))
                         for section, platform in PLATFORM_SECTIONS.items()}
    config = Config(**data, platform_settings=platform_settings, source=source,
                    base_dir=base.resolve(), warnings=tuple(warnings), document=document)
    return with_paths_resolved(config, base)


def with_paths_resolved(value, base: Path):
    """``value`` with every path field (``model.PATH``) resolved against ``base``, in its
    sections and their items too: a ``Path`` field gets a Path, a text field its text."""
    if isinstance(value, tuple):
        return tuple(with_paths_resolved(v, base) for v in value)
    if not dataclasses.is_dataclass(value):
        return value
    changes = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if f.metadata.get("path") and item is not None:
            path = Path(item) if Path(item).is_absolute() else base / item
            changes[f.name] = path.resolve() if "Path" in str(f.type) else str(path.resolve())
        elif dataclasses.is_dataclass(item) or isinstance(item, tuple):
            resolved = with_paths_resolved(item, base)
            if resolved is not item:
                changes[f.name] = resolved
    return dataclasses.replace(value, **changes) if changes else value


def _settings(platform, loaded: dict):
    """A platform's section as its settings object (the dataclass its module defines)."""
    factory = getattr(platform.settings_schema, "settings_type", None)
    return factory(**loaded) if factory else loaded


def load_config(path: str | Path | None = None, *, environ=None,
                state_dir_override: str | None = None, base_dir: Path | None = None) -> Config:
    """Load and validate a config file (the local example when ``path`` is None)."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError({"(file)": [f"{path} does not exist"]}, str(path)) from None
    except IsADirectoryError:
        raise ConfigError({"(file)": [f"{path} is a directory, not a config file"]},
                          str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError({"(file)": [f"{path} is not UTF-8 text (byte {e.start})"]},
                          str(path)) from None
    except OSError as e:
        raise ConfigError({"(file)": [f"{path} cannot be read: {e.strerror}"]},
                          str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError({"(yaml)": [f"{where}{getattr(e, 'problem', None) or e}"]},
                          str(path)) from None
    return parse_config(doc, source=str(path.resolve()), environ=environ,
                        state_dir_override=state_dir_override,
                        base_dir=Path(base_dir) if base_dir else None)
