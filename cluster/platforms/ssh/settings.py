"""The ``ssh:`` config section: the hosts (listed, or an Ansible INI inventory), how to log in,
and where on each host the cluster's files go.

    platform: ssh
    ssh:
      inventory: inventory.ini          # [head] / [workers], as Ansible keeps them; or
      hosts:                            # the first with role: head (else the first) is the head
        - {name: ray-head, address: 10.0.0.10, role: head}
        - {name: ray-w1, address: 10.0.0.11, cpu: 16, gpus: 2}
      user: ubuntu
      identity_file: ~/.ssh/ray
      known_hosts: ~/.ssh/known_hosts   # checked strictly: a changed key stops the run
      python: python3                   # the hosts' Python, that builds the cluster's venv
      package_index: https://pypi.example.com/simple   # or, for offline hosts:
      wheelhouse: wheels/               # a directory of wheels, copied to every host
"""
from __future__ import annotations

import dataclasses
import getpass
from dataclasses import dataclass

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow.exceptions import ValidationError


@dataclass(frozen=True)
class SSHSettings:
    hosts: tuple = ()  # dicts: name, address, role, user, port, identity_file, cpu, memory, gpus
    inventory: str | None = None
    user: str = dataclasses.field(default_factory=getpass.getuser)
    port: int = 22
    identity_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    remote_dir: str = ".raydeploy"  # on each host; relative: under the login's home
    python: str = "python3"
    package_index: str | None = None
    wheelhouse: str | None = None
    connect_timeout_seconds: float = 10


class HostSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(load_default=None, validate=validate.Regexp(
        r"^[A-Za-z0-9_.\-]+$", error="Letters, digits, '.', '_' and '-' only."))
    address = fields.String(required=True, validate=validate.Length(min=1))
    role = fields.String(load_default="worker", validate=validate.OneOf(["head", "worker"]))
    user = fields.String(load_default=None)
    port = fields.Integer(load_default=None, validate=validate.Range(1, 65535))
    identity_file = fields.String(load_default=None)
    cpu = fields.Float(load_default=None, validate=validate.Range(min=0))
    memory = fields.Float(load_default=None, validate=validate.Range(min=0))
    gpus = fields.Integer(load_default=None, validate=validate.Range(min=0))


class SSHSchema(Schema):
    class Meta:
        unknown = RAISE

    hosts = fields.List(fields.Nested(HostSchema), load_default=list)
    inventory = fields.String(load_default=None, allow_none=True)
    user = fields.String(load_default=None, allow_none=True)
    port = fields.Integer(load_default=22, validate=validate.Range(1, 65535))
    identity_file = fields.String(load_default=None, allow_none=True)
    known_hosts = fields.String(load_default="~/.ssh/known_hosts")
    remote_dir = fields.String(load_default=".raydeploy", validate=validate.Regexp(
        r"^[A-Za-z0-9_./~\-]+$", error="A path of letters, digits and '._/~-' only."))
    python = fields.String(load_default="python3", validate=validate.Length(min=1))
    package_index = fields.Url(load_default=None, allow_none=True, require_tld=False)
    wheelhouse = fields.String(load_default=None, allow_none=True)
    connect_timeout_seconds = fields.Float(load_default=10, validate=validate.Range(1, 300))

    settings_type = None  # set below: loads into SSHSettings

    @validates_schema
    def _one_source(self, data, **kwargs):
        if data.get("hosts") and data.get("inventory"):
            raise ValidationError("Give hosts or inventory, not both.", "inventory")
        heads = [h for h in data.get("hosts") or [] if h.get("role") == "head"]
        if len(heads) > 1:
            raise ValidationError(f"{len(heads)} hosts have role: head; one head only.", "hosts")
        names = [h.get("name") or h["address"] for h in data.get("hosts") or []]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValidationError(f"Host names must differ: {', '.join(repeated)}.", "hosts")


def settings_of(**loaded) -> SSHSettings:
    loaded = {k: v for k, v in loaded.items() if v is not None}
    return SSHSettings(**{**loaded, "hosts": tuple(loaded.get("hosts", ()))})


SSHSchema.settings_type = staticmethod(settings_of)


def required_when_selected(section: dict) -> dict[str, list[str]]:
    if not section.get("hosts") and not section.get("inventory"):
        return {"hosts": ["Required when platform is ssh (or ssh.inventory)."]}
    return {}
