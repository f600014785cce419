"""The rules of ``flowrun do`` without a terminal: flowrun.app.task_input, called as a script would."""

from __future__ import annotations

import pytest

from flowrun import app
from flowrun.app.task_input import begin_input, complete_given, wants_prompt
from flowrun.errors import DataError
from flowrun.models import READY, STARTED
from tests.helpers import ready_ref


def _record_ref(project: app.Project) -> tuple[str, str]:
    iid = app.start(project, "complaint:baseline").instance
    return iid, ready_ref(project, iid, "Record complaint")


@pytest.mark.parametrize(
    ("interactive", "data", "text", "terminal", "expected"),
    [
        (None, {}, {}, True, True),  # nothing given, someone to ask
        (None, {}, {}, False, False),  # nobody to ask
        (None, {"a": 1}, {}, True, False),  # data from a file
        (None, {}, {"a": "1"}, True, False),  # --data
        (True, {"a": 1}, {"a": "1"}, False, True),  # -i: always
        (False, {}, {}, True, False),  # --no-interactive: never
    ],
)
def test_a_prompt_when_told_or_when_nothing_is_given_at_a_terminal(interactive, data, text, terminal, expected):
    """-i and --no-interactive decide; otherwise only an empty command at a terminal asks."""
    assert wants_prompt(interactive, data, text, terminal) is expected


def test_begin_input_claims_the_task_and_asks_only_what_was_not_given(project):
    """The task is claimed by the actor; typed and text values are kept and not asked again."""
    iid, ref = _record_ref(project)

    pending = begin_input(project, ref, {"amount_disputed": 40}, {"customer_name": "Zed Zed"}, "carol")

    assert (pending.task.status, pending.task.actor) == (STARTED, "carol")
    assert pending.given == {"amount_disputed": 40, "customer_name": "Zed Zed"}
    assert [f.name for f in pending.to_ask] == ["channel", "category", "description"]
    assert app.get_task(project, ref).status == STARTED
    answers = {"channel": "email", "category": "billing", "description": "Charged twice"}
    app.complete(project, ref, {**pending.given, **answers}, "carol")
    assert app.show(project, iid).data["customer_name"] == "Zed Zed"


def test_begin_input_checks_the_text_before_claiming(project):
    """A --data value that does not fit its field is refused and the task stays unclaimed."""
    _, ref = _record_ref(project)

    with pytest.raises(DataError, match="amount_disputed"):
        begin_input(project, ref, {}, {"amount_disputed": "lots"}, "carol")

    assert app.get_task(project, ref).status == READY


def test_no_data_and_nobody_to_ask_is_refused_naming_the_options(project):
    """A form with required fields and no data at all: DataError naming each --data option; nothing claimed."""
    _, ref = _record_ref(project)

    with pytest.raises(DataError) as caught:
        complete_given(project, ref, {}, {}, "carol")

    assert str(caught.value) == (
        f"task {ref} (Record complaint) needs form data and there is no terminal to ask; give it as "
        "--data customer_name=... --data category=... --data description=..., or --data-file FILE"
    )
    assert app.get_task(project, ref).status == READY


def test_complete_given_merges_text_over_data(project):
    """Typed data and --data text are completed together, the text converted to the form's types."""
    iid, ref = _record_ref(project)

    data = {"customer_name": "Ann Smith", "category": "billing", "amount_disputed": 1}
    result = complete_given(project, ref, data, {"description": "Charged twice", "amount_disputed": "40"}, "carol")

    assert result.instance == iid
    assert [t.name for t in result.ready] == ["Analyse needs"]
    assert app.show(project, iid).data["amount_disputed"] == 40
