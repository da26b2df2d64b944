"""The lifecycle's pure rules: states and commands, key dates, approval reviews, the audit chain,
and the comparison of two versions."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from services.contracts.domain import audit, lifecycle
from services.contracts.domain.approvals import (DEFAULT_POLICY, ApprovalPolicy, Condition, PolicyStep, Review,
                                                 ReviewFacts)
from services.contracts.domain.compare import VersionView, compare, moved_clauses
from services.contracts.domain.document import Article, ContractDocument, Paragraph
from shared.errors import Conflict, Forbidden, Invalid

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)
D = dt.date.fromisoformat


# --- states and commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("status, allowed", [
    ("draft", ["submit"]), ("in_review", ["approve", "reject"]), ("approved", ["request-signature"]),
    ("out_for_signature", ["sign"]), ("signed", ["activate", "terminate"]), ("active", ["complete", "terminate"]),
    ("completed", []), ("terminated", []), ("expired", []),
])
def test_each_state_allows_its_commands_only(status, allowed):
    assert lifecycle.allowed_commands(lifecycle.Status(status)) == allowed


def test_an_impossible_command_names_the_state_and_what_is_allowed():
    with pytest.raises(Conflict) as refused:
        lifecycle.ensure_allowed("sign", "approved")
    assert refused.value.extra == {"current_state": "approved", "allowed_transitions": ["request-signature"]}
    assert "approved" in refused.value.detail and "request-signature" in refused.value.detail
    with pytest.raises(Conflict, match="final state"):
        lifecycle.ensure_allowed("complete", "expired")
    lifecycle.ensure_allowed("terminate", "signed")


def test_each_party_is_signed_for_by_its_roles():
    lifecycle.ensure_may_sign("vendor", frozenset({"vendor"}))
    lifecycle.ensure_may_sign("client", frozenset({"admin"}))
    with pytest.raises(Forbidden):
        lifecycle.ensure_may_sign("client", frozenset({"vendor"}))
    assert lifecycle.unsigned_parties({"vendor"}) == ["client"]
    assert lifecycle.unsigned_parties({"client", "vendor"}) == []


# --- key dates -------------------------------------------------------------------------------------

def due(status, today, effective="2026-01-01", end="2026-12-31", notice=30, announced=False):
    return lifecycle.key_date_due(status, D(effective), D(end), notice, announced, D(today))


def test_a_signed_contract_activates_on_its_effective_date_not_before():
    assert due("signed", "2025-12-31") is None
    assert due("signed", "2026-01-01") == "activate"
    assert due("signed", "2026-03-01") == "activate"          # a late scheduler catches up
    assert due("approved", "2026-03-01") is None


def test_the_renewal_notice_goes_once_inside_the_notice_window():
    assert due("active", "2026-11-30") is None
    assert due("active", "2026-12-01") == "renewal_due"        # 30 days before 31 December
    assert due("active", "2026-12-31") == "renewal_due"
    assert due("active", "2026-12-15", announced=True) is None
    assert due("active", "2026-12-20", notice=5) is None
    assert lifecycle.renewal_notice_on(D("2026-12-31"), 10_000) == D("2025-12-30")   # capped at 366 days


def test_an_active_contract_expires_the_day_after_its_end_date():
    assert due("active", "2026-12-31", announced=True) is None
    assert due("active", "2027-01-01", announced=True) == "expire"
    assert due("active", "2027-01-01") == "expire"             # too late for a renewal notice
    assert due("completed", "2027-01-01") is None


def test_a_contract_signed_after_its_effective_date_activates_at_once():
    assert lifecycle.ensure_effective(D("2026-01-01"), D("2026-01-01")) is None
    with pytest.raises(Conflict, match="2026-02-01"):
        lifecycle.ensure_effective(D("2026-02-01"), D("2026-01-01"))


# --- approvals -------------------------------------------------------------------------------------

def facts(total="1500000.00", deviations=(), blockers=()) -> ReviewFacts:
    return ReviewFacts(kind="software_development", total_amount=Decimal(total), deviations=list(deviations),
                       blocking_findings=list(blockers))


LEGAL, FINANCE, APPROVER = frozenset({"legal"}), frozenset({"finance"}), frozenset({"approver"})
AUTHORS = {"author-zhang"}
BLOCKER = {"id": "required_clause_missing:confidentiality", "code": "required_clause_missing",
           "clause": "confidentiality", "message": "..."}


def test_the_default_policy_asks_legal_always_finance_above_a_million_and_an_approver_for_deviations():
    steps = lambda f: [s["key"] for s in Review.open(1, 1, DEFAULT_POLICY, f).steps]  # noqa: E731
    assert steps(facts("1000000.00")) == ["legal"]
    assert steps(facts("1000000.01")) == ["legal", "finance"]
    deviation = {"clause": "warranty", "position": "short", "kind": "fallback"}
    review = Review.open(1, 1, DEFAULT_POLICY, facts("10.00", [deviation]))
    assert [s["key"] for s in review.steps] == ["legal", "deviations"]
    assert review.steps[1]["reason"] == "non-standard clause positions: warranty (short)"


def test_steps_are_decided_in_order_by_their_roles_and_never_by_an_author():
    review = Review.open(1, 1, DEFAULT_POLICY, facts())
    with pytest.raises(Forbidden, match="Four eyes"):
        review.approve("author-zhang", LEGAL, AUTHORS, NOW)
    with pytest.raises(Forbidden):
        review.approve("finance-wang", FINANCE, AUTHORS, NOW)
    with pytest.raises(Conflict):
        review.approve("legal-li", LEGAL, AUTHORS, NOW, step="finance")
    with pytest.raises(Invalid):
        review.approve("legal-li", LEGAL, AUTHORS, NOW, step="nonsense")
    review.approve("legal-li", LEGAL, AUTHORS, NOW, comment="ok")
    assert review.outcome == "pending" and [s["key"] for s in review.pending_steps()] == ["finance"]
    review.approve("finance-wang", FINANCE, AUTHORS, NOW)
    assert review.outcome == "approved" and review.is_complete()
    with pytest.raises(Conflict):
        review.approve("admin-1", frozenset({"admin"}), AUTHORS, NOW)


def test_a_rejection_closes_the_round_with_its_comment():
    review = Review.open(1, 1, DEFAULT_POLICY, facts())
    review.approve("legal-li", LEGAL, AUTHORS, NOW)
    with pytest.raises(Forbidden):
        review.reject("approver-chen", APPROVER, AUTHORS, NOW, "no")      # no pending step is an approver's
    decision = review.reject("finance-wang", FINANCE, AUTHORS, NOW, "付款比例需调整")
    assert (decision.step, decision.comment, review.outcome) == ("finance", "付款比例需调整", "rejected")


def test_a_blocking_finding_holds_the_review_until_overridden_with_a_reason():
    review = Review.open(1, 1, DEFAULT_POLICY, facts("10.00", blockers=[BLOCKER]))
    review.approve("legal-li", LEGAL, AUTHORS, NOW)
    assert review.outcome == "pending" and review.open_blockers() == [BLOCKER]
    with pytest.raises(Forbidden):
        review.override("legal-li", LEGAL, AUTHORS, NOW, BLOCKER["id"], "x")
    with pytest.raises(Forbidden, match="Four eyes"):
        review.override("author-zhang", APPROVER, AUTHORS, NOW, BLOCKER["id"], "x")
    with pytest.raises(Invalid):
        review.override("approver-chen", APPROVER, AUTHORS, NOW, "other:-", "x")
    review.override("approver-chen", APPROVER, AUTHORS, NOW, BLOCKER["id"], "另签保密协议")
    assert review.outcome == "approved"
    with pytest.raises(Conflict):
        review.override("approver-chen", APPROVER, AUTHORS, NOW, BLOCKER["id"], "again")


def test_each_person_decides_one_step_of_a_round_and_the_submitter_none():
    everything = frozenset({"legal", "finance", "approver"})
    review = Review.open(1, 1, DEFAULT_POLICY, facts(blockers=[BLOCKER]), submitted_by="legal-sun")
    with pytest.raises(Forbidden, match="submitted"):
        review.approve("legal-sun", LEGAL, AUTHORS, NOW)
    review.approve("all-wu", everything, AUTHORS, NOW)                           # legal
    with pytest.raises(Forbidden, match="Separation of duties") as refused:
        review.approve("all-wu", everything, AUTHORS, NOW, step="finance")
    assert refused.value.extra == {"decided_step": "legal"}
    for act in (lambda: review.override("all-wu", everything, AUTHORS, NOW, BLOCKER["id"], "ok"),
                lambda: review.reject("all-wu", everything, AUTHORS, NOW, "no")):
        with pytest.raises(Forbidden, match="Separation of duties"):
            act()
    review.override("approver-chen", APPROVER | FINANCE, AUTHORS, NOW, BLOCKER["id"], "另签保密协议")
    with pytest.raises(Forbidden, match="Separation of duties"):                   # the overrider holds a seat too
        review.approve("approver-chen", APPROVER | FINANCE, AUTHORS, NOW)
    review.approve("finance-wang", FINANCE, AUTHORS, NOW)
    assert review.outcome == "approved" and Review.from_dict(review.to_dict()) == review


def test_admin_decides_a_step_only_when_the_step_names_a_role_it_holds():
    admin = frozenset({"admin"})
    review = Review.open(1, 1, DEFAULT_POLICY, facts("10.00", blockers=[BLOCKER]))
    with pytest.raises(Forbidden, match="administrator"):
        review.approve("admin-1", admin, AUTHORS, NOW)
    with pytest.raises(Forbidden):
        review.reject("admin-1", admin, AUTHORS, NOW, "no")
    with pytest.raises(Forbidden, match="administrator"):
        review.override("admin-1", admin, AUTHORS, NOW, BLOCKER["id"], "ok")
    review.approve("admin-legal", admin | LEGAL, AUTHORS, NOW)
    named = ApprovalPolicy(steps=[PolicyStep(key="board", roles=["admin"])], override_roles=["admin"])
    board = Review.open(1, 1, named, facts(blockers=[BLOCKER]))
    board.approve("admin-1", admin, AUTHORS, NOW)                                # the policy names admin
    board.override("admin-2", admin, AUTHORS, NOW, BLOCKER["id"], "董事会决议")
    assert board.outcome == "approved"


@pytest.mark.parametrize("reason", ["", "   ", "\t\n", "\u3000"])
def test_an_override_reason_cannot_be_blank(reason):
    review = Review.open(1, 1, DEFAULT_POLICY, facts(blockers=[BLOCKER]))
    with pytest.raises(Invalid) as refused:
        review.override("approver-chen", APPROVER, AUTHORS, NOW, BLOCKER["id"], reason)
    assert [e["pointer"] for e in refused.value.errors] == ["/reason"]
    with pytest.raises(Invalid) as both:
        review.override("approver-chen", APPROVER, AUTHORS, NOW, "other:-", reason)
    assert [e["pointer"] for e in both.value.errors] == ["/finding", "/reason"]
    assert review.overrides == []


def test_a_review_survives_storage_unchanged():
    review = Review.open(2, 3, DEFAULT_POLICY, facts(blockers=[BLOCKER]))
    review.approve("legal-li", LEGAL, AUTHORS, NOW, comment="ok")
    review.override("approver-chen", APPROVER, AUTHORS, NOW, BLOCKER["id"], "reason")
    assert Review.from_dict(review.to_dict()) == review


def test_a_policy_refuses_duplicate_steps_and_reads_conditions():
    step = PolicyStep(key="legal", roles=["legal"])
    with pytest.raises(ValueError, match="unique"):
        ApprovalPolicy(steps=[step, step])
    assert Condition(kind="contract_kind", kinds=["call_centre"]).applies(
        dataclasses.replace(facts(), kind="call_centre"))
    assert not Condition(kind="contract_kind", kinds=["call_centre"]).applies(facts())


# --- the audit chain -------------------------------------------------------------------------------

def chain(n: int = 3) -> list[audit.AuditEntry]:
    entries, previous = [], None
    for i in range(n):
        previous = audit.next_entry(previous, stream="contract:c1", org="acme", actor=f"user-{i}",
                                    action=f"contract.step{i}", at=NOW + dt.timedelta(minutes=i),
                                    before={"status": i}, after={"status": i + 1, "total": Decimal("1.10")})
        entries.append(previous)
    return entries


def head(entries) -> tuple[int, str]:
    return entries[-1].seq, entries[-1].entry_hash


def test_an_untouched_chain_verifies():
    entries = chain()
    assert [e.seq for e in entries] == [1, 2, 3] and entries[0].prev_hash == audit.GENESIS
    assert entries[1].prev_hash == entries[0].entry_hash
    assert entries[0].after_hash == audit.digest({"status": 1, "total": Decimal("1.10")})
    assert audit.verify(reversed(entries), {"contract:c1": head(entries)}) == []


def test_an_edited_entry_is_named():
    entries = chain()
    entries[1] = dataclasses.replace(entries[1], actor="someone-else")
    assert [str(b) for b in audit.verify(entries, {"contract:c1": head(entries)})] == [
        "contract:c1#2: content does not match its hash: the entry was edited"]


def test_a_deleted_entry_in_the_middle_or_at_the_end_is_named():
    entries = chain()
    middle = audit.verify([entries[0], entries[2]], {"contract:c1": head(entries)})
    assert {(b.seq, b.problem.split(":")[0]) for b in middle} == {
        (3, "expected entry 2 here"), (3, "does not follow the entry before it (prev_hash differs)")}
    tail = audit.verify(entries[:2], {"contract:c1": head(entries)})
    assert [b.seq for b in tail] == [3] and "removed from the end" in tail[0].problem
    assert audit.verify([], {"contract:c1": head(entries)})[0].stream == "contract:c1"


def test_money_is_hashed_exactly_and_floats_are_refused():
    assert audit.digest({"a": Decimal("1.10")}) != audit.digest({"a": Decimal("1.1")})
    with pytest.raises(TypeError):
        audit.digest({"a": 1.1})


# --- comparing versions ----------------------------------------------------------------------------

def view(number: int, articles: list[tuple[str, str]], positions=None, variables=None, language="en") -> VersionView:
    doc = ContractDocument(language=language, title="T", number="N", version=number,
                           articles=tuple(Article(k, k.title(), (Paragraph(text),)) for k, text in articles))
    return VersionView(number, variables or {}, positions or {}, {k: "1.0.0" for k, _ in articles}, doc)


def test_variables_are_compared_field_by_field_by_json_pointer():
    old = view(1, [], variables={"price": {"amount": "100.00"}, "tranches": [{"percent": 30}], "a/b": 1})
    new = view(2, [], variables={"price": {"amount": "120.00"}, "tranches": [{"percent": 30}, {"percent": 70}]})
    assert compare(old, new)["variables"] == [
        {"pointer": "/price/amount", "change": "changed", "from": "100.00", "to": "120.00"},
        {"pointer": "/tranches/1", "change": "added", "to": {"percent": 70}},
        {"pointer": "/a~1b", "change": "removed", "from": 1},
    ]


def test_clauses_are_matched_by_key_word_by_word():
    old = view(1, [("scope", "The Supplier shall build the system."), ("fees", "Fees are due in 30 days."),
                   ("ip", "IP belongs to the Client.")], positions={"fees": "standard"})
    new = view(2, [("intro", "New."), ("scope", "The Supplier shall build and run the system."),
                   ("fees", "Fees are due in 30 days.")], positions={"fees": "extended"})
    changes = {c["clause"]: c for c in compare(old, new)["clauses"]}
    assert [c for c in changes] == ["intro", "scope", "fees", "ip"]
    assert changes["intro"]["change"] == "added" and changes["ip"]["change"] == "removed"
    assert changes["scope"]["text"] == [["equal", "The Supplier shall build "], ["insert", "and run "],
                                        ["equal", "the system."]]
    assert changes["fees"]["change"] == "position_changed"
    assert changes["fees"]["position"] == {"from": "standard", "to": "extended"}
    assert "moved" not in changes["scope"]                        # renumbered by an insertion, not moved


def test_chinese_text_is_compared_character_by_character_and_moves_are_seen():
    old = view(1, [("a", "甲方应在五日内付款。"), ("b", "保密。"), ("c", "争议。")], language="zh-CN")
    new = view(2, [("a", "甲方应在十日内付款。"), ("c", "争议。"), ("b", "保密。")], language="zh-CN")
    changes = {c["clause"]: c for c in compare(old, new)["clauses"]}
    assert changes["a"]["text"] == [["equal", "甲方应在"], ["delete", "五"], ["insert", "十"], ["equal", "日内付款。"]]
    moved = [c for c in changes.values() if c["change"] == "moved"]
    assert len(moved) == 1 and moved[0]["moved"]["from"] != moved[0]["moved"]["to"]
    assert moved_clauses(["a", "b", "c"], ["a", "x", "b", "c"]) == set()
