"""SLA definition vendor party (counterparty scoping, issue 16)

Revision ID: v16c0c1d2e3f4
Revises: s7d1e4a9b2f6
Create Date: 2026-12-02 17:55:00

`sla_definitions.vendor_party`: the vendor party's 统一社会信用代码 from the ContractTerms of
`contract.activated` / `contract.amended`, so a vendor's token reads only its company's SLAs. The
service kept no terms before, so existing definitions have none until their contract's next
amendment (or a re-posted definition): until then no vendor sees them, the safe side.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'v16c0c1d2e3f4'
down_revision: Union[str, None] = 's7d1e4a9b2f6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('sla_definitions', sa.Column('vendor_party', sa.String(length=64), nullable=True))
    op.create_index('ix_sla_definitions_org_vendor_party', 'sla_definitions', ['org', 'vendor_party', 'contract_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_sla_definitions_org_vendor_party', table_name='sla_definitions')
    op.drop_column('sla_definitions', 'vendor_party')
