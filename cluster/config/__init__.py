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
import os
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from cluster.config.legacy import apply_env, map_legacy
from cluster.config.model import (
    OPERATION_POLICY,
    ApiConfig,
    ApprovalsConfig,
    Config,
    ManagementApiConfig,
    MonitoringConfig,
    NodeResources,
    NotificationsConfig,
    NotificationTarget,
    RayConfig,
    ServeApp,
    ServePolicy,
    WorkersConfig,
)
from cluster.config.schema import APP_NAME, IMPORT_PATH, PLATFORM_SECTIONS, ROUTE_PREFIX, ConfigSchema, Strict
from cluster.platforms.base import ConfigShapeError
from core.errors import Invalid
from core.records import ApprovalPolicy

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

    head = data["head"]
    if head.get("gpus"):
        warnings.append(f"head.gpus={head['gpus']} ignored: the head node always gets 0 GPUs")
    base = base_dir or Path.cwd()
    resolve = lambda p: (Path(p) if Path(p).is_absolute() else base / p).resolve()  # noqa: E731
    api = data["api"]
    approvals = data["approvals"]
    return Config(
        cluster_name=data["cluster_name"],
        platform=data["platform"],
        state_dir=resolve(state_dir_override or data["state_dir"]),
        project_dir=resolve(data["project_dir"]),
        jobs_config=resolve(data["jobs_config"]),
        ray=RayConfig(**data["ray"]),
        head=NodeResources(cpu=head["cpu"], memory=head["memory"], gpus=0,
                           object_store_memory=head["object_store_memory"]),
        workers=WorkersConfig(**data["workers"]),
        serve_apps=tuple(ServeApp(**{**a, "deployments": tuple(a["deployments"])})
                         for a in data["serve"]["applications"]),
        management_api=ManagementApiConfig(**data["serve"]["management_api"]),
        serve_policy=ServePolicy(
            allowed_import_prefixes=tuple(data["serve"]["allowed_import_prefixes"]) or tuple(
                sorted({a["import_path"].split(".")[0].split(":")[0]
                        for a in data["serve"]["applications"]})),
            allowed_runtime_env_keys=tuple(data["serve"]["allowed_runtime_env_keys"]),
            allowed_env_vars=tuple(data["serve"]["allowed_env_vars"])),
        approvals=ApprovalsConfig(**{**approvals, "required": tuple(approvals["required"]),
                                     "operations": {**OPERATION_POLICY,
                                                    **approvals["operations"]},
                                     "policy": {name: _policy(p) for name, p
                                                in approvals["policy"].items()},
                                     "file_dir": str(resolve(approvals["file_dir"]))
                                     if approvals["file_dir"] else None}),
        api=ApiConfig(**{**api, "cors_origins": tuple(api["cors_origins"]),
                         "allowed_hosts": tuple(api["allowed_hosts"]),
                         "trusted_proxies": tuple(api["trusted_proxies"]),
                         "tokens_file": str(resolve(api["tokens_file"]))
                         if api["tokens_file"] else None}),
        monitoring=MonitoringConfig(**{
            **data["monitoring"], "api_targets": tuple(data["monitoring"]["api_targets"]),
            "api_token_file": str(resolve(data["monitoring"]["api_token_file"]))
            if data["monitoring"]["api_token_file"] else None}),
        notifications=NotificationsConfig(**{
            **data["notifications"], "targets": tuple(
                NotificationTarget(**{**t, "events": tuple(t["events"]),
                                      "url_file": str(resolve(t["url_file"])) if t["url_file"] else None,
                                      "secret_file": str(resolve(t["secret_file"]))
                                      if t["secret_file"] else None})
                for t in data["notifications"]["targets"])}),
        platform_settings={section: _settings(platform, data[section])
                           for section, platform in PLATFORM_SECTIONS.items()},
        force_rebuild=data["force_rebuild"],
        serve_stuck_seconds=data["serve"]["stuck_replica_seconds"],
        serve_verify_seconds=data["serve"]["verify_timeout_seconds"],
        source=source,
        base_dir=base.resolve(),
        warnings=tuple(warnings),
        document=document,
    )


def _policy(loaded: dict):
    return ApprovalPolicy(**{**loaded, "roles": tuple(loaded["roles"])})


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
