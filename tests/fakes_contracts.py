"""An in-memory unit of work for the contracts use cases (as cosmicpython's FakeUnitOfWork).

It has the repository attributes of `ContractsUnitOfWork`, each an in-memory fake, and records
what a real one would: that it committed, the aggregates it collected and the events that left
through its outbox. Aggregates are stored as copies, so a use case that forgets to `save` what it
changed is caught just as it would be against the database.
"""
from __future__ import annotations

import copy
import datetime as dt
from types import SimpleNamespace
from typing import Any

from services.contracts.domain.change_requests import ChangeStatus
from shared.errors import NotFound


def _stored(aggregate):
    kept = copy.deepcopy(aggregate)
    kept.events = []
    return kept


class _Aggregates:
    what = "aggregate"

    def __init__(self):
        self.items: dict[str, Any] = {}

    def _copy(self, found):
        return _stored(found) if found is not None else None

    def find(self, item_id: str):
        return self._copy(self.items.get(item_id))

    def _get(self, org: str, item_id: str):
        found = self.items.get(item_id)
        if found is None or found.org != org:
            raise NotFound(f"No {self.what} {item_id}.")
        return self._copy(found)

    def save(self, aggregate) -> None:
        self.items[aggregate.id] = _stored(aggregate)

    def save_claimed(self, aggregate, **expected) -> bool:
        stored = self.items[aggregate.id]
        if any(getattr(stored, name) != value for name, value in expected.items()):
            return False
        self.save(aggregate)
        return True


class FakeContracts(_Aggregates):
    what = "contract"

    def __init__(self):
        super().__init__()
        self.stored_versions: dict[tuple[str, int], SimpleNamespace] = {}
        self.stored_signatures: list[SimpleNamespace] = []
        self.stored_documents: list[SimpleNamespace] = []
        self.stored_decisions: list[SimpleNamespace] = []

    def get(self, org: str, contract_id: str, *, for_update: bool = False):
        return self._get(org, contract_id)

    def add(self, contract, first: dict) -> SimpleNamespace:
        self.save(contract)
        return self.add_version(first)

    def add_version(self, fields: dict) -> SimpleNamespace:
        version = SimpleNamespace(**fields)
        self.stored_versions[(version.contract_id, version.version)] = version
        return version

    def number_taken(self, org: str, number: str) -> bool:
        return any(c.org == org and c.number == number for c in self.items.values())

    def version(self, contract, number: int):
        try:
            return self.stored_versions[(contract.id, number)]
        except KeyError:
            raise NotFound(f"Contract {contract.id} has no version {number}.") from None

    def versions(self, contract_id: str) -> list:
        return sorted((v for (cid, _), v in self.stored_versions.items() if cid == contract_id),
                      key=lambda v: v.version)

    def signatures(self, contract) -> list:
        return [s for s in self.stored_signatures if s.contract_id == contract.id and s.version == contract.version]

    def add_signature(self, **fields) -> None:
        self.stored_signatures.append(SimpleNamespace(**fields))

    def signed_document(self, contract):
        return next((d for d in self.stored_documents
                     if d.contract_id == contract.id and d.version == contract.signed_version), None)

    def add_signed_document(self, **fields) -> None:
        self.stored_documents.append(SimpleNamespace(**fields))

    def decisions(self, contract) -> list:
        return [d for d in self.stored_decisions if d.contract_id == contract.id]

    def add_decision(self, **fields) -> None:
        self.stored_decisions.append(SimpleNamespace(**fields))

    def needing_attention(self, today: dt.date) -> list[str]:
        return sorted(c.id for c in self.items.values() if c.key_date_due(today))


