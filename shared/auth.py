"""Who is calling: JWT bearer tokens with `sub`, `org` and `roles`.

Development and tests sign with HS256 and a local secret; production verifies RS256 tokens
from the identity provider's JWKS URL. Every `/v1` endpoint depends on `require(...)`:
no token → 401, wrong role → 403. Data is scoped to `principal.org` by the repositories,
so another organisation's id simply is not found (404).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import jwt
from fastapi import Depends, Request

from shared.errors import Forbidden, NotFound, Unauthorized
from shared.settings import Settings

ROLES = ("legal", "pm", "finance", "approver", "vendor", "viewer", "admin")
ANY_ROLE = ROLES


@dataclass(frozen=True)
class Principal:
    sub: str
    org: str
    roles: frozenset[str]
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


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


def decode_token(token: str, settings: Settings) -> Principal:
    options = {"require": ["sub", "exp"]}
    kwargs = {"audience": settings.jwt_audience, "issuer": settings.jwt_issuer}
    kwargs = {k: v for k, v in kwargs.items() if v}
    try:
        if settings.jwt_jwks_url:
            key = _jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], options=options, **kwargs)
        else:
            claims = jwt.decode(token, settings.jwt_key(), algorithms=["HS256"], options=options, **kwargs)
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Invalid bearer token: {exc}") from None
    org, roles, party = claims.get("org"), claims.get("roles") or [], claims.get("party")
    if not isinstance(org, str) or not org or not isinstance(roles, list):
        raise Unauthorized("The token must carry an `org` and a list of `roles`.")
    if party is not None and (not isinstance(party, str) or not party):
        raise Unauthorized("The token's `party` must be a non-empty string.")
    return Principal(sub=str(claims["sub"]), org=org, roles=frozenset(map(str, roles)), party=party)


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
