"""The initial flowrun schema: models, instances, tasks, events.

Revision ID: 0001_initial
Revises:
"""

from alembic import op
import sqlalchemy as sa

from flowrun.store.schema import UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("file", sa.String(1024), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("family", sa.String(255), nullable=False),
        sa.Column("variant", sa.String(255), nullable=False),
        sa.Column("file", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("models.sha256"), nullable=False),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("pilot", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_instances_family_variant", "instances", ["family", "variant"])
    op.create_index("ix_instances_status", "instances", ["status"])
    op.create_table(
        "tasks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(32), sa.ForeignKey("instances.id"), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("bpmn_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("lane", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ready_at", UTCDateTime),
        sa.Column("started_at", UTCDateTime),
        sa.Column("completed_at", UTCDateTime),
        sa.Column("actor", sa.String(255)),
        sa.Column("form", sa.Text),
        sa.UniqueConstraint("instance_id", "task_id", name="uq_tasks_instance_task"),
    )
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_table(
        "events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(32), sa.ForeignKey("instances.id"), nullable=False),
        sa.Column("task_ref", sa.BigInteger),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_events_instance", "events", ["instance_id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("tasks")
    op.drop_table("instances")
    op.drop_table("models")
