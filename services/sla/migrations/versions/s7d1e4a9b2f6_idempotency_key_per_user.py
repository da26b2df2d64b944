"""idempotency keys per user: another user re-using a key gets its own effect, not the first user's answer

Revision ID: s7d1e4a9b2f6
Revises: f16eedc0de01
Create Date: 2026-12-02 17:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 's7d1e4a9b2f6'
down_revision: Union[str, None] = 'f16eedc0de01'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Keys stored before belong to no user (''): a retry of one of those is answered afresh, once.
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sub', sa.String(length=200), nullable=False, server_default=''))
        batch_op.drop_constraint('uq_idempotency_key', type_='unique')
        batch_op.create_unique_constraint('uq_idempotency_key_per_user', ['org', 'sub', 'scope', 'key'])


def downgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_constraint('uq_idempotency_key_per_user', type_='unique')
        batch_op.create_unique_constraint('uq_idempotency_key', ['org', 'scope', 'key'])
        batch_op.drop_column('sub')
