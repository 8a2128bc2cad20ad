"""Stand-in for Supabase Auth's signing key (no Supabase Auth here): one ES256 key pair generated per test
session with `cryptography`. Its public JWK is what the project publishes at
/auth/v1/.well-known/jwks.json (served by the PostgREST stand-in's server, so one SUPABASE_URL answers both,
as on Supabase); the private JWK goes to the Deno tests, which sign user tokens with it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

KID = "standin-es256-1"


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    public_jwk: dict[str, str]
    private_jwk: dict[str, str]

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.public_jwk]}

    def private_json(self) -> str:
        return json.dumps(self.private_jwk)


def new_signing_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.private_numbers()
    public = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.public_numbers.x),
        "y": _b64(numbers.public_numbers.y),
        "kid": KID,
        "alg": "ES256",
        "use": "sig",
    }
    return SigningKey(public, {**public, "d": _b64(numbers.private_value)})
