"""What the API may deploy as a Serve application, checked before anything reaches Ray.

The control plane never imports or runs an app's code: an import path is only compared with
``serve.allowed_import_prefixes`` (Ray resolves it on the cluster). ``runtime_env`` may use
only ``serve.allowed_runtime_env_keys`` (by default ``env_vars`` and a ``working_dir`` inside
the project); ``env_vars`` is an allow-list: a name must match ``serve.allowed_env_vars``
(shell patterns, default ``APP_*``; proxies, CA bundles, ``HOME`` or Ray's own variables
change what a replica trusts), and a variable that hijacks the loader or the interpreter is
refused whatever the patterns say. Actor options are resources, bounded and non-negative.
Each refusal names the field (HTTP 422)."""
from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

from cluster.config.model import ServeConfig
from core.errors import Invalid

# variables that change what code a process loads or runs, before any user code is reached:
# refused even when serve.allowed_env_vars would allow them (e.g. ``*``)
HIJACKING_ENV = re.compile(r"^(LD_|DYLD_|PYTHON|BASH_ENV$|ENV$|PERL5|RUBY|NODE_OPTIONS$|"
                           r"RAY_AUTH_|RAY_ADDRESS$|PATH$|GCONV_PATH$)")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ACTOR_RESOURCES = {"num_cpus": 1024.0, "num_gpus": 64.0, "memory": 4.0 * 1024 ** 4,
                   "object_store_memory": 4.0 * 1024 ** 4}


def check_import_path(import_path: str, allowed_prefixes: tuple[str, ...]) -> None:
    module = import_path.split(":", 1)[0]
    if not any(module == p or module.startswith(p + ".") for p in allowed_prefixes):
        allowed = ", ".join(allowed_prefixes) or "none (set serve.allowed_import_prefixes)"
        raise Invalid(f"module {module!r} is not deployable through the API; allowed module "
                      f"prefixes: {allowed}", field="import_path")


def check_runtime_env(env: dict, policy: ServeConfig, project_dir: Path,
                      field: str = "runtime_env") -> None:
    allowed_keys = policy.allowed_runtime_env_keys
    for key, value in env.items():
        where = f"{field}.{key}"
        if key not in allowed_keys:
            raise Invalid(f"runtime_env key {key!r} is not allowed (serve.allowed_runtime_env_keys"
                          f": {', '.join(allowed_keys) or 'none'})", field=where)
        if key == "env_vars":
            _check_env_vars(value, policy.allowed_env_vars, where)
        elif key == "working_dir":
            _check_working_dir(value, project_dir, where)


def _check_env_vars(value, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(value, dict):
        raise Invalid("must be a mapping of names to strings", field=where)
    for name, text in value.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise Invalid(f"{name!r} is not a variable name", field=where)
        if HIJACKING_ENV.match(name):
            raise Invalid(f"{name} changes what code the replica loads or runs: not allowed",
                          field=f"{where}.{name}")
        if not any(fnmatchcase(name, pattern) for pattern in allowed):
            raise Invalid(f"{name} is not an allowed variable (serve.allowed_env_vars: "
                          f"{', '.join(allowed) or 'none'})", field=f"{where}.{name}")
        if not isinstance(text, str) or len(text) > 8192:
            raise Invalid(f"{name}: the value must be a string of at most 8192 characters",
                          field=f"{where}.{name}")


def _check_working_dir(value, project_dir: Path, where: str) -> None:
    if not isinstance(value, str) or "://" in value:
        raise Invalid("must be a directory inside the project (no URIs)", field=where)
    path = (project_dir / value).resolve()
    if not path.is_relative_to(project_dir.resolve()) or not path.is_dir():
        raise Invalid(f"{value!r} is not a directory inside the project {project_dir}",
                      field=where)


def check_actor_options(options: dict, field: str = "ray_actor_options") -> None:
    for key, value in options.items():
        where = f"{field}.{key}"
        if key == "resources":
            if not isinstance(value, dict):
                raise Invalid("must be a mapping of resource names to amounts", field=where)
            for name, amount in value.items():
                _check_amount(amount, 1e6, f"{where}.{name}")
        elif key in ACTOR_RESOURCES:
            _check_amount(value, ACTOR_RESOURCES[key], where)
        else:
            raise Invalid(f"{key!r} is not allowed; ray_actor_options may set "
                          f"{', '.join([*ACTOR_RESOURCES, 'resources'])}", field=where)


def _check_amount(value, maximum: float, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
        raise Invalid(f"must be a number from 0 to {maximum:g}", field=where)
