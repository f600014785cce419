"""Tasks remember what they wait for (timer, message, signal) and when a timer is due.

Revision ID: 0002_waits
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from flowrun.store.schema import UTCDateTime

revision = "0002_waits"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("waits_for", sa.String(255)))
        batch.add_column(sa.Column("due_at", UTCDateTime))
        batch.create_index("ix_tasks_waiting", ["status", "waits_for", "due_at"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_waiting")
        batch.drop_column("due_at")
        batch.drop_column("waits_for")
