"""Who acts, and what they may do: principals, roles, tokens, and the Actor every mutation
carries (for the rules and for the audit trail).

Principals and their roles come from ``api.tokens_file`` (YAML:
``tokens: [{principal, roles, token}]``, 0600) and ``RAYDEPLOY_API_TOKENS``
(``principal:role[+role]:token,...``). The API authenticates callers by token. The CLI (in
embedded mode: it runs the run itself) is the OS user, with the roles the tokens file gives
the principal of that name, never roles from its caller's environment (anyone can set a
variable): see ``cli_actor``. With no principals configured the tool runs single-user: the
CLI user (and a loopback-only API) may do everything, and there is one identity, so a policy
that needs to tell approvers apart refuses to start (``require_identities``).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from checkpoints import tokens
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
    roles_from: str = ""  # where the roles came from, said when one is lacking

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles or role == "viewer"

    def require(self, role: str, to: str) -> None:
        if not self.can(role):
            raise Forbidden(f"{self.principal} lacks the {role} role needed to {to}"
                            + (f" ({self.roles_from})" if self.roles_from else ""))

    def as_source(self, source: str) -> Actor:
        return replace(self, source=source)


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles or role == "viewer"


class Principals:
    """The configured principals. Tokens are kept as digests only (``checkpoints.tokens``:
    scrypt with the deployment's salt): a token never sits in memory dumps or reprs as
    itself, and the digests can be handed to a Serve replica."""

    def __init__(self, entries: list[tuple[str, str, set[str]]] = (), salt: bytes = b"",
                 digests: list[dict] = ()):
        self._by_digest: dict[str, Principal] = {}
        self._roles: dict[str, frozenset] = {}
        for name, token, roles in entries:
            if len(token) < MIN_TOKEN_LENGTH:
                raise AccessConfigError(f"token of {name} is shorter than {MIN_TOKEN_LENGTH} "
                                        f"characters")
            self._add(name, tokens.token_digest(token, salt), roles)
        for item in digests:
            tokens.parameters(item["digest"])  # BadDigest for another format
            self._add(item["principal"], item["digest"], set(item["roles"]))
        # the scrypt parameters and salts in use: a token is digested once under each
        self._schemes = {tokens.parameters(d) for d in self._by_digest}

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
        found = None
        for n, r, p, salt in self._schemes:
            digest = tokens.token_digest(token, salt, n, r, p)
            for known, principal in self._by_digest.items():  # compare all: no early exit
                if tokens.same(known, digest):
                    found = principal
        return found

    def digests(self) -> list[dict]:
        """What a server needs to check tokens without knowing them."""
        return [{"principal": p.name, "roles": sorted(p.roles), "digest": d}
                for d, p in sorted(self._by_digest.items())]

    @classmethod
    def load(cls, env_value: str | None, tokens_file: str | None, salt: bytes = b"",
             digests: str | None = None, for_cli_of: int | None = None) -> Principals:
        """From RAYDEPLOY_API_TOKENS (``env_value``), ``api.tokens_file`` and
        RAYDEPLOY_API_TOKEN_DIGESTS (``digests``: JSON ``[{principal, roles, digest}]``, what a
        server needs to check tokens it is never given: the CML control app's); ``for_cli_of``
        (a uid): the tokens file as the CLI reads it (see ``cli_actor``)."""
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
            entries += _read_tokens_file(Path(tokens_file), for_cli_of)
        try:
            known = json.loads(digests) if digests else []
            assert isinstance(known, list) and all(
                isinstance(i, dict) and {"principal", "roles", "digest"} <= set(i) for i in known)
        except (ValueError, AssertionError):
            raise AccessConfigError("RAYDEPLOY_API_TOKEN_DIGESTS is not a JSON list of "
                                    "{principal, roles, digest}") from None
        return cls(entries, salt, digests=known)


def _read_tokens_file(path: Path, for_cli_of: int | None = None) -> list[tuple[str, str, set[str]]]:
    """The entries of a tokens file that is private to its owner, the caller. ``for_cli_of``
    (a uid): the CLI's view, which also takes a file of another account that this uid can
    neither write nor replace (see ``cli_actor``)."""
    try:
        info = path.stat()
        if for_cli_of is not None and info.st_uid != for_cli_of:
            _check_unwritable(path, info)
        else:
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise AccessConfigError(f"api.tokens_file {path} is readable or writable by "
                                        f"others (mode {stat.S_IMODE(info.st_mode):o}): chmod "
                                        f"600 it")
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


def _check_unwritable(path: Path, info: os.stat_result) -> None:
    """A file of another account gives the CLI roles only when the caller cannot change it:
    not writable by group or others, and neither it nor its directory writable by the
    caller (who could otherwise put a file of their own in its place)."""
    parent = path.resolve().parent
    if (info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or os.access(path, os.W_OK)
            or os.access(parent, os.W_OK) or parent.stat().st_uid == os.getuid()):
        raise AccessConfigError(f"api.tokens_file {path} belongs to uid {info.st_uid} but you "
                                f"can change it (or its directory): the CLI takes no roles "
                                f"from a file its caller can rewrite")


def principals_for(config, environ=None, for_cli: bool = False) -> Principals:
    """The principals of this deployment (the config's tokens file and the environment);
    ``for_cli``: as the CLI reads the tokens file (see ``cli_actor``)."""
    environ = os.environ if environ is None else environ
    return Principals.load(environ.get("RAYDEPLOY_API_TOKENS"), config.api.tokens_file,
                           salt=digest_salt(config),
                           digests=environ.get("RAYDEPLOY_API_TOKEN_DIGESTS"),
                           for_cli_of=os.getuid() if for_cli else None)


def digest_salt(config) -> bytes:
    """The deployment's salt of token digests: its cluster's, so the same wherever digests
    are made (a CI runner bootstrapping the CML control app starts from a fresh state dir
    every time) and stable across runs (the management API's Serve args and the control
    app's environment must not change every deploy). It is not a secret: it makes a
    precomputed table of one cluster's digests worthless for another; scrypt makes each
    guess slow."""
    return hashlib.sha256(f"raydeploy token salt:{config.cluster_name}".encode()).digest()[:16]


def cli_actor(config, os_user: str, claimed: str | None = None, source: str = "cli",
              environ=None) -> Actor:
    """The CLI in embedded mode: the OS user, with the roles ``api.tokens_file`` gives the
    principal of that name, read only from a file the caller cannot rewrite to give itself
    more: one the caller owns (the deployment's owner: who can write the state dir can write
    the store too, so nothing is protected from that account by distrusting it), or one of
    another account that the caller can neither write nor replace. ``RAYDEPLOY_API_TOKENS``
    never gives the CLI a role: it is the caller's own environment. It only says that the
    deployment has principals, so a CLI without a tokens file then has no roles (the
    environment can take roles away, never give them). With no principals anywhere: single
    user, everything."""
    environ = os.environ if environ is None else environ
    tokens_file = config.api.tokens_file
    if tokens_file:
        entries = _read_tokens_file(Path(tokens_file), for_cli_of=os.getuid())
        roles = frozenset().union(*(r for name, _, r in entries if name == os_user))
        roles_from = f"roles come from api.tokens_file {tokens_file}"
    elif environ.get("RAYDEPLOY_API_TOKENS") or environ.get("RAYDEPLOY_API_TOKEN_DIGESTS"):
        roles, roles_from = frozenset(), ("the CLI takes roles from api.tokens_file only, "
                                          "never from RAYDEPLOY_API_TOKENS")
    else:
        roles, roles_from = EVERYTHING, ""
    return Actor(principal=os_user, source=source, roles=roles, roles_from=roles_from,
                 claimed_name=claimed if claimed and claimed != os_user else None)


def require_identities(config, principals: Principals) -> None:
    """Without tokens there is one identity (the API's "anonymous" and the CLI's OS user may
    be one person), so a rule that tells approvers apart cannot hold: refuse to start."""
    if principals.enabled:
        return
    rules = []
    for name, policy in sorted(config.approvals.policy.items()):
        if policy.distinct and policy.min_approvals > 1:
            rules.append(f"approvals.policy.{name} (min_approvals {policy.min_approvals}, "
                         f"distinct)")
        elif policy.exclude_requester:
            rules.append(f"approvals.policy.{name} (exclude_requester)")
    if config.approvals.forbid_self_approval:
        rules.append("approvals.forbid_self_approval")
    if rules:
        raise AccessConfigError(
            f"{', '.join(rules)} needs approvers told apart, but no API tokens are configured, "
            f"so there is one identity (one person could be the CLI's OS user and the API's "
            f"anonymous caller): configure api.tokens_file (or RAYDEPLOY_API_TOKENS), or drop "
            f"the rule; nothing was started")
