"""Tables of the contracts service: its own database, shared with no other service.

Every business table carries `org`; every query a caller can reach filters by the caller's org.
The built-in clause library and templates are files in the repository (loaded at start); an
organisation's own clause versions, and its status changes to built-in ones, are rows of its own
here, applied on top. Versions of a contract are immutable rows; the contract row holds its
current state and the columns contracts are searched by.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Column, Index, LargeBinary, MetaData, Numeric, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.service import with_bookkeeping
from shared.tables import BigId, instant_field, json_field

metadata = with_bookkeeping(MetaData())


class Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every contracts table model (a registry of its own: services never share tables)."""




class ClauseVersionRow(Table, table=True):
    """An organisation's version of a clause (variables and positions, status draft | published |
    deprecated), or with `builtin` its status of a built-in version (published or deprecated)."""
    __tablename__ = "clause_versions"
    __table_args__ = (UniqueConstraint("org", "key", "version", name="uq_clause_versions"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    key: str = Field(index=True, max_length=100)
    version: str = Field(max_length=40)
    status: str = Field(max_length=20)
    title: dict = json_field()
    definition: dict = json_field()          # {"variables": [...], "positions": [...], "notes": ...}; {} if builtin
    builtin: bool = False               # the organisation's status of a built-in version
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = instant_field()
    updated_at: dt.datetime = instant_field()


# The character bigrams of a contract's searched text: a text[] under a GIN index on PostgreSQL
# (pg_trgm cannot serve a two-character Chinese term, see the README), plain JSON on SQLite,
# which scans with LIKE and never reads them.
SearchGrams = JSON().with_variant(ARRAY(Text()), "postgresql")


class ContractRow(Table, table=True):
    """A contract's current state. `version` (the newest) is the ETag an edit sends back in If-Match;
    `revision` goes up with every change (the scheduler's conditional updates claim by it)."""
    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("org", "number", name="uq_contracts_number"),
                      Index("ix_contracts_org_created", "org", "created_at", "id"),
                      Index("ix_contracts_status_effective", "status", "effective_date"),
                      Index("ix_contracts_status_end", "status", "end_date"),
                      Index("ix_contracts_org_vendor_party", "org", "vendor_party", "created_at", "id"),
                      # SQLite has no GIN and scans: there the index is declared empty (WHERE 0), so
                      # one schema (and one migration history) serves both and costs SQLite nothing
                      Index("ix_contracts_search_grams", "search_grams", postgresql_using="gin",
                            sqlite_where=text("0")))
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    number: str = Field(max_length=100)
    title: str = Field(max_length=500)
    kind: str = Field(max_length=40)
    language: str = Field(max_length=10)
    template_key: str = Field(max_length=100)
    status: str = Field(max_length=20)
    version: int                          # the current (newest) version
    revision: int
    authors: list = json_field(default=list)   # subs who wrote a version (four eyes)
    client_name: str = Field(max_length=300)
    vendor_name: str = Field(max_length=300)
    # the vendor party's 统一社会信用代码: a counterparty's token sees only the contracts carrying its own
    vendor_party: str | None = Field(default=None, max_length=64)
    search_text: str = Field(max_length=2000)   # lower-cased title, number and parties, for text search
    counterparty_text: str = Field(default="", max_length=1000)   # lower-cased party names, one a line
    search_grams: list = Field(default_factory=list, sa_column=Column(SearchGrams, nullable=False))   # of search_text
    currency: str = Field(max_length=3)
    total_amount: Decimal = Field(sa_column=Column(Numeric(18, 2), nullable=False))
    effective_date: dt.date
    end_date: dt.date
    renewal_notice_days: int
    review: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))   # the current review round
    signed_version: int | None = None
    signed_sha256: str | None = Field(default=None, max_length=64)
    signed_at: dt.datetime | None = instant_field(nullable=True)
    activated_on: dt.date | None = None
    ended_on: dt.date | None = None        # completed, terminated or expired on
    renewal_due_at: dt.datetime | None = instant_field(nullable=True)   # when contract.renewal_due was announced
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = instant_field()
    updated_at: dt.datetime = instant_field()


class ContractVersionRow(Table, table=True):
    """One immutable version: the variables as given, the exact library versions, the terms and the text."""
    __tablename__ = "contract_versions"
    __table_args__ = (UniqueConstraint("contract_id", "version", name="uq_contract_versions"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=32)
    version: int
    template_key: str = Field(max_length=100)
    template_version: str = Field(max_length=40)
    language: str = Field(max_length=10)
    variables: dict = json_field()             # as given in the request (what an edit starts from)
    values: dict = json_field()                # parsed and derived (tranche amounts...), as JSON
    positions: dict = json_field()
    clause_versions: dict = json_field()       # clause key -> version used
    deviations: list = json_field(default=list)
    terms: dict = json_field()                 # ContractTerms (JSON)
    document: dict = json_field()              # ContractDocument (JSON): what every format is rendered from
    docx_sha256: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=2000)   # why this version was made
    change_request_id: str | None = Field(default=None, max_length=32)
    created_by: str = Field(max_length=200)
    created_at: dt.datetime = instant_field()


