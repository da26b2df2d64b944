"""Tokens over HTTP: stream tokens (the only ones a URL may carry) and the identity provider's JWKS
keys, cached for a while, served a grace period longer when the provider is away, then refused.

The JWKS server is a real local HTTP server with real RS256 keys; it is rotated and switched off.
"""
from __future__ import annotations

import importlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from shared.auth import JwksKeys, decode_token
from shared.errors import Unauthorized
from shared.settings import Settings
from tests.helpers import TEST_SECRET, auth, token
from tests.integration.test_auth_every_endpoint import SERVICES, _routes


def _client(service: str, tmp_path, **settings) -> TestClient:
    settings = Settings(service=service, environment="test", jwt_secret=TEST_SECRET, kafka_bootstrap="127.0.0.1:1",
                        database_url=f"sqlite:///{tmp_path / service}.db", **settings)
    app = importlib.import_module(f"services.{service}.app").create(settings, start=False)
    return TestClient(app, raise_server_exceptions=False)


def _minted(sla: TestClient, *roles: str) -> dict:
    response = sla.post("/v1/stream-tokens", headers=auth(*roles))
    assert response.status_code == 201, response.text
    return response.json()


# --- stream tokens -----------------------------------------------------------------------------

def test_any_role_mints_a_short_lived_stream_token_for_itself(tmp_path):
    sla = _client("sla", tmp_path, stream_token_ttl_s=120)
    for role in ("viewer", "vendor", "legal"):
        minted = _minted(sla, role)
        claims = jwt.decode(minted["token"], options={"verify_signature": False})
        assert (claims["sub"], claims["org"], claims["roles"], claims["scope"]) == ("user-1", "acme", [role], "stream")
        assert claims["exp"] - claims["iat"] <= 120 and 0 < minted["expires_in"] <= 120
    assert sla.post("/v1/stream-tokens").status_code == 401
    stream = _minted(sla, "viewer")["token"]
    assert sla.post("/v1/stream-tokens", headers={"Authorization": f"Bearer {stream}"}).status_code == 401   # no chain


def test_a_bearer_token_in_the_url_is_refused(tmp_path):
    sla = _client("sla", tmp_path)
    for path in ("/v1/stream", "/dashboard"):
        response = sla.get(path, params={"token": token("viewer")})
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
    assert sla.get("/dashboard", params={"token": _minted(sla, "viewer")["token"]}).status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_a_stream_token_is_refused_as_a_bearer_token_on_every_other_endpoint(service, tmp_path):
    stream = _minted(_client("sla", tmp_path / "mint", stream_token_ttl_s=300), "admin")["token"]
    client = _client(service, tmp_path)
    for method, path, _ in _routes(client, service):
        response = client.request(method, path, headers={"Authorization": f"Bearer {stream}"})
        assert response.status_code == 401, (method, path, response.text)
        assert "stream token" in response.json()["detail"]


# --- JWKS --------------------------------------------------------------------------------------

class Jwks:
    """A local identity provider: serves its public keys, counts fetches, can rotate and go away."""

    def __init__(self):
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.rotate()
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                jwks.fetches += 1
                body = json.dumps({"keys": [jwks.public(kid) for kid in jwks.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self) -> str:
        """A new signing key; the old ones are withdrawn."""
        kid = f"k{len(self.keys) + 1}-{time.monotonic_ns()}"
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.current = kid
        return kid

    def public(self, kid: str) -> dict:
        return {**jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True),
                "kid": kid, "alg": "RS256", "use": "sig"}

    def sign(self, kid: str | None = None, key: rsa.RSAPrivateKey | None = None) -> str:
        kid = kid or self.current
        now = int(time.time())
        claims = {"sub": "u-1", "org": "acme", "roles": ["viewer"], "iat": now, "exp": now + 600}
        return jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def off(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp():
    provider = Jwks()
    yield provider
    provider.off()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_cached_for_the_ttl_then_fetched_again(idp):
    clock = Clock()
    keys = JwksKeys(idp.url, ttl_s=600, grace_s=3600, clock=clock)
    kid = idp.current
    for _ in range(5):
        keys.key_for(kid)
    assert idp.fetches == 1
    clock.now += 599
    keys.key_for(kid)
    assert idp.fetches == 1
    clock.now += 1
    keys.key_for(kid)
    assert idp.fetches == 2


def test_a_rotated_key_is_fetched_and_a_withdrawn_one_refused_after_the_ttl(idp):
    clock = Clock()
    keys = JwksKeys(idp.url, ttl_s=600, grace_s=3600, refetch_s=10, clock=clock)
    old = idp.current
    keys.key_for(old)
    new = idp.rotate()
    clock.now += 10
    keys.key_for(new)                                   # unknown kid: fetched at once, long before the ttl
    assert idp.fetches == 2
    for _ in range(3):                                  # made-up kids do not hammer the provider
        with pytest.raises(Unauthorized):
            keys.key_for("made-up")
    assert idp.fetches == 2
    clock.now += 600
    with pytest.raises(Unauthorized):
        keys.key_for(old)                               # withdrawn: gone with the next fetch


def test_the_last_good_keys_serve_for_the_grace_period_when_the_provider_is_away(idp):
    clock = Clock()
    keys = JwksKeys(idp.url, ttl_s=600, grace_s=3600, refetch_s=10, clock=clock)
    kid = idp.current
    keys.key_for(kid)
    idp.off()
    clock.now += 600 + 3599                             # expired, fetch fails, still in grace
    assert keys.key_for(kid) is not None
    clock.now += 1
    with pytest.raises(Unauthorized) as caught:
        keys.key_for(kid)
    assert "cannot be fetched" in str(caught.value)


def test_decode_token_verifies_rs256_through_the_jwks_url(idp, tmp_path):
    settings = Settings(service="sla", environment="test", jwt_jwks_url=idp.url)
    assert decode_token(idp.sign(), settings).sub == "u-1"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        decode_token(idp.sign(key=stranger), settings)  # the kid is right, the signature is not
    with pytest.raises(Unauthorized):
        decode_token(token("viewer"), settings)         # an HS256 token is no use where RS256 is expected
