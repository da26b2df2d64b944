"""Platform rules that hold for the whole code base."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import jwt
import pytest

from shared import asyncapi
from shared.auth import decode_token, issue_token
from shared.envelope import Envelope, MalformedEvent
from shared.errors import Unauthorized
from shared.events import registry
from shared.events.contracts import ContractDrafted
from shared.registry import names
from shared.settings import ROOT, Settings

SERVICES = names()


def test_asyncapi_document_matches_the_event_models():
    on_disk = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert on_disk == asyncapi.render(), "docs/asyncapi.yaml is stale: run `qiyue asyncapi`"


def test_every_event_type_is_entity_dot_past_participle_on_its_services_topic():
    for event_type, model in registry().items():
        entity, _, verb = event_type.partition(".")
        assert entity and verb and event_type == event_type.lower(), event_type
        assert model.topic.endswith(".events") or model.topic == "sla.ingest", (event_type, model.topic)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_services_never_import_each_other(service):
    others = [s for s in SERVICES if s != service]
    for path in (ROOT / "services" / service).rglob("*.py"):
        for name in _imports(path):
            assert not any(name.startswith(f"services.{o}") for o in others), f"{path} imports {name}"


def test_shared_never_imports_a_service_statically():
    for path in (ROOT / "shared").rglob("*.py"):
        assert not any(n.startswith("services") for n in _imports(path)), path


def test_envelope_round_trips_through_kafka_headers():
    payload = ContractDrafted(contract_id="c1", org="acme", version=1, template="software_development",
                              language="zh-CN", title="软件开发外包合同")
    env = Envelope.new(payload, "/qiyue/contracts", request_id="req-1")
    back = Envelope.from_message("contracts.events", env.headers(), env.value())
    assert (back.id, back.type, back.subject, back.request_id) == (env.id, "contract.drafted", "c1", "req-1")
    assert back.payload(ContractDrafted) == payload
    assert env.key() == b"c1"
    assert json.loads(env.value())["title"] == "软件开发外包合同"


@pytest.mark.parametrize("headers,value", [
    ([], b"{}"),
    ([("ce_id", b"1"), ("ce_type", b"x.y"), ("ce_source", b"/s"), ("ce_specversion", b"0.3")], b"{}"),
    ([("ce_id", b"1"), ("ce_type", b"x.y"), ("ce_source", b"/s"), ("ce_specversion", b"1.0")], b"not json"),
    ([("ce_id", b"1"), ("ce_type", b"x.y"), ("ce_source", b"/s"), ("ce_specversion", b"1.0")], b"[1]"),
])
def test_unreadable_messages_are_malformed(headers, value):
    with pytest.raises(MalformedEvent):
        Envelope.from_message("t", headers, value)


def test_tokens_are_checked_for_signature_expiry_and_claims():
    settings = Settings(jwt_secret="s3cret-0123456789-0123456789-0123456789", environment="test")
    good = issue_token("s3cret-0123456789-0123456789-0123456789", "u1", "acme", ["legal"])
    principal = decode_token(good, settings)
    assert (principal.sub, principal.org, principal.roles) == ("u1", "acme", frozenset({"legal"}))
    for bad in (issue_token("other-secret-0123456789-0123456789-012345", "u1", "acme", ["legal"]),
                issue_token("s3cret-0123456789-0123456789-0123456789", "u1", "acme", ["legal"], ttl_s=-10),
                jwt.encode({"sub": "u1", "exp": 9999999999, "roles": ["legal"]}, "s3cret-0123456789-0123456789-0123456789", algorithm="HS256"),
                "not-a-token"):
        with pytest.raises(Unauthorized):
            decode_token(bad, settings)


def test_production_refuses_to_run_without_a_configured_secret():
    with pytest.raises(RuntimeError):
        Settings(environment="production").jwt_key()
