"""Feed keys (domain): a record is the key's organisation's only when signed over its exact bytes by an active key."""
from __future__ import annotations

from services.sla.domain.feed_keys import secret_of, signer_of
from shared.events.sla import FEED_KEY_HEADER, FEED_SIGNATURE_HEADER, sign_feed_record

MASTER = b"m" * 32


def headers(key_id: str, secret: str, value: bytes) -> dict[str, str]:
    return {k: v.decode() for k, v in sign_feed_record(key_id, secret, value)}


def test_the_secret_is_derived_from_the_master_and_the_key_id_alone():
    assert secret_of(MASTER, "fk_1") == secret_of(MASTER, "fk_1") != secret_of(MASTER, "fk_2")
    assert secret_of(b"another master", "fk_1") != secret_of(MASTER, "fk_1")


def test_only_a_signature_by_an_active_key_over_the_exact_bytes_names_the_organisation():
    value = b'{"org":"acme","contract_id":"c1"}'
    keys = {"fk_1": ("acme", secret_of(MASTER, "fk_1"))}
    good = headers("fk_1", keys["fk_1"][1], value)
    assert signer_of(good, value, keys) == ("acme", None)
    assert signer_of(good, value + b" ", keys)[0] is None                          # a byte changed
    assert signer_of({}, value, keys)[0] is None                                   # unsigned
    assert signer_of({FEED_KEY_HEADER: "fk_1"}, value, keys)[0] is None            # no signature
    assert signer_of(headers("fk_1", "guessed", value), value, keys)[0] is None    # wrong secret
    assert signer_of(headers("fk_9", keys["fk_1"][1], value), value, keys)[0] is None   # unknown or revoked
    assert signer_of({**good, FEED_SIGNATURE_HEADER: "sha256=00"}, value, keys)[0] is None
