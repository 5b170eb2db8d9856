"""Optional bearer tokens with roles. When configured, everything but /health needs a token;
the principal of the token is who acts (an approver is never taken from a request body)."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import Invalid

ROLES = ("viewer", "operator", "approver", "admin")
# The API's own documentation holds no cluster data: open, so a browser can show it.
DOCS = ("/docs", "/redoc", "/openapi.json")


class AuthConfigError(Invalid):
    """The tokens configuration is unusable (the server refuses to start)."""


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset

    def can(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles or role == "viewer"


class TokenAuth:
    def __init__(self, entries: list[tuple[str, str, set[str]]]):
        # keep digests only: a token never sits in memory dumps or reprs as itself
        self._by_digest = {}
        for principal, token, roles in entries:
            bad = set(roles) - set(ROLES)
            if bad or not roles:
                raise AuthConfigError(f"token of {principal}: roles must be among {', '.join(ROLES)}")
            if len(token) < 16:
                raise AuthConfigError(f"token of {principal} is shorter than 16 characters")
            self._by_digest[_digest(token)] = Principal(principal, frozenset(roles))

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def authenticate(self, header: str | None) -> Principal | None:
        if not header or not header.startswith("Bearer "):
            return None
        digest = _digest(header[7:].strip())
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    @classmethod
    def load(cls, env_value: str | None, tokens_file: str | None) -> TokenAuth:
        entries = []
        if env_value:
            for item in filter(None, (p.strip() for p in env_value.split(","))):
                try:
                    principal, roles, token = item.split(":", 2)
                except ValueError:
                    raise AuthConfigError("RAYDEPLOY_API_TOKENS entries look like "
                                          "principal:role[+role]:token") from None
                entries.append((principal, token, set(roles.split("+"))))
        if tokens_file:
            try:
                doc = yaml.safe_load(Path(tokens_file).read_text()) or {}
                for item in doc.get("tokens", []):
                    entries.append((item["principal"], item["token"], set(item["roles"])))
            except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
                raise AuthConfigError(f"api.tokens_file {tokens_file}: {type(e).__name__} "
                                      f"(expected tokens: [{{principal, roles, token}}])") from None
        return cls(entries)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def required_role(method: str, path: str) -> str | None:
    """The role a request needs; None for the open health probe. One table, easy to audit."""
    if path == "/health" or path in DOCS or path.startswith("/docs-assets/"):
        return None
    if method in ("GET", "HEAD", "OPTIONS"):
        return "viewer"
    if path.startswith("/api/v1/approvals"):
        return "approver"
    return "operator"
