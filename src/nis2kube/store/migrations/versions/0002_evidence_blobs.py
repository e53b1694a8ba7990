"""Evidence content: the bytes of evidence files, content-addressed by SHA-256 and append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from nis2kube.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", UTCDateTime, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER evidence_blobs_no_{action.lower()} BEFORE {action} ON evidence_blobs "
                       "BEGIN SELECT RAISE(ABORT, 'evidence_blobs is append-only'); END")
    elif dialect == "postgresql":  # nis2kube_append_only() comes with revision 0001
        op.execute("CREATE TRIGGER evidence_blobs_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON evidence_blobs "
                   "FOR EACH STATEMENT EXECUTE FUNCTION nis2kube_append_only()")


def downgrade() -> None:
    op.drop_table("evidence_blobs")
