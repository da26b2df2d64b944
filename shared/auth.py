"""Who is calling: JWT bearer tokens with `sub`, `org` and `roles`.

Development and tests sign with HS256 and a local secret; production verifies RS256 tokens
from the identity provider's JWKS URL. Every `/v1` endpoint depends on `require(...)`:
no token → 401, wrong role → 403. Data is scoped to `principal.org` by the repositories,
so another organisation's id simply is not found (404).

Every token needs `iat` and lives at most `QIYUE_JWT_MAX_LIFETIME_S` (24 h). The JWKS keys are
cached (`QIYUE_JWKS_CACHE_TTL_S`) and outlive a failing identity provider by a grace period
(`QIYUE_JWKS_GRACE_S`). Stream tokens, minted by SLA's `POST /v1/stream-tokens`, are the only
tokens a URL may carry (EventSource sends no headers) and are refused as bearer tokens.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

import httpx
import jwt
from fastapi import Depends, Request

from shared.errors import Forbidden, NotFound, Unauthorized
from shared.settings import Settings

log = logging.getLogger("qiyue.auth")
ROLES = ("legal", "pm", "finance", "approver", "vendor", "viewer", "admin")
ANY_ROLE = ROLES
# The organisation's own people: every role but `vendor`, which makes a token a counterparty's.
INTERNAL_ROLES = tuple(r for r in ROLES if r != "vendor")


STREAM_AUDIENCE = "qiyue:stream"   # a stream token says so twice: its audience and its scope
STREAM_SCOPE = "stream"


@dataclass(frozen=True)
class Principal:
    sub: str
    org: str
    roles: frozenset[str]
    expires_at: int | None = None      # the token's `exp`: a stream token minted from it lives no longer
    # The counterparty's company (the `party` claim): the 统一社会信用代码 of the vendor party of its
    # contracts. Only read for a counterparty; a vendor token without one reaches no contract.
    party: str | None = None

    def has(self, *roles: str) -> bool:
        return "admin" in self.roles or bool(self.roles.intersection(roles))

    @property
    def counterparty(self) -> bool:
        """A vendor's user: sees only the contracts whose vendor party is its company, whatever else
        the token says (least privilege: an outside company never reads the organisation's internals)."""
        return "vendor" in self.roles

    def may_see(self, vendor_party: str | None) -> bool:
        """Whether a contract with this vendor party is visible to the caller."""
        return not self.counterparty or (self.party is not None and vendor_party == self.party)

    @property
    def party_scope(self) -> tuple[str, ...] | None:
        """What a query keeps: None, every contract of the organisation; else the vendor parties the
        caller may see (none at all for a vendor token without a party)."""
        if not self.counterparty:
            return None
        return (self.party,) if self.party else ()

    def ensure_sees(self, vendor_party: str | None, what: str) -> None:
        """404 (not 403: no existence leak) when a counterparty asks for another company's contract."""
        if not self.may_see(vendor_party):
            raise NotFound(f"No {what}.")


def issue_token(secret: str, sub: str, org: str, roles: Iterable[str], ttl_s: int = 12 * 3600,
                party: str | None = None) -> str:
    now = int(time.time())
    claims = {"sub": sub, "org": org, "roles": sorted(set(roles)), "iat": now, "exp": now + ttl_s}
    if party:
        claims["party"] = party
    return jwt.encode(claims, secret, algorithm="HS256")


def issue_stream_token(principal: Principal, settings: Settings) -> tuple[str, int]:
    """A token for `/v1/stream` and `/dashboard` only, the one kind a URL may carry (EventSource cannot
    send headers): same sub, org and roles, a few minutes long and never longer than the caller's own."""
    now = int(time.time())
    expires = now + settings.stream_token_ttl_s
    if principal.expires_at is not None:
        expires = min(expires, principal.expires_at)
    claims = {"sub": principal.sub, "org": principal.org, "roles": sorted(principal.roles), "iat": now,
              "exp": expires, "aud": STREAM_AUDIENCE, "scope": STREAM_SCOPE}
    if principal.party:
        claims["party"] = principal.party
    return jwt.encode(claims, settings.stream_token_key(), algorithm="HS256"), expires


class JwksKeys:
    """The identity provider's signing keys from its JWKS URL, kept `ttl_s`. When a fetch fails the last
    good keys serve `grace_s` longer (an IdP blip does not log everyone out), then tokens are refused (a
    key the IdP revoked is not trusted forever). An unknown `kid` (a rotation) fetches again, at most
    every `refetch_s`, so tokens with made-up kids cannot hammer the IdP."""

    def __init__(self, url: str, ttl_s: float, grace_s: float, refetch_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.url, self.ttl_s, self.grace_s, self.refetch_s, self.clock = url, ttl_s, grace_s, refetch_s, clock
        self._keys: dict[str | None, Any] | None = None
        self._fetched_at = self._tried_at = float("-inf")
        self._lock = threading.Lock()

    def key_for(self, kid: str | None):
        with self._lock:
            now = self.clock()
            if now - self._fetched_at >= self.ttl_s:
                self._refresh(now)
            if kid not in self._current(now):
                self._refresh(now)
            key = self._current(now).get(kid)
        if key is None:
            raise Unauthorized("The token is signed with a key the identity provider does not publish.")
        return key

    def _current(self, now: float) -> dict:
        if self._keys is None or now - self._fetched_at >= self.ttl_s + self.grace_s:
            raise Unauthorized("The identity provider's signing keys cannot be fetched; try again later.")
        return self._keys

    def _refresh(self, now: float) -> None:
        if now - self._tried_at < self.refetch_s:
            return
        self._tried_at = now
        try:
            response = httpx.get(self.url, timeout=5.0)
            response.raise_for_status()
            keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(response.json()).keys}
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.url, exc)
            return
        if len(keys) == 1:
            keys[None] = next(iter(keys.values()))   # a token without `kid` means the only key
        self._keys, self._fetched_at = keys, now


