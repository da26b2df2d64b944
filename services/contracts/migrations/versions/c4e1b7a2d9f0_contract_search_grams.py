"""contract search bigrams

Revision ID: c4e1b7a2d9f0
Revises: 8fa8ac576fb3
Create Date: 2026-11-24 15:20:00

`contracts.search_grams`: the character bigrams of `search_text`, under a GIN index on PostgreSQL
(what finds a two- or three-character Chinese term without reading every contract). Existing
contracts get theirs here, in batches; the repository keeps them from then on.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision: str = 'c4e1b7a2d9f0'
down_revision: Union[str, None] = '8fa8ac576fb3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GRAMS = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")
BATCH = 1000


def _grams(searched: str) -> list[str]:
    """As the repository's `search_grams` was when this was written (a migration never changes)."""
    return sorted({line[i:i + 2] for line in searched.split("\n") for i in range(len(line) - 1)})


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column('contracts', sa.Column('search_grams', GRAMS, nullable=False,
                                         server_default=sa.text("'{}'") if postgres else sa.text("'[]'")))
    contracts = sa.table('contracts', sa.column('id', sa.String), sa.column('search_text', sa.String),
                         sa.column('search_grams', GRAMS))
    bind, last = op.get_bind(), ""
    while True:
        rows = bind.execute(sa.select(contracts.c.id, contracts.c.search_text).where(contracts.c.id > last)
                            .order_by(contracts.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(contracts.update().where(contracts.c.id == sa.bindparam('row_id'))
                     .values(search_grams=sa.bindparam('grams')),
                     [{'row_id': r.id, 'grams': _grams(r.search_text)} for r in rows])
        last = rows[-1].id
    # on SQLite, which scans, the index is empty (WHERE 0): the models declare it for both
    op.create_index('ix_contracts_search_grams', 'contracts', ['search_grams'], unique=False,
                    postgresql_using='gin', sqlite_where=sa.text('0'))


def downgrade() -> None:
    op.drop_index('ix_contracts_search_grams', table_name='contracts')
    op.drop_column('contracts', 'search_grams')
