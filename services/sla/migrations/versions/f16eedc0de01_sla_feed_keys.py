"""sla feed keys: each organisation's feed signs its sla.ingest records with a key of its own (issue 16)

Revision ID: f16eedc0de01
Revises: s0a1b2c3d4e5
Create Date: 2026-12-02 17:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'f16eedc0de01'
down_revision: Union[str, None] = 's0a1b2c3d4e5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('sla_feed_keys',
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id')
    )
    with op.batch_alter_table('sla_feed_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sla_feed_keys_org'), ['org'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sla_feed_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sla_feed_keys_org'))
    op.drop_table('sla_feed_keys')
