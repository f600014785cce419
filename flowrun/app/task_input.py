"""What a user task is completed with: data given on the command line, or asked at a prompt.

The rules of ``flowrun do``, apart from the terminal: when to ask, which fields to ask, that a
task filled in at a prompt is claimed first (so its touch time covers the filling in), and that
a task needing data it was not given, with nobody to ask, is refused before anything changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowrun import forms
from flowrun.app.claims import claim, unclaim
from flowrun.app.ownership import check_may_work
from flowrun.app.project import Project
from flowrun.app.steps import complete, get_task, task_form
from flowrun.errors import DataError
from flowrun.models import STARTED, Form, FormField, StepResult, TaskRecord


def wants_prompt(interactive: bool | None, data: Mapping[str, Any], text: Mapping[str, str], terminal: bool) -> bool:
    """Whether to ask the form at a prompt: as told, else when no data was given and there is a terminal."""
    if interactive is not None:
        return interactive
    return not data and not text and terminal


@dataclass(frozen=True)
class FormInput:
    """A task claimed to be filled in by hand: its form, the values given, and the fields left to ask.

    ``claimed_here`` is True when :func:`begin_input` took the claim (the task was not yet held
    by this operator): a prompt given up gives it back with :func:`give_back`.
    """

    task: TaskRecord
    form: Form | None
    given: dict[str, Any]
    to_ask: list[FormField]
    claimed_here: bool = False


def begin_input(project: Project, ref: str, data: Mapping[str, Any], text: Mapping[str, str], actor: str) -> FormInput:
    """Claim task ``ref`` for ``actor`` to fill in its form at a prompt.

    The form is read, and ``text`` (``--data k=v``) converted to its types, before the task is
    claimed, so a missing form or a bad value changes nothing. Complete the task afterwards with
    :func:`~flowrun.app.complete`, ``given`` merged with the answers to ``to_ask``.

    Args:
        data: typed field values (from a file); ``text`` values are merged over them.
        actor: who fills it in (resolved already: see :func:`flowrun.app.ownership.operator_name`).

    Raises:
        FormError: the task's form is missing or broken.
        ConflictError: someone else holds or completed the task, or it is not for ``actor``;
            this is checked before any question is asked.
    """
    task = get_task(project, ref)
    check_may_work(project, task, actor, project.clock.now())
    form = task_form(project, task)
    given = dict(data)
    if text:
        given.update(forms.coerce(form, text))
    held = task.status == STARTED and task.actor == actor
    task = claim(project, ref, actor)
    fields = [] if form is None else [f for f in form.fields if f.name not in given and not f.readonly]
    return FormInput(task, form, given, fields, claimed_here=not held)


def give_back(project: Project, pending: FormInput) -> bool:
    """Give back the claim :func:`begin_input` took, as ``interrupted``; False when it took none.

    Called when the operator gives up at the prompt (Ctrl-C): nothing they typed is kept,
    and the task is ready for others again, as it was before ``do``.
    """
    if not pending.claimed_here:
        return False
    unclaim(project, str(pending.task.ref), pending.task.actor, outcome="interrupted")
    return True


def complete_given(
    project: Project, ref: str, data: Mapping[str, Any], text: Mapping[str, str], actor: str | None
) -> StepResult:
    """Complete task ``ref`` with the data given, there being no prompt to ask for more.

    Raises:
        DataError: no data at all was given for a form with required fields that have no
            default; the message names the ``--data`` options to give. Other missing or
            wrong values are reported by :func:`~flowrun.app.complete`.
    """
    if not data and not text:
        task = get_task(project, ref)
        if actor is not None:
            check_may_work(project, task, actor, project.clock.now())
        form = task_form(project, task)
        if form is not None and any(f.required and not f.has_default for f in form.fields):
            fields = " ".join(f"--data {f.name}=..." for f in form.fields if f.required)
            raise DataError(
                f"task {task.ref} ({task.name}) needs form data and there is no terminal to ask; "
                f"give it as {fields}, or --data-file FILE"
            )
    return complete(project, ref, data, actor, text=text)
