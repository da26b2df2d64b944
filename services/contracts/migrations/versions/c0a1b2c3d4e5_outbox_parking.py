"""outbox parking: a row the broker refuses for good is set aside, not retried forever

Revision ID: c0a1b2c3d4e5
Revises: c4e1b7a2d9f0
Create Date: 2026-12-02 15:30:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c0a1b2c3d4e5'
down_revision: Union[str, None] = 'c4e1b7a2d9f0'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('park_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('park_reason')
        batch_op.drop_column('parked_at')
