"""The counterparty of a token: the `party` claim, and what it scopes (issue 16)."""
from __future__ import annotations

import jwt
import pytest

from shared.auth import Principal, decode_token, issue_token
from shared.errors import NotFound, Unauthorized
from shared.settings import Settings

SECRET = "unit-secret-for-counterparty-tokens-0123456789"


def settings() -> Settings:
    return Settings(jwt_secret=SECRET)


def test_the_party_claim_travels_from_the_token_to_the_principal():
    principal = decode_token(issue_token(SECRET, "qingyun-sun", "acme", ["vendor"], party="91320114MA20CY8H6N"),
                             settings())
    assert principal.party == "91320114MA20CY8H6N" and principal.counterparty
    assert principal.party_scope == ("91320114MA20CY8H6N",)
    assert decode_token(issue_token(SECRET, "legal-li", "acme", ["legal"]), settings()).party is None


@pytest.mark.parametrize("party", ["", 42, ["91320114MA20CY8H6N"]])
def test_a_party_claim_that_is_not_a_name_is_refused(party):
    token = jwt.encode({"sub": "x", "org": "acme", "roles": ["vendor"], "party": party, "exp": 2**40}, SECRET,
                       algorithm="HS256")
    with pytest.raises(Unauthorized):
        decode_token(token, settings())


def test_a_vendor_sees_only_its_own_company_and_without_a_party_nothing():
    mine = Principal("v", "acme", frozenset({"vendor"}), party="A")
    assert mine.may_see("A") and not mine.may_see("B") and not mine.may_see(None)
    with pytest.raises(NotFound):
        mine.ensure_sees("B", "contract c-1")
    nobody = Principal("v", "acme", frozenset({"vendor"}))
    assert nobody.party_scope == () and not nobody.may_see(None)
    # The vendor role scopes whatever else the token holds; the organisation's own people are not scoped.
    assert Principal("v", "acme", frozenset({"vendor", "admin"}), party="A").party_scope == ("A",)
    internal = Principal("l", "acme", frozenset({"legal"}))
    assert internal.party_scope is None and internal.may_see(None) and internal.may_see("B")
