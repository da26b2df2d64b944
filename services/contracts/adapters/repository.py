"""Contracts, their versions, change requests, an organisation's clause versions and policies in
the database: the only place the contracts service builds SQL (besides `tables.py`, the audit log
and `views.py`).

Aggregates (`Contract`, `ChangeRequest`) are loaded from their rows and saved back onto them;
the repository keeps the row it loaded, so `save` writes what the aggregate changed into the
same session. Versions are only ever added. Search runs on columns copied from the current
version onto the contract row, lower-cased in Python so SQLite and PostgreSQL compare the same;
on PostgreSQL a GIN index over the text's character bigrams (`search_grams`, kept here whenever
`search_text` changes) finds the candidates and `LIKE` confirms them (README: "Search").
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, cast, false, func, literal, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import Text

from services.contracts.adapters.tables import (ApprovalDecisionRow, ApprovalPolicyRow, ChangePolicyRow,
                                                ChangeRequestRow, ClauseVersionRow, ContractRow, ContractVersionRow,
                                                SignatureRow, SignedDocumentRow, TrancheLockRow)
from services.contracts.domain import lifecycle as states
from services.contracts.domain.change_request import ChangeRequest
from services.contracts.domain.change_requests import ChangeStatus
from services.contracts.domain.contract import Contract
from shared.errors import NotFound
from shared.scheduler import claim


class Duplicate(Exception):
    """A unique key (a contract number) taken at the same moment by another transaction."""


class _AggregateRows:
    """Load an aggregate from its row, keep the row, save the aggregate back onto it."""
    row_type: type
    aggregate: type

    def __init__(self, session: Session):
        self.session = session
        self._rows: dict[str, Any] = {}

    def _load(self, row):
        if row is None:
            return None
        self._rows[row.id] = row
        # JSON columns copied: a change made in place must show as a change when saved
        return self.aggregate(**{name: copy.deepcopy(getattr(row, name)) for name in self.aggregate.state_fields()})

    def save(self, aggregate) -> None:
        row = self._rows[aggregate.id]
        for name, value in aggregate.state().items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                self._derived(row, name)
        self._flush_unique()

    def _derived(self, row, name: str) -> None:
        """Columns kept from others (none but the contracts' search bigrams)."""

    def _flush_unique(self) -> None:
        try:
            self.session.flush()
        except IntegrityError:
            raise Duplicate() from None

    def save_claimed(self, aggregate, **expected) -> bool:
        """Save with a conditional UPDATE that only succeeds while the row still holds `expected`
        (e.g. the revision it was read at): False when another replica changed it first."""
        row = self._rows[aggregate.id]
        changes = {name: value for name, value in aggregate.state().items() if getattr(row, name) != value}
        won = claim(self.session, self.row_type.__table__, aggregate.id,
                    **{f"expect_{name}": value for name, value in expected.items()}, **changes)
        if won:
            self.session.expire(row)
            if "search_text" in changes:   # no claim changes the text today; if one does, its bigrams follow
                self._derived(row, "search_text")
        return won


# ---------------------------------------------------------------------- contracts

class ContractRepository(_AggregateRows):
    row_type, aggregate = ContractRow, Contract

    def get(self, org: str, contract_id: str, *, for_update: bool = False) -> Contract:
        query = select(ContractRow).where(ContractRow.id == contract_id, ContractRow.org == org)
        found = self._load(self.session.scalar(query.with_for_update() if for_update else query))
        if found is None:
            raise NotFound(f"No contract {contract_id}.")
        return found

    def vendor_party(self, org: str, contract_id: str) -> str | None:
        """Only the vendor party's credit code (counterparty scoping reads it before anything else)."""
        found = self.session.execute(select(ContractRow.vendor_party).where(
            ContractRow.id == contract_id, ContractRow.org == org)).first()
        if found is None:
            raise NotFound(f"No contract {contract_id}.")
        return found.vendor_party

    def find(self, contract_id: str) -> Contract | None:
        """Any organisation's contract (the scheduler's view)."""
        return self._load(self.session.get(ContractRow, contract_id))

    def _derived(self, row, name: str) -> None:
        if name == "search_text":
            row.search_grams = search_grams(row.search_text)

    def add(self, contract: Contract, first: dict[str, Any]) -> ContractVersionRow:
        row = ContractRow(**contract.state())
        self._derived(row, "search_text")
        version = ContractVersionRow(**first)
        self.session.add(row)
        self.session.add(version)
        self._flush_unique()
        self._rows[row.id] = row
        return version

    def add_version(self, fields: dict[str, Any]) -> ContractVersionRow:
        version = ContractVersionRow(**fields)
        self.session.add(version)
        self._flush_unique()
        return version

    def number_taken(self, org: str, number: str) -> bool:
        return self.session.scalar(select(ContractRow.id).where(ContractRow.org == org,
                                                                ContractRow.number == number)) is not None

    def version(self, contract: Any, number: int) -> ContractVersionRow:
        found = self.session.scalar(select(ContractVersionRow).where(
            ContractVersionRow.contract_id == contract.id, ContractVersionRow.version == number))
        if found is None:
            raise NotFound(f"Contract {contract.id} has no version {number}.")
        return found

    def versions(self, contract_id: str) -> list[ContractVersionRow]:
        return list(self.session.scalars(select(ContractVersionRow).where(ContractVersionRow.contract_id == contract_id)
                                         .order_by(ContractVersionRow.version)))

    # signatures, the signed document and the decisions of every review round

    def signatures(self, contract: Any) -> list[SignatureRow]:
        return list(self.session.scalars(select(SignatureRow).where(
            SignatureRow.contract_id == contract.id, SignatureRow.version == contract.version)
            .order_by(SignatureRow.signed_at, SignatureRow.party)))

    def add_signature(self, **fields) -> None:
        self.session.add(SignatureRow(**fields))

    def signed_document(self, contract: Any) -> SignedDocumentRow | None:
        return self.session.scalar(select(SignedDocumentRow).where(
            SignedDocumentRow.contract_id == contract.id, SignedDocumentRow.version == contract.signed_version))

    def add_signed_document(self, **fields) -> None:
        self.session.add(SignedDocumentRow(**fields))

    def decisions(self, contract: Any) -> list[ApprovalDecisionRow]:
        return list(self.session.scalars(select(ApprovalDecisionRow).where(ApprovalDecisionRow.contract_id == contract.id)
                                         .order_by(ApprovalDecisionRow.round, ApprovalDecisionRow.decided_at,
                                                   ApprovalDecisionRow.id)))

    def add_decision(self, **fields) -> None:
        self.session.add(ApprovalDecisionRow(**fields))

    def needing_attention(self, today: dt.date) -> list[str]:
        """Contracts with something due today: a narrow indexed read, the exact rule applied here."""
        S, c = states.Status, ContractRow
        horizon = today + dt.timedelta(days=states.MAX_RENEWAL_NOTICE_DAYS)
        maybe = ((c.status == S.SIGNED) & (c.effective_date <= today)) \
            | ((c.status == S.ACTIVE) & (c.end_date < today)) \
            | (c.status.in_([S.SIGNED, S.ACTIVE]) & c.renewal_due_at.is_(None) & (c.end_date <= horizon))
        rows = self.session.execute(select(c.id, c.status, c.effective_date, c.end_date, c.renewal_notice_days,
                                           c.renewal_due_at).where(maybe).order_by(c.id))
        return [r.id for r in rows if states.key_date_due(r.status, r.effective_date, r.end_date,
                                                          r.renewal_notice_days, r.renewal_due_at is not None, today)]

    def search(self, org: str, where: "ContractFilter", after: tuple[dt.datetime, str] | None,
               limit: int) -> list[Contract]:
        return [self._load(row) for row in search(self.session, org, where, after, limit)]


@dataclass(frozen=True)
class ContractFilter:
    """What `GET /v1/contracts` narrows by; None = any."""
    statuses: tuple[str, ...] = ()
    kind: str | None = None
    language: str | None = None
    counterparty: str | None = None       # part of either party's name
    currency: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    expiring_before: dt.date | None = None
    text: str | None = None               # part of the title, number or a party's name
    # A counterparty's view: only contracts whose vendor party is one of these credit codes (None: any)
    vendor_parties: tuple[str, ...] | None = None


def search(session: Session, org: str, where: ContractFilter, after: tuple[dt.datetime, str] | None,
           limit: int) -> list[ContractRow]:
    """Newest first; `after` is the (created_at, id) of the last row of the previous page."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # A prepared statement's generic plan cannot know how common a term is; one planned for
        # these very bigrams walks the newest contracts for a common term and the index for a rare one.
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return list(session.scalars(search_query(org, where, after, limit, postgres=postgres)))


def search_query(org: str, where: ContractFilter, after: tuple[dt.datetime, str] | None, limit: int, *,
                 postgres: bool) -> Select:
    """Pages are keyset ranges of ix_contracts_org_created ((created_at, id) below the last one), so a
    page deep in the list costs what the first does; text is matched with LIKE, and on PostgreSQL
    the term's bigrams narrow the candidates through ix_contracts_search_grams first."""
    c = ContractRow
    query = select(c).where(c.org == org)
    if where.vendor_parties is not None:   # () matches nothing (never `vendor_party IS NULL`)
        query = query.where(c.vendor_party.in_(where.vendor_parties) if where.vendor_parties else false())
    if where.statuses:
        query = query.where(c.status.in_(where.statuses))
    for column, value in ((c.kind, where.kind), (c.language, where.language), (c.currency, where.currency)):
        if value is not None:
            query = query.where(column == value)
    for column, term in ((c.counterparty_text, where.counterparty), (c.search_text, where.text)):
        if term:
            query = query.where(column.contains(term.lower(), autoescape=True))
            grams = search_grams(term.lower())
            if postgres and grams:   # party names are part of search_text: its bigrams narrow both
                query = query.where(c.search_grams.op("@>")(cast(grams, ARRAY(Text()))))
    if where.amount_min is not None:
        query = query.where(c.total_amount >= where.amount_min)
    if where.amount_max is not None:
        query = query.where(c.total_amount <= where.amount_max)
    if where.expiring_before is not None:
        query = query.where(c.end_date < where.expiring_before)
    if after is not None:
        created, last_id = after
        query = query.where(tuple_(c.created_at, c.id) < tuple_(literal(created, c.created_at.type), literal(last_id)))
    return query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)


