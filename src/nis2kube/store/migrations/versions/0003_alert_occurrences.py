"""Alert occurrences: re-sends of one alert are recognised (indexed key) and linked to the first stored copy.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (no batch table copy on SQLite), so the append-only triggers on `alerts` stay in place;
    # rows stored before keep NULL here: they never had a key and no UPDATE may touch them.
    op.add_column("alerts", sa.Column("status", sa.String(16)))
    op.add_column("alerts", sa.Column("occurrence_key", sa.String(256)))
    op.add_column("alerts", sa.Column("repeat_of", _ID))
    op.create_index("ix_alerts_occurrence_key", "alerts", ["occurrence_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_occurrence_key", table_name="alerts")
    for column in ("repeat_of", "occurrence_key", "status"):
        op.drop_column("alerts", column)
