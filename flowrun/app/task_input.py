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
from flowrun.app.project import Project
from flowrun.app.steps import claim, complete, get_task, task_form
from flowrun.errors import DataError
from flowrun.models import Form, FormField, StepResult, TaskRecord


def wants_prompt(interactive: bool | None, data: Mapping[str, Any], text: Mapping[str, str], terminal: bool) -> bool:
    """Whether to ask the form at a prompt: as told, else when no data was given and there is a terminal."""
    if interactive is not None:
        return interactive
    return not data and not text and terminal


@dataclass(frozen=True)
class FormInput:
    """A task claimed to be filled in by hand: its form, the values given, and the fields left to ask."""

    task: TaskRecord
    form: Form | None
    given: dict[str, Any]
    to_ask: list[FormField]


def begin_input(
    project: Project, ref: str, data: Mapping[str, Any], text: Mapping[str, str], actor: str | None
) -> FormInput:
    """Claim task ``ref`` for ``actor`` to fill in its form at a prompt.

    The form is read, and ``text`` (``--data k=v``) converted to its types, before the task is
    claimed, so a missing form or a bad value changes nothing. Complete the task afterwards with
    :func:`~flowrun.app.complete`, ``given`` merged with the answers to ``to_ask``.

    Args:
        data: typed field values (from a file); ``text`` values are merged over them.

    Raises:
        FormError: the task's form is missing or broken.
        ConflictError: someone else claimed or completed the task first.
    """
    task = get_task(project, ref)
    form = task_form(project, task)
    given = dict(data)
    if text:
        given.update(forms.coerce(form, text))
    task = claim(project, ref, actor)
    fields = [] if form is None else [f for f in form.fields if f.name not in given and not f.readonly]
    return FormInput(task, form, given, fields)


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
        form = task_form(project, task)
        if form is not None and any(f.required and not f.has_default for f in form.fields):
            fields = " ".join(f"--data {f.name}=..." for f in form.fields if f.required)
            raise DataError(
                f"task {task.ref} ({task.name}) needs form data and there is no terminal to ask; "
                f"give it as {fields}, or --data-file FILE"
            )
    return complete(project, ref, data, actor, text=text)