def search_grams(searched: str) -> list[str]:
    """The distinct character bigrams of each line of `searched` (a term of n characters has n - 1,
    all of them in the text of a contract that contains it), sorted so a row's value is stable."""
    return sorted({line[i:i + 2] for line in searched.split("\n") for i in range(len(line) - 1)})


# ---------------------------------------------------------------------- change requests

class ChangeRequestRepository(_AggregateRows):
    row_type, aggregate = ChangeRequestRow, ChangeRequest

    def get(self, org: str, request_id: str, *, for_update: bool = False) -> ChangeRequest:
        query = select(ChangeRequestRow).where(ChangeRequestRow.id == request_id, ChangeRequestRow.org == org)
        found = self._load(self.session.scalar(query.with_for_update() if for_update else query))
        if found is None:
            raise NotFound(f"No change request {request_id}.")
        return found

    def find(self, request_id: str) -> ChangeRequest | None:
        return self._load(self.session.get(ChangeRequestRow, request_id))

    def add(self, cr: ChangeRequest) -> None:
        row = ChangeRequestRow(**cr.state())
        self.session.add(row)
        self.session.flush()
        self._rows[row.id] = row

    def next_number(self, contract_id: str) -> int:
        return (self.session.scalar(select(func.max(ChangeRequestRow.number)).where(
            ChangeRequestRow.contract_id == contract_id)) or 0) + 1

    def of_contract(self, org: str, contract_id: str) -> list[ChangeRequest]:
        return [self._load(row) for row in self.session.scalars(select(ChangeRequestRow).where(
            ChangeRequestRow.contract_id == contract_id, ChangeRequestRow.org == org)
            .order_by(ChangeRequestRow.number))]

    def implemented_since(self, contract_id: str, version: int) -> list[ChangeRequest]:
        """The requests implemented as a version newer than `version`."""
        return [self._load(row) for row in self.session.scalars(select(ChangeRequestRow).where(
            ChangeRequestRow.contract_id == contract_id, ChangeRequestRow.status == ChangeStatus.IMPLEMENTED,
            ChangeRequestRow.implemented_version > version))]

    def amendments_up_to(self, contract_id: str, version: int) -> int:
        """How many amendments the contract had up to and including `version`."""
        return self.session.scalar(select(func.count()).select_from(ChangeRequestRow).where(
            ChangeRequestRow.contract_id == contract_id, ChangeRequestRow.implemented_version.is_not(None),
            ChangeRequestRow.implemented_version <= version))

    def overdue_candidates(self, now: dt.datetime) -> list[str]:
        return list(self.session.scalars(select(ChangeRequestRow.id).where(
            ChangeRequestRow.status == ChangeStatus.SUBMITTED, ChangeRequestRow.overdue_at.is_(None),
            ChangeRequestRow.assessment_due_at <= now)))

    def next_deadline(self) -> dt.datetime | None:
        """The earliest assessment deadline still to watch (the scheduler wakes up for it)."""
        return self.session.scalar(select(func.min(ChangeRequestRow.assessment_due_at)).where(
            ChangeRequestRow.status == ChangeStatus.SUBMITTED, ChangeRequestRow.overdue_at.is_(None)))


