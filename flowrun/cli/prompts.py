"""The interactive form of ``flowrun do``: each field asked, the answers reviewed, then submitted.

Nothing is sent anywhere until the operator confirms the review: the answers live in
this process only. Ctrl-C or end of input at any prompt (the review included) is an
interrupt for the root group: exit 130, nothing saved for the step.
"""

from __future__ import annotations

from typing import Any

import click

from flowrun.forms.answers import AnswerError, field_rule, read_answer, shown
from flowrun.models import Form, FormField

#: An optional field left empty: not part of the answers.
_SKIP = object()


def ask_form(form: Form | None, fields: list[FormField], given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask each of ``fields``, re-asking with the field's rule, then review the answers until confirmed.

    Args:
        given: values already given (``--data``), shown in the review but not asked.

    Returns:
        The answers to submit (fields left empty are left out).

    Raises:
        KeyboardInterrupt: the operator pressed Ctrl-C or input ended before confirming.
    """
    if form is None:
        return {}
    try:
        answers: dict[str, Any] = {}
        for f in fields:
            _store(answers, f, _ask_field(form, f))
        if fields:
            _review(form, fields, answers, given or {})
        return answers
    except click.Abort:
        # click.prompt turns Ctrl-C and end of input into Abort; both mean the operator left.
        raise KeyboardInterrupt from None


def _store(answers: dict[str, Any], f: FormField, value: Any) -> None:
    if value is _SKIP:
        answers.pop(f.name, None)
    else:
        answers[f.name] = value


def _ask_field(form: Form, f: FormField) -> Any:
    if f.description:
        click.echo(f"  {f.description}", err=True)
    if f.choices:
        click.echo("  " + "  ".join(f"{n}) {shown(c)}" for n, c in enumerate(f.choices, 1)), err=True)
    default = shown(f.default) if f.has_default and f.default is not None else None
    while True:
        # type=str: the answer is read by the field's type below, not by the type of its default.
        text = click.prompt(
            f"{f.label} {_hint(f)}", default=default or "", show_default=default is not None, type=str, err=True
        )
        if not text.strip():
            if not f.required:
                return _SKIP
            click.echo(f"  {field_rule(form, f)}, and an answer is needed; try again", err=True)
            continue
        try:
            return read_answer(form, f, text)
        except AnswerError as exc:
            click.echo(f"  {exc}; try again", err=True)


def _review(form: Form, fields: list[FormField], answers: dict[str, Any], given: dict[str, Any]) -> None:
    """Show every answer, numbered; change one (by number or name) until the operator confirms."""
    while True:
        click.echo("Your answers:", err=True)
        for n, f in enumerate(fields, 1):
            value = shown(answers[f.name]) if f.name in answers else "(left empty)"
            click.echo(f"  {n}) {f.label}: {value}", err=True)
        for name, value in given.items():
            click.echo(f"     {_label(form, name)}: {shown(value)} (given with --data)", err=True)
        choice = click.prompt(
            "Submit these answers? [Enter or y: submit; a number or field name: change it]",
            default="y",
            show_default=False,
            type=str,
            err=True,
        ).strip()
        if choice.casefold() in ("y", "yes"):
            return
        picked = _pick(fields, choice)
        if picked is None:
            names = ", ".join(f.name for f in fields)
            click.echo(f"  type y to submit, or a number from 1 to {len(fields)} or a field name ({names})", err=True)
            continue
        _store(answers, picked, _ask_field(form, picked))


def _pick(fields: list[FormField], choice: str) -> FormField | None:
    """The field the operator named: by its number, its name, or its label (case-blind)."""
    if choice.isascii() and choice.isdigit() and 1 <= int(choice) <= len(fields):
        return fields[int(choice) - 1]
    typed = choice.casefold()
    return next((f for f in fields if typed in (f.name.casefold(), f.label.casefold())), None)


def _label(form: Form, name: str) -> str:
    return next((f.label for f in form.fields if f.name == name), name)


def _hint(f: FormField) -> str:
    parts = [f.type if f.type != "string" else "text"]
    if f.choices:
        parts = ["/".join(shown(c) for c in f.choices)]
    elif f.type == "boolean":
        parts = ["yes/no"]
    if f.minimum is not None or f.maximum is not None:
        lo = "" if f.minimum is None else f"{f.minimum:g}"
        hi = "" if f.maximum is None else f"{f.maximum:g}"
        parts.append(f"{lo}..{hi}")
    if not f.required:
        parts.append("optional")
    return "(" + ", ".join(parts) + ")"
