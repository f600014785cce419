"""The database remembers which flowrun version last migrated it (so an older flowrun can say what it needs).

Revision ID: 0004_meta
Revises: 0003_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_meta"
down_revision = "0003_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flowrun_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("flowrun_meta")
