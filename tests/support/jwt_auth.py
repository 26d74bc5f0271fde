"""OpenBao's real ``jwt`` auth method, fed by tokens signed here (RS256, pycryptodome's RSA).

A ``JwtIssuer`` plays GitHub's OIDC issuer: it holds an RSA key, enables a jwt auth mount
that trusts only that key, creates roles bound to claims the way examples/vault/ describes
(a pull-request role bound to ``refs/pull/*``, an apply role bound to ``refs/heads/main``),
and signs tokens with the claims a GitHub Actions job would carry.
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import hvac
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "vault"
REPOSITORY = "ORG/trading-accounts"
PR_REF = "refs/pull/7/merge"
MAIN_REF = "refs/heads/main"


@functools.cache
def _rsa_key() -> RSA.RsaKey:
    """One 2048-bit key per test session: generating one costs about a second."""
    return RSA.generate(2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class JwtIssuer:
    root: hvac.Client
    mount: str = field(default_factory=lambda: f"jwt-{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.key = _rsa_key()
        self.root.sys.enable_auth_method("jwt", path=self.mount)
        self.root.adapter.post(
            f"/v1/auth/{self.mount}/config",
            json={
                "jwt_validation_pubkeys": [self.key.publickey().export_key().decode()],
                "bound_issuer": ISSUER,
            },
        )

    def role(self, name: str, *, ref: str, policies: list[str], **settings: Any) -> None:
        """A role whose tokens must come from REPOSITORY at ``ref`` (a glob: ``refs/pull/*``)."""
        body = {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": [AUDIENCE],
            "bound_claims_type": "glob",
            "bound_claims": {"repository": REPOSITORY, "ref": ref},
            "token_policies": policies,
            "token_ttl": "1h",
            **settings,
        }
        self.root.adapter.post(f"/v1/auth/{self.mount}/role/{name}", json=body)

    def token(self, *, ref: str = PR_REF, lifetime: int = 600, **claims: Any) -> str:
        """A signed JWT as a GitHub Actions job at ``ref`` would get it (audience "vault")."""
        now = int(time.time())
        event = "pull_request" if ref.startswith("refs/pull/") else "push"
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"repo:{REPOSITORY}:{event}",
            "repository": REPOSITORY,
            "ref": ref,
            "event_name": event,
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "test"}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(payload).encode())
        )
        signature = pkcs1_15.new(self.key).sign(SHA256.new(signing_input.encode()))
        return signing_input + "." + _b64url(signature)

    def live_tokens(self, role: str) -> set[str]:
        """Accessors of the live tokens that logging in to ``role`` on this mount handed out."""
        listed = self.root.adapter.request("LIST", "/v1/auth/token/accessors")
        found = set()
        for accessor in listed["data"]["keys"]:
            try:
                info = self.root.auth.token.lookup_accessor(accessor)["data"]
            except hvac.exceptions.VaultError:
                continue  # revoked or expired since the listing
            if (
                info.get("path") == f"auth/{self.mount}/login"
                and (info.get("meta") or {}).get("role") == role
            ):
                found.add(accessor)
        return found
