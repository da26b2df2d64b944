"""Bearer tokens: `iat` required and a bounded lifetime; stream tokens open the stream only; HS256
secrets long enough to resist an offline guess."""
from __future__ import annotations

import time

import jwt
import pytest
from pydantic import ValidationError

from shared.auth import Principal, decode_stream_token, decode_token, issue_stream_token
from shared.errors import Unauthorized
from shared.settings import Settings
from tests.helpers import TEST_SECRET, token

SETTINGS = Settings(service="sla", environment="test", jwt_secret=TEST_SECRET)


def signed(**claims) -> str:
    base = {"sub": "u-1", "org": "acme", "roles": ["viewer"]}
    return jwt.encode({**base, **claims}, TEST_SECRET, algorithm="HS256")


def refused(raw: str, decode=decode_token) -> str:
    with pytest.raises(Unauthorized) as caught:
        decode(raw, SETTINGS)
    return str(caught.value)


def test_a_token_needs_iat():
    now = int(time.time())
    assert "iat" in refused(signed(exp=now + 600))


def test_a_token_living_longer_than_the_maximum_is_refused():
    now = int(time.time())
    assert decode_token(signed(iat=now, exp=now + 24 * 3600), SETTINGS).sub == "u-1"   # the maximum itself
    assert "longer" in refused(signed(iat=now, exp=now + 24 * 3600 + 1))
    assert "longer" in refused(signed(iat=now, exp=now + 365 * 86400))


def test_a_token_issued_in_the_future_is_refused_beyond_the_leeway():
    now = int(time.time())
    assert decode_token(signed(iat=now + 30, exp=now + 600), SETTINGS).sub == "u-1"    # clock skew
    assert refused(signed(iat=now + 3600, exp=now + 7200))


def test_the_maximum_lifetime_is_a_setting():
    now = int(time.time())
    short = Settings(service="sla", environment="test", jwt_secret=TEST_SECRET, jwt_max_lifetime_s=3600)
    with pytest.raises(Unauthorized):
        decode_token(signed(iat=now, exp=now + 7200), short)


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, "密" * 10])   # 10 CJK characters are 30 bytes
def test_a_short_hs256_secret_is_refused_with_a_clear_error(secret):
    with pytest.raises(ValidationError) as caught:
        Settings(service="sla", jwt_secret=secret)
    assert "at least 32 bytes" in str(caught.value)


def test_the_test_and_development_secrets_are_long_enough(monkeypatch, tmp_path):
    monkeypatch.setenv("QIYUE_VAR_DIR", str(tmp_path))
    assert Settings(service="sla", jwt_secret=TEST_SECRET).jwt_key() == TEST_SECRET
    assert Settings(service="sla", jwt_secret="x" * 32)
    assert len(Settings(service="sla", environment="development").jwt_key().encode()) >= 32   # make run's


def test_a_stream_token_opens_the_stream_only_and_lives_minutes():
    principal = decode_token(token("viewer", sub="u-9"), SETTINGS)
    minted, expires = issue_stream_token(principal, SETTINGS)
    assert 0 < expires - time.time() <= SETTINGS.stream_token_ttl_s
    streamed = decode_stream_token(minted, SETTINGS)
    assert (streamed.sub, streamed.org, streamed.roles) == ("u-9", "acme", frozenset({"viewer"}))
    assert "stream token" in refused(minted)                        # never a bearer token
    assert refused(token("viewer"), decode_stream_token)            # and a bearer token is no stream token


def test_a_stream_token_never_outlives_the_token_it_was_minted_from():
    soon = int(time.time()) + 20
    _, expires = issue_stream_token(Principal("u-1", "acme", frozenset({"viewer"}), expires_at=soon), SETTINGS)
    assert expires == soon


def test_a_forged_stream_scope_is_no_use_without_the_stream_audience():
    now = int(time.time())
    assert refused(signed(iat=now, exp=now + 60, scope="stream"), decode_stream_token)
