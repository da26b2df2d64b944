"""payment schedule vendor party (counterparty scoping, issue 16)

Revision ID: v16b0c1d2e3f4
Revises: p7d1e4a9b2f6
Create Date: 2026-12-02 17:50:00

`payment_schedules.vendor_party`: the vendor party's 统一社会信用代码 from the ContractTerms the
schedule was built from (`contract.signed` carries them whole), so a vendor's token lists and reads
only its company's schedules and invoices. Existing schedules get theirs from their stored terms.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'v16b0c1d2e3f4'
down_revision: Union[str, None] = 'p7d1e4a9b2f6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BATCH = 1000


def _vendor_party(terms: dict | None) -> str | None:
    return next((p.get('credit_code') for p in (terms or {}).get('parties', []) if p.get('role') == 'vendor'), None)


def upgrade() -> None:
    op.add_column('payment_schedules', sa.Column('vendor_party', sa.String(length=64), nullable=True))
    schedules = sa.table('payment_schedules', sa.column('contract_id', sa.String), sa.column('terms', sa.JSON),
                         sa.column('vendor_party', sa.String))
    bind, last = op.get_bind(), ""
    while True:
        rows = bind.execute(sa.select(schedules.c.contract_id, schedules.c.terms)
                            .where(schedules.c.contract_id > last).order_by(schedules.c.contract_id)
                            .limit(BATCH)).all()
        if not rows:
            break
        found = [{'row_id': r.contract_id, 'party': _vendor_party(r.terms)} for r in rows]
        found = [f for f in found if f['party']]
        if found:
            bind.execute(schedules.update().where(schedules.c.contract_id == sa.bindparam('row_id'))
                         .values(vendor_party=sa.bindparam('party')), found)
        last = rows[-1].contract_id
    op.create_index('ix_payment_schedules_org_vendor_party', 'payment_schedules',
                    ['org', 'vendor_party', 'contract_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payment_schedules_org_vendor_party', table_name='payment_schedules')
    op.drop_column('payment_schedules', 'vendor_party')
