"""Service jobs and incidents: leases on waiting tasks, and the incidents table.

Revision ID: 0003_jobs
Revises: 0002_waits
"""

import sqlalchemy as sa
from alembic import op

from flowrun.store.schema import UTCDateTime

revision = "0003_jobs"
down_revision = "0002_waits"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(255)))
        batch.add_column(sa.Column("lease_until", UTCDateTime))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "incidents",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(32), sa.ForeignKey("instances.id"), nullable=False),
        sa.Column("task_ref", sa.BigInteger),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(255)),
        sa.Column("error_type", sa.String(255), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
    )
    op.create_index("ix_incidents_open", "incidents", ["resolved_at", "instance_id"])


def downgrade() -> None:
    op.drop_table("incidents")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("attempts")
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