class FakeChangeRequests(_Aggregates):
    what = "change request"

    def get(self, org: str, request_id: str, *, for_update: bool = False):
        return self._get(org, request_id)

    def add(self, cr) -> None:
        self.save(cr)

    def next_number(self, contract_id: str) -> int:
        return 1 + max((cr.number for cr in self.items.values() if cr.contract_id == contract_id), default=0)

    def of_contract(self, org: str, contract_id: str) -> list:
        return sorted((self._copy(cr) for cr in self.items.values()
                       if cr.org == org and cr.contract_id == contract_id), key=lambda cr: cr.number)

    def implemented_since(self, contract_id: str, version: int) -> list:
        return [self._copy(cr) for cr in self.items.values() if cr.contract_id == contract_id
                and cr.status == ChangeStatus.IMPLEMENTED and cr.implemented_version > version]

    def overdue_candidates(self, now: dt.datetime) -> list[str]:
        return [cr.id for cr in self.items.values() if cr.status == ChangeStatus.SUBMITTED
                and cr.overdue_at is None and cr.assessment_due_at <= now]

    def next_deadline(self) -> dt.datetime | None:
        return min((cr.assessment_due_at for cr in self.items.values()
                    if cr.status == ChangeStatus.SUBMITTED and cr.overdue_at is None), default=None)


class FakeTrancheLocks:
    def __init__(self):
        self.locks: dict[tuple[str, str], str] = {}

    def of_contract(self, contract_id: str) -> dict[str, str]:
        return {key: state for (cid, key), state in self.locks.items() if cid == contract_id}

    def lock(self, org: str, contract_id: str, tranche_key: str, state: str, at: dt.datetime) -> None:
        if state == "paid" or (contract_id, tranche_key) not in self.locks:
            self.locks[(contract_id, tranche_key)] = state


class FakeClauseVersions:
    """An organisation without clause versions of its own: the built-in library as it is."""

    def fingerprint(self, org: str):
        return None

    def rows(self, org: str, key: str | None = None) -> list:
        return []


class FakePolicies:
    def __init__(self):
        self.stored: dict[tuple[str, str], dict] = {}

    def get(self, kind: str, org: str) -> dict | None:
        return self.stored.get((kind, org))

    def replace(self, kind: str, org: str, stored: dict, actor: str, now: dt.datetime) -> dict | None:
        before = self.stored.get((kind, org))
        self.stored[(kind, org)] = stored
        return before


class FakeAudit:
    def __init__(self):
        self.entries: list[dict] = []

    def record(self, **entry) -> None:
        self.entries.append(entry)

    def append(self, **entry) -> None:
        self.entries.append(entry)

    def actions(self, contract_id: str) -> list[str]:
        return [e["action"] for e in self.entries if e.get("contract_id") == contract_id]


class FakeUnitOfWork:
    """Duck-typed `ContractsUnitOfWork`: the same repositories, in memory; `events` is the outbox."""

    def __init__(self, now: dt.datetime | None = None):
        self.contracts = FakeContracts()
        self.change_requests = FakeChangeRequests()
        self.tranche_locks = FakeTrancheLocks()
        self.clause_versions = FakeClauseVersions()
        self.policies = FakePolicies()
        self.audit = FakeAudit()
        self.idempotency_keys = None     # shared.idempotency.once only reads it with a key given
        self.session = None
        self.commits = 0
        self.events: list = []          # what left through the outbox, in order
        self._tracked: list = []
        self._depth = 0
        self._now = now or dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.timezone.utc)

    def clock(self) -> dt.datetime:
        return self._now

    def __enter__(self):
        self._depth += 1
        return self

    def __exit__(self, *_):
        self._depth -= 1
        if self._depth == 0:
            self._tracked.clear()     # an owner leaving without commit: collected events are dropped

    def collect(self, *aggregates) -> None:
        self._tracked.extend(a for a in aggregates if a is not None)

    def emit(self, payload, subject=None, at=None) -> None:
        self.events.append(payload)

    def commit(self) -> None:
        for aggregate in self._tracked:
            while aggregate.events:
                self.events.append(aggregate.events.pop(0))
        if self._depth <= 1:
            self._tracked.clear()
            self.commits += 1

    def rollback(self) -> None:
        self._tracked.clear()

    @property
    def committed(self) -> bool:
        return self.commits > 0

    def types(self) -> list[str]:
        return [e.event_type for e in self.events]
