"""A user task's due date when its diagram gives none: the family's service level.

The engine sets a task's due date (``TaskRecord.deadline_at``) when it becomes ready,
from ``camunda:dueDate`` or else from a timer on the task's boundary (see
:mod:`flowrun.engine.lives`). A task with neither is due when its case's service
level runs out: the case's start plus ``sla:`` under ``families:`` in flowrun.yaml,
the same setting ``flowrun compare`` judges resolution times by.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from flowrun.models import READY, InstanceRecord, TaskRecord

if TYPE_CHECKING:
    from flowrun.app.project import Project


def apply_service_level(project: Project, inst: InstanceRecord, records: Iterable[TaskRecord]) -> None:
    """Give each newly ready user task of ``inst`` without a due date the one its family's ``sla:`` sets."""
    pilot = project.settings.pilots.get(inst.family)
    if pilot is None or pilot.sla_seconds is None:
        return
    due = inst.created_at + timedelta(seconds=pilot.sla_seconds)
    for rec in records:
        if rec.status == READY and rec.deadline_at is None and rec.type in ("userTask", "manualTask"):
            rec.deadline_at = due
