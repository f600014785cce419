"""An operator's day: business keys, who may take a task, due dates and priorities, claim intervals.

* ``instances.business_key``: the case's key (``flowrun start --key C-1042``), unique per family.
* ``tasks.assignee``, ``tasks.candidates``: who the diagram gives a user task to
  (``camunda:assignee``; ``camunda:candidateUsers``/``candidateGroups`` as JSON
  ``{"users": [...], "groups": [...]}``), evaluated when the task became ready.
* ``tasks.deadline_at``, ``tasks.priority``: a user task's due date (``camunda:dueDate``, a
  boundary timer, or the family's service level) and ``camunda:priority``. (``due_at`` stays the
  time a *wait* is due: timers and service retries.)
* ``claims``: every interval a person held a task, so touch time counts only while the person who
  completed it held it; ``released_at`` is None while held, ``outcome`` says how it ended
  (``completed``, ``unclaimed``, ``assigned``, ``interrupted``, ``cancelled``).

Revision ID: 0006_operators
Revises: 0005_epoch_times
"""

import sqlalchemy as sa
from alembic import op

from flowrun.store.schema import UTCDateTime

revision = "0006_operators"
down_revision = "0005_epoch_times"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("business_key", sa.String(255)))
        batch.create_index("ux_instances_family_key", ["family", "business_key"], unique=True)
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("assignee", sa.String(255)))
        batch.add_column(sa.Column("candidates", sa.Text))
        batch.add_column(sa.Column("deadline_at", UTCDateTime))
        batch.add_column(sa.Column("priority", sa.Integer))
    op.create_table(
        "claims",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("task_ref", sa.BigInteger, nullable=False),
        sa.Column("instance_id", sa.String(32), sa.ForeignKey("instances.id"), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("claimed_at", UTCDateTime, nullable=False),
        sa.Column("released_at", UTCDateTime),
        sa.Column("outcome", sa.String(32)),
    )
    op.create_index("ix_claims_task", "claims", ["task_ref"])


def downgrade() -> None:
    op.drop_index("ix_claims_task", "claims")
    op.drop_table("claims")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("priority")
        batch.drop_column("deadline_at")
        batch.drop_column("candidates")
        batch.drop_column("assignee")
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ux_instances_family_key")
        batch.drop_column("business_key")
