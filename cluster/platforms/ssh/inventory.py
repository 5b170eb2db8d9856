"""The hosts of the ssh platform: from the config (``ssh.hosts``) or from an Ansible INI
inventory (``ssh.inventory``), as seed 002's users keep one: a ``[head]`` group with one host
and a ``[workers]`` group, each host a line ``name ansible_host=ADDRESS ansible_user=USER``.

    [head]
    ray-head ansible_host=10.0.0.10

    [workers]
    ray-w1 ansible_host=10.0.0.11
    ray-w2 ansible_host=10.0.0.12 ansible_port=2222

    [all:vars]
    ansible_user=ubuntu
    ansible_ssh_private_key_file=~/.ssh/ray

Errors name the file and line, and every bad line is said at once.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import Invalid

ROLES = ("head", "workers")
HOST_VARS = {"ansible_host": "address", "ansible_user": "user", "ansible_port": "port",
             "ansible_ssh_private_key_file": "identity_file"}
SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)(:vars)?\]$")


@dataclass(frozen=True)
class SSHHost:
    name: str
    address: str
    role: str  # head | worker
    user: str | None = None  # None: ssh.user
    port: int | None = None  # None: ssh.port
    identity_file: str | None = None  # None: ssh.identity_file
    resources: dict = field(default_factory=dict)  # cpu, memory (GB), gpus: else the config's


def from_config(hosts: list[dict]) -> list[SSHHost]:
    """``ssh.hosts`` (validated by the schema): the first with ``role: head``, else the first."""
    head = next((i for i, h in enumerate(hosts) if h.get("role") == "head"), 0)
    return [SSHHost(name=h.get("name") or h["address"], address=h["address"],
                    role="head" if i == head else "worker", user=h.get("user"),
                    port=h.get("port"), identity_file=h.get("identity_file"),
                    resources={k: h[k] for k in ("cpu", "memory", "gpus") if h.get(k) is not None})
            for i, h in enumerate(hosts)]


def parse_inventory(text: str, source: str = "inventory") -> list[SSHHost]:
    """The hosts of an Ansible INI inventory's ``[head]`` and ``[workers]`` groups, with the
    variables of their lines, their groups' ``:vars`` and ``[all:vars]``."""
    errors: list[str] = []
    members: dict[str, list[tuple[int, str, dict]]] = {}
    group_vars: dict[str, dict] = {}
    section, is_vars = None, False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = SECTION.match(line)
        if header:
            section, is_vars = header.group(1), bool(header.group(2))
            continue
        where = f"{source}:{number}"
        if section is None:
            errors.append(f"{where}: a host outside any group ([head] or [workers])")
            continue
        try:
            words = shlex.split(line)
        except ValueError as e:
            errors.append(f"{where}: {e}")
            continue
        if is_vars:
            for word in words:
                key, sep, value = word.partition("=")
                if not sep:
                    errors.append(f"{where}: {word!r} is not key=value")
                group_vars.setdefault(section, {})[key] = value
            continue
        name, assigned = words[0], {}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep:
                errors.append(f"{where}: {word!r} is not key=value")
            assigned[key] = value
        members.setdefault(section, []).append((number, name, assigned))
    heads, workers = members.get("head", []), members.get("workers", [])
    if len(heads) != 1:
        errors.append(f"{source}: [head] must list exactly one host (it lists {len(heads)})")
    if errors:
        raise Invalid("; ".join(errors), field="ssh.inventory")
    hosts = []
    for role, group in (("head", heads), ("worker", workers)):
        for number, name, assigned in group:
            values = {**group_vars.get("all", {}), **group_vars.get(
                "head" if role == "head" else "workers", {}), **assigned}
            hosts.append(_host(name, role, values, f"{source}:{number}"))
    return hosts


def _host(name: str, role: str, values: dict, where: str) -> SSHHost:
    known = {HOST_VARS[k]: v for k, v in values.items() if k in HOST_VARS}
    port = known.get("port")
    if port is not None and not port.isdigit():
        raise Invalid(f"{where}: ansible_port={port!r} is not a port number",
                      field="ssh.inventory")
    return SSHHost(name=name, address=known.get("address") or name, role=role,
                   user=known.get("user"), port=int(port) if port else None,
                   identity_file=known.get("identity_file"))


def load_inventory(path: Path) -> list[SSHHost]:
    try:
        text = path.read_text()
    except OSError as e:
        raise Invalid(f"ssh.inventory {path} cannot be read ({e.strerror})",
                      field="ssh.inventory") from None
    return parse_inventory(text, str(path))
