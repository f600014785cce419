"""The use cases: what an operator, a designer or a script can do with a project.

Each function takes a :class:`Project`, does one whole step (all of it is saved,
or nothing), and returns flowrun dataclasses. The CLI only parses arguments,
calls these and renders the result; tests and scripts call them directly.

The modules, by what they hold:

- :mod:`~flowrun.app.project`: the project, its processes, ``init`` and ``db upgrade``;
- :mod:`~flowrun.app.steps`: starting instances and completing tasks;
- :mod:`~flowrun.app.claims`: claiming, giving back and assigning tasks
  (:mod:`~flowrun.app.ownership`: who may take a task, touch time from claims);
- :mod:`~flowrun.app.stepping`: how a step is run and saved (no lock while the engine runs);
- :mod:`~flowrun.app.worker`: timers, service jobs, incidents, messages
  (:mod:`~flowrun.app.correlation`: which waiting case a message is for);
- :mod:`~flowrun.app.admin`: cancelling cases; :mod:`~flowrun.app.migration`: moving them to a fixed diagram;
- :mod:`~flowrun.app.views`: the inbox, ``show``, ``history``, ``instances``;
- :mod:`~flowrun.app.checks`: ``validate``;
- :mod:`~flowrun.app.logs`: event log export and import;
- :mod:`~flowrun.app.pilots`: measures and comparisons.
"""

from flowrun.app.admin import cancel
from flowrun.app.checks import validate
from flowrun.app.claims import assign, claim, unclaim
from flowrun.app.logs import ExportResult, ImportResult, export_log, import_log
from flowrun.app.migration import migrate
from flowrun.app.pilots import compare, measure_cases
from flowrun.app.planning import plan
from flowrun.app.project import (
    Project,
    db_upgrade,
    example_dir,
    init_project,
    list_processes,
    resolve_process,
)
from flowrun.app.steps import complete, get_task, start, task_form
from flowrun.app.views import history, inbox, instances, preview_task, resolve_instance, show
from flowrun.app.worker import WorkerPass, incidents, next_due, retry, run_due, send
from flowrun.models import Incident, StepResult

__all__ = [
    "ExportResult",
    "ImportResult",
    "Incident",
    "Project",
    "StepResult",
    "WorkerPass",
    "assign",
    "cancel",
    "claim",
    "compare",
    "complete",
    "db_upgrade",
    "example_dir",
    "export_log",
    "get_task",
    "history",
    "import_log",
    "inbox",
    "incidents",
    "init_project",
    "instances",
    "list_processes",
    "measure_cases",
    "migrate",
    "next_due",
    "plan",
    "preview_task",
    "resolve_instance",
    "resolve_process",
    "retry",
    "run_due",
    "send",
    "show",
    "start",
    "task_form",
    "unclaim",
    "validate",
]
