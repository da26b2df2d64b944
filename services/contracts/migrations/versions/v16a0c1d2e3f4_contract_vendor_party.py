"""contract vendor party (counterparty scoping, issue 16)

Revision ID: v16a0c1d2e3f4
Revises: c7d1e4a9b2f6
Create Date: 2026-12-02 17:40:00

`contracts.vendor_party`: the vendor party's 统一社会信用代码, copied from the current version's terms,
so a vendor's token (its `party` claim) lists and reads only its company's contracts through an
index. Existing contracts get theirs here, in batches; drafting keeps it from then on.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'v16a0c1d2e3f4'
down_revision: Union[str, None] = 'c7d1e4a9b2f6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BATCH = 1000


def _vendor_party(terms: dict | None) -> str | None:
    return next((p.get('credit_code') for p in (terms or {}).get('parties', []) if p.get('role') == 'vendor'), None)


def upgrade() -> None:
    op.add_column('contracts', sa.Column('vendor_party', sa.String(length=64), nullable=True))
    contracts = sa.table('contracts', sa.column('id', sa.String), sa.column('version', sa.Integer),
                         sa.column('vendor_party', sa.String))
    versions = sa.table('contract_versions', sa.column('contract_id', sa.String), sa.column('version', sa.Integer),
                        sa.column('terms', sa.JSON))
    bind, last = op.get_bind(), ""
    while True:
        rows = bind.execute(sa.select(contracts.c.id, versions.c.terms).join(versions, sa.and_(
            versions.c.contract_id == contracts.c.id, versions.c.version == contracts.c.version))
            .where(contracts.c.id > last).order_by(contracts.c.id).limit(BATCH)).all()
        if not rows:
            break
        found = [{'row_id': r.id, 'party': _vendor_party(r.terms)} for r in rows]
        found = [f for f in found if f['party']]
        if found:
            bind.execute(contracts.update().where(contracts.c.id == sa.bindparam('row_id'))
                         .values(vendor_party=sa.bindparam('party')), found)
        last = rows[-1].id
    op.create_index('ix_contracts_org_vendor_party', 'contracts', ['org', 'vendor_party', 'created_at', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_contracts_org_vendor_party', table_name='contracts')
    op.drop_column('contracts', 'vendor_party')
