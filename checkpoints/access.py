"""Who acts, and what they may do: principals, roles, tokens, and the Actor every mutation
carries (for the rules and for the audit trail).

Principals and their roles come from one place for every path: ``api.tokens_file`` (YAML:
``tokens: [{principal, roles, token}]``, 0600) and ``RAYDEPLOY_API_TOKENS``
(``principal:role[+role]:token,...``). The API authenticates callers by token; the CLI is the
OS user, with the roles of the principal of the same name. With no principals configured
the tool runs single-user: the CLI user (and a loopback-only API) may do everything.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from core.errors import Forbidden, Invalid

ROLES = ("viewer", "operator", "approver", "admin")
EVERYTHING = frozenset({"admin"})
MIN_TOKEN_LENGTH = 16


class AccessConfigError(Invalid):
    """The principals/tokens configuration is unusable (nothing starts)."""


@dataclass(frozen=True)
class Actor:
    """Who does something, as the rules and the audit trail see them."""
    principal: str  # the authenticated identity: a token's principal, the OS user
    source: str  # cli | api | auto | file
    roles: frozenset = EVERYTHING
    claimed_name: str | None = None  # a name the caller gave (CLI --operator, API approved_by)
    client_address: str | None = None

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles or role == "viewer"

    def require(self, role: str, to: str) -> None:
        if not self.can(role):
            raise Forbidden(f"{self.principal} lacks the {role} role needed to {to}")

    def as_source(self, source: str) -> Actor:
        return replace(self, source=source)


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles or role == "viewer"


def token_digest(token: str, salt: str = "") -> str:
    return hashlib.sha256((salt + token).encode()).hexdigest()


class Principals:
    """The configured principals. Tokens are kept as digests only: a token never sits in
    memory dumps or reprs as itself, and the digests can be handed to a Serve replica."""

    def __init__(self, entries: list[tuple[str, str, set[str]]] = (), salt: str = "",
                 digests: list[dict] = ()):
        self.salt = salt
        self._by_digest: dict[str, Principal] = {}
        self._roles: dict[str, frozenset] = {}
        for name, token, roles in entries:
            if len(token) < MIN_TOKEN_LENGTH:
                raise AccessConfigError(f"token of {name} is shorter than {MIN_TOKEN_LENGTH} "
                                        f"characters")
            self._add(name, token_digest(token, salt), roles)
        for item in digests:
            self._add(item["principal"], item["digest"], set(item["roles"]))

    def _add(self, name: str, digest: str, roles: set[str]) -> None:
        bad = set(roles) - set(ROLES)
        if bad or not roles:
            raise AccessConfigError(f"token of {name}: roles must be among {', '.join(ROLES)}")
        known = self._by_digest.get(digest)
        if known is not None and known.name != name:
            raise AccessConfigError(f"one token is given to two principals ({known.name} and "
                                    f"{name}): every principal needs a token of its own")
        self._by_digest[digest] = Principal(name, frozenset(roles))
        self._roles[name] = self._roles.get(name, frozenset()) | frozenset(roles)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def authenticate(self, token: str) -> Principal | None:
        digest = token_digest(token, self.salt)
        found = None
        for known, principal in self._by_digest.items():  # compare all: no early exit
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    def roles_of(self, name: str) -> frozenset:
        """What ``name`` may do: its roles, or everything when nobody is configured."""
        return self._roles.get(name, frozenset()) if self.enabled else EVERYTHING

    def digests(self) -> list[dict]:
        """What a server needs to check tokens without knowing them."""
        return [{"principal": p.name, "roles": sorted(p.roles), "digest": d}
                for d, p in sorted(self._by_digest.items())]

    @classmethod
    def load(cls, env_value: str | None, tokens_file: str | None, salt: str = "",
             digests: str | None = None) -> Principals:
        """From RAYDEPLOY_API_TOKENS (``env_value``), ``api.tokens_file`` and
        RAYDEPLOY_API_TOKEN_DIGESTS (``digests``: JSON ``[{principal, roles, digest}]``, what a
        server needs to check tokens it is never given: the CML control app's)."""
        entries = []
        if env_value:
            for item in filter(None, (p.strip() for p in env_value.split(","))):
                try:
                    name, roles, token = item.split(":", 2)
                except ValueError:
                    raise AccessConfigError("RAYDEPLOY_API_TOKENS entries look like "
                                            "principal:role[+role]:token") from None
                entries.append((name, token, set(roles.split("+"))))
        if tokens_file:
            entries += _read_tokens_file(Path(tokens_file))
        try:
            known = json.loads(digests) if digests else []
            assert isinstance(known, list) and all(
                isinstance(i, dict) and {"principal", "roles", "digest"} <= set(i) for i in known)
        except (ValueError, AssertionError):
            raise AccessConfigError("RAYDEPLOY_API_TOKEN_DIGESTS is not a JSON list of "
                                    "{principal, roles, digest}") from None
        return cls(entries, salt, digests=known)


def _read_tokens_file(path: Path) -> list[tuple[str, str, set[str]]]:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AccessConfigError(f"api.tokens_file {path} is readable or writable by others "
                                    f"(mode {stat.S_IMODE(info.st_mode):o}): chmod 600 it")
        if info.st_uid != os.getuid():
            raise AccessConfigError(f"api.tokens_file {path} belongs to another user")
        doc = yaml.safe_load(path.read_text()) or {}
        return [(item["principal"], item["token"], set(item["roles"]))
                for item in doc.get("tokens", [])]
    except AccessConfigError:
        raise
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise AccessConfigError(f"api.tokens_file {path}: {type(e).__name__} "
                                f"(expected tokens: [{{principal, roles, token}}])") from None


def principals_for(config, environ=None) -> Principals:
    """The principals of this deployment (the config's tokens file and the environment)."""
    environ = os.environ if environ is None else environ
    return Principals.load(environ.get("RAYDEPLOY_API_TOKENS"), config.api.tokens_file,
                           salt=digest_salt(config),
                           digests=environ.get("RAYDEPLOY_API_TOKEN_DIGESTS"))


def digest_salt(config) -> str:
    # per cluster, and stable (the management API's Serve config must not change every run)
    return f"raydeploy:{config.cluster_name}:"


def cli_actor(principals: Principals, os_user: str, claimed: str | None = None,
              source: str = "cli") -> Actor:
    return Actor(principal=os_user, source=source, roles=principals.roles_of(os_user),
                 claimed_name=claimed if claimed and claimed != os_user else None)