class SignedDocumentRow(Table, table=True):
    """The DOCX as signed, kept byte for byte: its SHA-256 is frozen on the contract."""
    __tablename__ = "signed_documents"
    __table_args__ = (UniqueConstraint("contract_id", "version", name="uq_signed_documents"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(max_length=32)
    version: int
    kind: str = Field(max_length=20)       # "contract" | "amendment"
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: dt.datetime = instant_field()


class SignatureRow(Table, table=True):
    __tablename__ = "contract_signatures"
    __table_args__ = (UniqueConstraint("contract_id", "version", "party", name="uq_contract_signatures"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=32)
    version: int
    party: str = Field(max_length=20)      # client | vendor
    signatory: str = Field(max_length=300)
    method: str = Field(max_length=40)
    signed_by: str = Field(max_length=200)
    signed_at: dt.datetime = instant_field()


class ApprovalDecisionRow(Table, table=True):
    """Every decision of every review round, kept after the round closes (who, when, comment)."""
    __tablename__ = "approval_decisions"
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=32)
    round: int
    version: int
    step: str = Field(max_length=60)
    decision: str = Field(max_length=20)   # approved | rejected | override
    finding: str | None = Field(default=None, max_length=200)
    decided_by: str = Field(max_length=200)
    decided_at: dt.datetime = instant_field()
    comment: str | None = Field(default=None, max_length=4000)


class ApprovalPolicyRow(Table, table=True):
    __tablename__ = "approval_policies"
    org: str = Field(primary_key=True, max_length=100)
    policy: dict = json_field()
    updated_by: str = Field(max_length=200)
    updated_at: dt.datetime = instant_field()


class AuditEntryRow(Table, table=True):
    """One link of a stream's hash chain; (stream, seq) is unique, so two writers cannot fork it."""
    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("stream", "seq", name="uq_audit_entries"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    stream: str = Field(max_length=200)
    seq: int
    org: str = Field(index=True, max_length=100)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100)
    at: dt.datetime = instant_field()
    before_hash: str = Field(max_length=64)
    after_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)
    detail: dict = json_field()


class AuditHeadRow(Table, table=True):
    """The newest (seq, hash) of each stream, so removing entries from a stream's end shows."""
    __tablename__ = "audit_heads"
    stream: str = Field(primary_key=True, max_length=200)
    seq: int
    entry_hash: str = Field(max_length=64)


class ChangeRequestRow(Table, table=True):
    """A change request (变更申请) against a signed or active contract."""
    __tablename__ = "change_requests"
    __table_args__ = (Index("ix_change_requests_status_due", "status", "assessment_due_at"),)
    id: str = Field(primary_key=True, max_length=32)
    org: str = Field(max_length=100)
    contract_id: str = Field(index=True, max_length=32)
    number: int                              # CR-1, CR-2 ... per contract
    title: str = Field(max_length=500)
    reason: str = Field(max_length=4000)
    status: str = Field(max_length=20)
    base_version: int
    changes: dict = json_field()                  # {"kinds", "description", "proposed": ProposedChange}
    assessment: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    review: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    revision: int
    raised_by: str = Field(max_length=200)
    submitted_at: dt.datetime | None = instant_field(nullable=True)
    assessment_due_at: dt.datetime | None = instant_field(nullable=True)
    overdue_at: dt.datetime | None = instant_field(nullable=True)     # when change_request.overdue was announced
    implemented_version: int | None = None
    created_at: dt.datetime = instant_field()
    updated_at: dt.datetime = instant_field()


class ChangePolicyRow(Table, table=True):
    """An organisation's change policy (the approval chain of change requests); the default until set."""
    __tablename__ = "change_policies"
    org: str = Field(primary_key=True, max_length=100)
    policy: dict = json_field()
    updated_by: str = Field(max_length=200)
    updated_at: dt.datetime = instant_field()


class TrancheLockRow(Table, table=True):
    """A tranche payments has invoiced or paid (from its events): no change request may touch it."""
    __tablename__ = "tranche_locks"
    contract_id: str = Field(primary_key=True, max_length=32)
    tranche_key: str = Field(primary_key=True, max_length=100)
    org: str = Field(max_length=100)
    state: str = Field(max_length=20)        # invoiced | paid
    updated_at: dt.datetime = instant_field()
