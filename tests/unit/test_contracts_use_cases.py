"""The contracts use cases against an in-memory unit of work (tests/fakes_contracts.py): outcomes,
the events the aggregates record and whether the unit committed, with no database or broker."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import pytest

from services.contracts.domain.approvals import Review
from services.contracts.domain.change_approval import Assessment
from services.contracts.domain.change_requests import ProposedChange
from services.contracts.domain.contract import document_of
from services.contracts.service_layer import change_requests, drafting, lifecycle
from services.contracts.service_layer.catalogue import Catalogue
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid, PreconditionFailed, PreconditionRequired
from shared.local_time import SHANGHAI
from tests.fakes_contracts import FakeUnitOfWork

ORG = "acme"
AUTHOR = Principal("author-zhang", ORG, frozenset({"legal"}))
OTHER_ORG = Principal("legal-wang", "globex", frozenset({"legal"}))
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
CHANGE = ProposedChange(variables={"project_name": "扩展版"})
ROLES_OF = {"legal": "legal-li", "finance": "finance-zhao", "approver": "approver-qian", "pm": "pm-sun"}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def _variables(catalogue: Catalogue, **changes) -> dict:
    samples = catalogue.builtin.template("software_development").sample_variables
    return {**json.loads(json.dumps(samples, default=str)), **changes}


def _draft(uow, catalogue, **changes) -> str:
    request = drafting.DraftRequest("software_development", "zh-CN", _variables(catalogue, **changes), {})
    status, answer = drafting.draft_contract(uow, catalogue, AUTHOR, request, NOW)
    assert status == 201
    return answer["id"]


def _decider(step: dict) -> Principal:
    role = step["roles"][0]
    return Principal(ROLES_OF.get(role, f"{role}-user"), ORG, frozenset({role}))


def _approved(uow, catalogue) -> str:
    """A contract drafted, submitted and taken through every step of its review."""
    cid = _draft(uow, catalogue)
    contract = lifecycle.submit(uow, AUTHOR, cid, NOW)
    while contract.status == "in_review":
        review = Review.from_dict(contract.review)
        approver = Principal("approver-qian", ORG, frozenset({"approver"}))
        if review.open_blockers():
            contract = lifecycle.override(uow, approver, cid, NOW, review.open_blockers()[0]["id"], "accepted")
        else:
            contract = lifecycle.approve(uow, _decider(review.pending_steps()[0]), cid, NOW, None, "ok")
    return cid


def _signed(uow, catalogue) -> str:
    cid = _approved(uow, catalogue)
    lifecycle.request_signatures(uow, AUTHOR, cid, NOW)
    lifecycle.sign(uow, AUTHOR, cid, NOW, "client", "Li Lei", "handwritten")
    lifecycle.sign(uow, Principal("vendor-han", ORG, frozenset({"vendor"})), cid, NOW, "vendor", "Han Meimei",
                   "company_seal")
    return cid


# --- drafting --------------------------------------------------------------------------------------

def test_drafting_stores_version_one_in_draft_and_records_contract_drafted(uow, catalogue):
    cid = _draft(uow, catalogue)
    stored = uow.contracts.items[cid]
    assert (stored.status, stored.version, stored.org, stored.authors) == ("draft", 1, ORG, [AUTHOR.sub])
    assert uow.contracts.version(stored, 1).template_key == "software_development"
    assert uow.committed and uow.types() == ["contract.drafted"]
    assert uow.events[0].version == 1 and uow.events[0].contract_id == cid
    assert uow.audit.actions(cid) == ["contract.drafted"]


def test_a_contract_number_already_used_is_a_conflict_and_nothing_is_stored(uow, catalogue):
    _draft(uow, catalogue)
    commits, events = uow.commits, list(uow.events)
    with pytest.raises(Conflict, match="already used"):
        _draft(uow, catalogue)
    assert len(uow.contracts.items) == 1 and uow.commits == commits and uow.events == events


def test_an_edit_needs_the_current_etag_and_makes_version_two(uow, catalogue):
    cid = _draft(uow, catalogue)
    edit = drafting.Edit({"project_name": "新名称"}, None, reason="rename", patch=True)
    with pytest.raises(PreconditionRequired):
        drafting.revise_contract(uow, catalogue, AUTHOR, cid, None, edit, NOW)
    with pytest.raises(PreconditionFailed):
        drafting.revise_contract(uow, catalogue, AUTHOR, cid, '"7"', edit, NOW)
    contract, new = drafting.revise_contract(uow, catalogue, AUTHOR, cid, '"1"', edit, NOW)
    assert contract.version == new.version == 2 and new.variables["project_name"] == "新名称"
    assert uow.contracts.items[cid].version == 2
    assert [(e.event_type, e.version) for e in uow.events] == [("contract.drafted", 1), ("contract.drafted", 2)]


def test_a_version_rendered_ahead_of_an_edit_that_lands_meanwhile_is_drafted_again_in_the_transaction(
        uow, catalogue, monkeypatch):
    """The new version is rendered before the write transaction; when another edit lands in between,
    the version stored is drafted from the contract as it is then, and its SHA-256 is of that text."""
    cid = _draft(uow, catalogue)
    render, rendered = drafting.render_docx, []

    def render_while_another_edits(document):
        rendered.append(document.version)
        if len(rendered) == 1:     # the first edit's render, ahead: the second edit commits meanwhile
            drafting.revise_contract(uow, catalogue, AUTHOR, cid, '"1"',
                                     drafting.Edit({"sign_place": "上海市浦东新区"}, None, patch=True), NOW)
        return render(document)

    monkeypatch.setattr(drafting, "render_docx", render_while_another_edits)
    contract, new = drafting.revise_contract(uow, catalogue, AUTHOR, cid, "*",
                                             drafting.Edit({"project_name": "新名称"}, None, patch=True), NOW)
    assert rendered == [2, 2, 3]       # ahead (stale), the other edit's, then again inside for version 3
    assert contract.version == new.version == 3
    assert (new.variables["project_name"], new.variables["sign_place"]) == ("新名称", "上海市浦东新区")
    assert new.docx_sha256 == hashlib.sha256(render(document_of(new))).hexdigest()


def test_a_version_rendered_ahead_is_stored_without_rendering_again(uow, catalogue, monkeypatch):
    cid = _draft(uow, catalogue)
    render, rendered = drafting.render_docx, []
    monkeypatch.setattr(drafting, "render_docx", lambda document: rendered.append(document.version) or render(document))
    _, new = drafting.revise_contract(uow, catalogue, AUTHOR, cid, '"1"',
                                      drafting.Edit({"project_name": "新名称"}, None, patch=True), NOW)
    assert rendered == [2]
    assert new.docx_sha256 == hashlib.sha256(render(document_of(new))).hexdigest()


def test_another_organisation_never_finds_the_contract(uow, catalogue):
    cid = _draft(uow, catalogue)
    with pytest.raises(Exception) as caught:
        lifecycle.submit(uow, OTHER_ORG, cid, NOW)
    assert caught.value.status == 404
    assert uow.contracts.items[cid].status == "draft"


# --- review and approval ---------------------------------------------------------------------------

def test_submitting_opens_the_review_the_policy_gives_and_records_contract_submitted(uow, catalogue):
    cid = _draft(uow, catalogue)
    contract = lifecycle.submit(uow, AUTHOR, cid, NOW)
    assert contract.status == "in_review" and uow.contracts.items[cid].status == "in_review"
    submitted = uow.events[-1]
    assert submitted.event_type == "contract.submitted" and submitted.round == 1
    assert submitted.steps[0] == "legal"
    assert uow.contracts.items[cid].revision == 2
    with pytest.raises(Conflict) as caught:
        lifecycle.submit(uow, AUTHOR, cid, NOW)
    assert "in_review" in caught.value.detail


def test_whoever_wrote_the_contract_never_approves_it(uow, catalogue):
    cid = _draft(uow, catalogue)
    lifecycle.submit(uow, AUTHOR, cid, NOW)
    events = len(uow.events)
    with pytest.raises(Forbidden):
        lifecycle.approve(uow, AUTHOR, cid, NOW, None, None)
    assert uow.contracts.items[cid].status == "in_review" and len(uow.events) == events
    assert uow.contracts.stored_decisions == []


def test_the_last_step_approves_and_a_rejection_goes_back_to_draft(uow, catalogue):
    cid = _approved(uow, catalogue)
    assert uow.contracts.items[cid].status == "approved"
    assert uow.types()[-1] == "contract.approved"
    assert {d.decision for d in uow.contracts.stored_decisions} >= {"approved"}

    other = _draft(uow, catalogue, contract_number="JC-SD-2026-0100")
    lifecycle.submit(uow, AUTHOR, other, NOW)
    reviewer = Principal("legal-li", ORG, frozenset({"legal"}))
    contract = lifecycle.reject(uow, reviewer, other, NOW, "fix clause 3")
    assert contract.status == "draft" and uow.events[-1].event_type == "contract.rejected"
    assert uow.events[-1].comment == "fix clause 3"


# --- signatures and key dates ----------------------------------------------------------------------

def test_the_last_signature_seals_the_document_and_records_contract_signed(uow, catalogue):
    cid = _signed(uow, catalogue)
    stored = uow.contracts.items[cid]
    assert stored.status == "signed" and stored.signed_version == 1
    document = uow.contracts.signed_document(stored)
    assert document.sha256 == stored.signed_sha256 and document.content[:2] == b"PK"
    signed = [e for e in uow.events if e.event_type == "contract.signed"]
    assert len(signed) == 1 and signed[0].document_sha256 == stored.signed_sha256
    assert signed[0].terms.contract_id == cid
    with pytest.raises(Conflict):
        lifecycle.sign(uow, AUTHOR, cid, NOW, "client", "Li Lei", "handwritten")


def test_the_scheduler_activates_on_the_effective_date_once(uow, catalogue):
    cid = _signed(uow, catalogue)
    effective = uow.contracts.items[cid].effective_date
    day_after = dt.datetime.combine(effective + dt.timedelta(days=1), dt.time(9), SHANGHAI)
    done, wake = lifecycle.advance_key_dates(lambda: uow, day_after)
    assert done >= 1 and uow.contracts.items[cid].status == "active"
    activated = [e for e in uow.events if e.event_type == "contract.activated"]
    assert len(activated) == 1 and activated[0].activated_on == effective + dt.timedelta(days=1)
    assert wake > day_after
    again, _ = lifecycle.advance_key_dates(lambda: uow, day_after)
    assert again == 0 and len([e for e in uow.events if e.event_type == "contract.activated"]) == 1


def test_a_key_date_change_lost_to_another_replica_is_not_announced(uow, catalogue):
    cid = _signed(uow, catalogue)
    stored = uow.contracts.items[cid]
    day = dt.datetime.combine(stored.effective_date, dt.time(9), SHANGHAI)
    original = uow.contracts.save_claimed

    def lose(aggregate, **expected):
        uow.contracts.items[cid].revision += 1      # another scheduler claimed it first
        return original(aggregate, **expected)
    uow.contracts.save_claimed = lose
    events = len(uow.events)
    assert lifecycle.advance_one(uow, cid, stored.effective_date, day) is False
    assert uow.contracts.items[cid].status == "signed" and len(uow.events) == events


# --- change requests -------------------------------------------------------------------------------

def test_a_change_request_is_raised_against_a_signed_contract_only(uow, catalogue):
    draft_id = _draft(uow, catalogue, contract_number="JC-SD-2026-0200")
    change = CHANGE
    with pytest.raises(Conflict, match="signed or active"):
        change_requests.raise_request(uow, catalogue, AUTHOR, draft_id, title="t", description="d", reason="r",
                                      kinds=["schedule"], change=change, now=NOW)
    assert uow.change_requests.items == {}


def test_raising_and_submitting_starts_the_clock_and_records_submitted(uow, catalogue):
    cid = _signed(uow, catalogue)
    pm = Principal("pm-sun", ORG, frozenset({"pm"}))
    cr = change_requests.raise_request(uow, catalogue, pm, cid, title="More testing", description="d", reason="r",
                                       kinds=["scope"], change=CHANGE, now=NOW, submit_now=True)
    stored = uow.change_requests.items[cr.id]
    assert (stored.status, stored.number, stored.base_version) == ("submitted", 1, 1)
    assert stored.assessment_due_at > NOW
    submitted = uow.events[-1]
    assert submitted.event_type == "change_request.submitted" and submitted.number == "CR-1"
    assert uow.audit.actions(cid)[-2:] == ["change_request.raised", "change_request.submit"]

    approver = Principal("approver-qian", ORG, frozenset({"approver"}))
    assessed = change_requests.assess(uow, catalogue, approver, cr.id,
                                      Assessment(cost=Decimal("5000.00"), schedule_days=3, risk="low"), NOW)
    assert assessed.status == "assessed" and uow.events[-1].event_type == "change_request.assessed"
    with pytest.raises(Forbidden):
        change_requests.approve(uow, pm, cr.id, "mine", NOW)    # four eyes: the one who raised it


def test_the_submitter_is_on_the_review_and_decides_none_of_it(uow, catalogue):
    cid = _draft(uow, catalogue, contract_number="JC-SD-2026-0300")
    submitter = Principal("legal-li", ORG, frozenset({"legal"}))
    contract = lifecycle.submit(uow, submitter, cid, NOW)
    assert Review.from_dict(contract.review).submitted_by == "legal-li"
    with pytest.raises(Forbidden, match="submitted"):
        lifecycle.approve(uow, submitter, cid, NOW, None, None)
    assert uow.contracts.stored_decisions == []


PM, ASSESSOR = Principal("pm-sun", ORG, frozenset({"pm"})), Principal("pm-qian", ORG, frozenset({"pm"}))
APPROVER = Principal("approver-qian", ORG, frozenset({"approver"}))


def _raised(uow, catalogue, change: ProposedChange, kinds=("scope",)) -> tuple[str, str]:
    cid = _signed(uow, catalogue)
    cr = change_requests.raise_request(uow, catalogue, PM, cid, title="t", description="d", reason="r",
                                       kinds=list(kinds), change=change, now=NOW, submit_now=True)
    return cid, cr.id


def test_the_raiser_cannot_assess_and_nothing_is_written(uow, catalogue):
    _, rid = _raised(uow, catalogue, CHANGE)
    commits = uow.commits
    with pytest.raises(Forbidden, match="raised"):
        change_requests.assess(uow, catalogue, PM, rid, Assessment(cost=Decimal("0.00"), schedule_days=0,
                                                                    risk="low"), NOW)
    assert uow.change_requests.items[rid].status == "submitted" and uow.commits == commits


def test_only_the_raiser_submits_and_admin_alone_does_not_screen(uow, catalogue):
    cid = _signed(uow, catalogue)
    cr = change_requests.raise_request(uow, catalogue, PM, cid, title="t", description="d", reason="r",
                                       kinds=["scope"], change=CHANGE, now=NOW)
    with pytest.raises(Forbidden, match="raised"):
        change_requests.submit(uow, Principal("legal-li", ORG, frozenset({"legal"})), cr.id, NOW)
    change_requests.submit(uow, PM, cr.id, NOW)
    with pytest.raises(Forbidden, match="administrator"):
        change_requests.reject(uow, Principal("admin-1", ORG, frozenset({"admin"})), cr.id, "no", NOW)
    assert uow.change_requests.items[cr.id].status == "submitted"
    assert change_requests.reject(uow, ASSESSOR, cr.id, "out of scope", NOW).status == "rejected"


def test_the_chain_follows_the_computed_price_change_not_the_declared_cost(uow, catalogue):
    up = ProposedChange.model_validate({"total_price": "1486000.00",
                                        "tranches": [{"key": "acceptance", "amount": "650100.00"}]})
    _, rid = _raised(uow, catalogue, up)
    assessed = change_requests.assess(uow, catalogue, ASSESSOR, rid,
                                      Assessment(cost=Decimal("-50.00"), schedule_days=0, risk="low"), NOW)
    assert [s["key"] for s in assessed.review["steps"]] == ["pm", "finance"]
    assert assessed.review["price_change"] == "200000.00" and assessed.review["blockers"] == []


DISPATCH = ProposedChange.model_validate({"clauses": {"subcontracting": {"custom": {
    "zh-CN": "乙方人员由甲方直接管理，服从甲方安排。", "en": "The vendor's personnel are under the client's direct management."}}}})


def test_an_amendment_with_a_high_finding_is_approved_only_after_an_override(uow, catalogue):
    _, rid = _raised(uow, catalogue, DISPATCH, kinds=("terms",))
    assessed = change_requests.assess(uow, catalogue, ASSESSOR, rid,
                                      Assessment(cost=Decimal("0.00"), schedule_days=0, risk="high"), NOW)
    findings = [b["id"] for b in assessed.review["blockers"]]
    assert "dispatch_management:subcontracting" in findings
    finding, *others = findings
    change_requests.approve(uow, Principal("pm-zhou", ORG, frozenset({"pm"})), rid, None, NOW)
    held = change_requests.approve(uow, Principal("legal-li", ORG, frozenset({"legal"})), rid, None, NOW)
    assert held.status == "assessed" and "change_request.approved" not in uow.types()
    with pytest.raises(Invalid):
        change_requests.override(uow, APPROVER, rid, finding, "  ", NOW)
    for other in others:   # every blocking finding needs its own override
        assert change_requests.override(uow, APPROVER, rid, other, "措辞将另行修订", NOW).status == "assessed"
    done = change_requests.override(uow, APPROVER, rid, finding, "措辞将另行修订", NOW)
    assert done.status == "approved" and uow.types()[-1] == "change_request.approved"
    assert uow.audit.actions(done.contract_id)[-1] == "change_request.override"


def test_an_overdue_request_is_announced_once(uow, catalogue):
    cid = _signed(uow, catalogue)
    cr = change_requests.raise_request(uow, catalogue, AUTHOR, cid, title="t", description="d", reason="r",
                                       kinds=["scope"], change=CHANGE, now=NOW, submit_now=True)
    due = uow.change_requests.items[cr.id].assessment_due_at
    assert change_requests.announce_overdue(lambda: uow, due - dt.timedelta(seconds=1)) == (0, due)
    assert change_requests.announce_overdue(lambda: uow, due + dt.timedelta(seconds=1))[0] == 1
    assert change_requests.announce_overdue(lambda: uow, due + dt.timedelta(days=1)) == (0, None)
    assert [e.event_type for e in uow.events].count("change_request.overdue") == 1


def test_paid_outranks_invoiced_for_a_tranche_lock(uow):
    change_requests.lock_tranche(uow, ORG, "c1", "t1", "paid", NOW)
    change_requests.lock_tranche(uow, ORG, "c1", "t1", "invoiced", NOW)
    change_requests.lock_tranche(uow, ORG, "c1", "t2", "invoiced", NOW)
    assert uow.tranche_locks.of_contract("c1") == {"t1": "paid", "t2": "invoiced"}
    assert uow.commits == 3