class TrancheLockRepository:
    """The tranches payments has invoiced or paid, as its events told us."""

    def __init__(self, session: Session):
        self.session = session

    def of_contract(self, contract_id: str) -> dict[str, str]:
        rows = self.session.scalars(select(TrancheLockRow).where(TrancheLockRow.contract_id == contract_id))
        return {r.tranche_key: r.state for r in rows}

    def lock(self, org: str, contract_id: str, tranche_key: str, state: str, at: dt.datetime) -> None:
        """Paid outranks invoiced; invoiced never undoes paid."""
        row = self.session.get(TrancheLockRow, (contract_id, tranche_key))
        if row is None:
            self.session.add(TrancheLockRow(contract_id=contract_id, tranche_key=tranche_key, org=org, state=state,
                                            updated_at=at))
        elif state == "paid":
            row.state, row.updated_at = state, at


# ---------------------------------------------------------------------- clause versions

class ClauseVersionRepository:
    """An organisation's own clause versions and its status changes of built-in ones."""

    def __init__(self, session: Session):
        self.session = session

    def rows(self, org: str, key: str | None = None) -> list[ClauseVersionRow]:
        query = select(ClauseVersionRow).where(ClauseVersionRow.org == org)
        if key is not None:
            query = query.where(ClauseVersionRow.key == key)
        return list(self.session.scalars(query.order_by(ClauseVersionRow.created_at, ClauseVersionRow.id)))

    def get(self, org: str, key: str, version: str, *, for_update: bool = False) -> ClauseVersionRow | None:
        query = select(ClauseVersionRow).where(ClauseVersionRow.org == org, ClauseVersionRow.key == key,
                                               ClauseVersionRow.version == version)
        return self.session.scalar(query.with_for_update() if for_update else query)

    def snapshot(self, org: str, key: str, version: str) -> dict:
        """The row as hashed into the clause's audit stream."""
        return self.get(org, key, version).model_dump()

    def fingerprint(self, org: str) -> tuple[int, str] | None:
        """Changes whenever the organisation's clause rows change (None: it has none)."""
        count, newest = self.session.execute(select(func.count(), func.max(ClauseVersionRow.updated_at))
                                             .where(ClauseVersionRow.org == org)).one()
        return (count, str(newest)) if count else None

    def add(self, **fields) -> None:
        self.session.add(ClauseVersionRow(**fields))
        self.session.flush()

    def change(self, row: ClauseVersionRow, **fields) -> None:
        for name, value in fields.items():
            setattr(row, name, value)
        self.session.flush()


# ---------------------------------------------------------------------- an organisation's policies

POLICY_ROWS = {"approval": ApprovalPolicyRow, "change": ChangePolicyRow}


class PolicyRepository:
    """An organisation's approval and change policies, None until it sets one."""

    def __init__(self, session: Session):
        self.session = session

    def get(self, kind: str, org: str) -> dict | None:
        row = self.session.get(POLICY_ROWS[kind], org)
        return row.policy if row else None

    def replace(self, kind: str, org: str, stored: dict, actor: str, now: dt.datetime) -> dict | None:
        """Store an organisation's policy; the one it replaces is returned for the audit trail."""
        row_type = POLICY_ROWS[kind]
        row = self.session.get(row_type, org, with_for_update=True)
        if row is None:
            self.session.add(row_type(org=org, policy=stored, updated_by=actor, updated_at=now))
            return None
        before = row.policy
        row.policy, row.updated_by, row.updated_at = stored, actor, now
        return before