@lru_cache(maxsize=4)
def _jwks(url: str, ttl_s: float, grace_s: float) -> JwksKeys:
    return JwksKeys(url, ttl_s, grace_s)


def decode_token(token: str, settings: Settings) -> Principal:
    """A bearer token from the Authorization header. A stream token is refused here: it only opens
    the stream, which is why it may travel in a URL."""
    if _unverified(token).get("scope") == STREAM_SCOPE:   # refusing needs no signature check
        raise Unauthorized("A stream token only opens /v1/stream and /dashboard; send your bearer token.")
    kwargs = {"audience": settings.jwt_audience, "issuer": settings.jwt_issuer}
    kwargs = {k: v for k, v in kwargs.items() if v}
    if settings.jwt_jwks_url:
        jwks = _jwks(settings.jwt_jwks_url, settings.jwks_cache_ttl_s, settings.jwks_grace_s)
        claims = _decode(token, lambda: jwks.key_for(_kid(token)), "RS256", settings, **kwargs)
    else:
        claims = _decode(token, settings.jwt_key, "HS256", settings, **kwargs)
    if claims.get("scope") == STREAM_SCOPE:
        raise Unauthorized("A stream token only opens /v1/stream and /dashboard; send your bearer token.")
    return _principal(claims, settings.jwt_max_lifetime_s, settings.jwt_leeway_s)


def decode_stream_token(token: str, settings: Settings) -> Principal:
    """A token from `POST /v1/stream-tokens`, the only kind accepted as `?token=`: a full bearer token
    in a URL (logs, history, Referer) is refused, so leaking a URL leaks minutes of read-only stream."""
    try:
        claims = _decode(token, settings.stream_token_key, "HS256", settings, audience=STREAM_AUDIENCE)
    except RuntimeError as exc:   # no secret to check it with: no stream token can be good
        raise Unauthorized(str(exc)) from None
    if claims.get("scope") != STREAM_SCOPE:
        raise Unauthorized("Only a stream token (POST /v1/stream-tokens) is accepted in the URL.")
    return _principal(claims, settings.stream_token_ttl_s, settings.jwt_leeway_s)


def _unverified(token: str) -> dict:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Invalid bearer token: {exc}") from None
    return claims if isinstance(claims, dict) else {}


def _kid(token: str) -> str | None:
    try:
        return jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Invalid bearer token: {exc}") from None


def _decode(token: str, key: Callable[[], Any], algorithm: str, settings: Settings, **kwargs) -> dict:
    try:
        return jwt.decode(token, key(), algorithms=[algorithm], leeway=settings.jwt_leeway_s,
                          options={"require": ["sub", "exp", "iat"]}, **kwargs)
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Invalid bearer token: {exc}") from None


def _principal(claims: dict, max_lifetime_s: int, leeway_s: int) -> Principal:
    issued, expires = claims["iat"], claims["exp"]
    if not all(isinstance(v, (int, float)) for v in (issued, expires)):
        raise Unauthorized("The token's `iat` and `exp` must be numbers.")
    now = time.time()
    if expires <= now:   # the leeway is for an issuer's clock ahead of ours (iat), not for expiry
        raise Unauthorized("Invalid bearer token: Signature has expired")
    if issued > now + leeway_s:
        raise Unauthorized("The token is issued in the future.")
    if expires - issued > max_lifetime_s:
        raise Unauthorized(f"The token lives longer than the {max_lifetime_s} s allowed.")
    org, roles, party = claims.get("org"), claims.get("roles") or [], claims.get("party")
    if not isinstance(org, str) or not org or not isinstance(roles, list):
        raise Unauthorized("The token must carry an `org` and a list of `roles`.")
    if party is not None and (not isinstance(party, str) or not party):
        raise Unauthorized("The token's `party` must be a non-empty string.")
    return Principal(sub=str(claims["sub"]), org=org, roles=frozenset(map(str, roles)), party=party,
                     expires_at=int(expires))


def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A bearer token is required.")
    principal = decode_token(token.strip(), request.app.state.settings)
    request.state.principal = principal
    return principal


def require(*roles: str):
    """A FastAPI dependency admitting callers with any of `roles` (admin always)."""
    allowed = roles or ANY_ROLE

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has(*allowed):
            raise Forbidden(f"This action needs one of the roles: {', '.join(allowed)}.")
        return principal

    return dependency


def require_internal(*roles: str):
    """Like `require`, and refused (403) to a counterparty: the organisation's internals (audit trails,
    policies, risk findings, its clause library) are not for the companies it contracts with."""
    admitted = require(*roles)

    def dependency(principal: Principal = Depends(admitted)) -> Principal:
        if principal.counterparty:
            raise Forbidden("This is internal to the organisation; a counterparty does not read it.")
        return principal

    return dependency


def require_contract_party(dependency, party_of: Callable[[Request, str, str], str | None]):
    """`dependency` on a route with a `{contract_id}`: a counterparty reaches the contract only when
    `party_of(request, org, contract_id)` (the contract's vendor party, None when unknown) is its own
    company; otherwise 404, as for a contract that does not exist. Others pass unchanged."""
    def check(contract_id: str, request: Request, principal: Principal = Depends(dependency)) -> Principal:
        if principal.counterparty:
            principal.ensure_sees(party_of(request, principal.org, contract_id), f"contract {contract_id}")
        return principal

    return check
