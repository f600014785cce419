"""Interactive ``do``: each form field is asked, bad answers are asked again, defaults apply."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flowrun import app
from tests.helpers import ANALYSE_NO_SPECIALIST, RECORD, REPLY, T0, draft, flowrun_executable, ready_ref, work

OPEN = "2026-03-02T08:20:00+00:00"


def lines(*answers: str) -> str:
    return "".join(f"{a}\n" for a in answers)


CATEGORY_RULE = (
    "Complaint category must be one of 1 billing, 2 product_fault, 3 service_delay, 4 other "
    "(its number or the start of its name); try again"
)


def test_interactive_intake(cli, project, project_dir):
    """Every field is asked with its label and choices; invalid answers are asked again with the field's rule."""
    iid = app.start(project, "complaint:reengineered").instance
    ref = ready_ref(project, iid, "Record and assess complaint")
    answers = lines(
        "",  # customer name is required: asked again
        "Ann Smith",
        "w",  # web or walk-in: asked again
        "WE",  # web, by a case-blind prefix
        "food",  # not a category: asked again
        "1",  # billing, by its number
        "abc",  # shorter than 5 characters: asked again
        "Charged twice for March",
        "80.5x",  # not a number: asked again
        "80.5",  # a decimal answer to a number field whose default is 0
        "urgent",  # not a severity: asked again
        "LOW",
        "maybe",  # not yes/no: asked again
        "yes",
        "",  # the review: Enter submits
    )

    result = cli(project_dir, "do", ref, "--interactive", "--as", "carol", input=answers, now=OPEN)

    assert result.exit_code == 0, result.stderr
    prompts = result.stderr
    assert "Task " + ref + ": Record and assess complaint [Front Office]" in prompts
    assert "Customer name (text):" in prompts
    assert "Contact channel (phone/email/web/walk-in, optional) [phone]:" in prompts
    assert "1) billing  2) product_fault  3) service_delay  4) other" in prompts
    assert "Complaint category (billing/product_fault/service_delay/other):" in prompts
    assert "Severity (low/medium/high):" in prompts
    assert "Can you resolve this now, on this contact? (yes/no):" in prompts
    assert "Amount disputed (number, 0.., optional) [0]:" in prompts
    assert "Customer name must be text of at least 1 character, and an answer is needed; try again" in prompts
    assert "Contact channel must be one of 1 phone, 2 email, 3 web, 4 walk-in" in prompts
    assert CATEGORY_RULE in prompts
    assert "Description must be text of at least 5 characters; try again" in prompts
    assert "Amount disputed must be a number of at least 0; try again" in prompts
    assert "Severity must be one of 1 low, 2 medium, 3 high" in prompts
    assert "Can you resolve this now, on this contact? must be yes or no; try again" in prompts
    assert prompts.count("try again") == 7
    assert prompts.count("Complaint category (") == 2
    for leak in ("not a valid integer", "is not one of [", "Error", "'^"):
        assert leak not in prompts
    assert "  4) Description: Charged twice for March" in prompts
    assert "  5) Amount disputed: 80.5" in prompts
    assert f"task {ref} done" in result.stdout

    data = app.show(project, iid).data
    assert {
        k: data[k]
        for k in (
            "customer_name",
            "channel",
            "category",
            "description",
            "amount_disputed",
            "severity",
            "can_resolve_now",
        )
    } == {
        "customer_name": "Ann Smith",
        "channel": "web",
        "category": "billing",
        "description": "Charged twice for March",
        "amount_disputed": 80.5,
        "severity": "low",
        "can_resolve_now": True,
    }
    _, tasks = app.history(project, iid)
    done = next(t for t in tasks if t.name == "Record and assess complaint")
    assert done.actor == "carol"
    assert done.started_at is not None
    assert done.started_at.isoformat() == OPEN
    assert done.waiting_s == 20 * 60


def test_review_changes_an_answer_before_submitting(cli, project, project_dir):
    """At the review an answer can be changed by number or by name; only the confirmed answers are saved."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")
    answers = lines(
        "Ann Smith",
        "",
        "billing",
        "Charged twice",
        "",
        "3",  # the review: change the category, by number
        "other",
        "amount_disputed",  # and the amount, by field name
        "12.25",
        "7",  # no such field: the review says what to type
        "y",
    )

    result = cli(project_dir, "do", ref, "-i", "--as", "carol", input=answers, now=OPEN)

    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("Your answers:") == 4
    assert "  3) Complaint category: billing" in result.stderr
    assert "  3) Complaint category: other" in result.stderr
    assert "type y to submit, or a number from 1 to 5 or a field name" in result.stderr
    data = app.show(project, iid).data
    assert (data["category"], data["amount_disputed"], data["channel"]) == ("other", 12.25, "phone")


def test_end_of_input_at_the_review_saves_nothing(cli, project, project_dir):
    """Input ending at the review is an interrupt: exit 130, the task still open, no answer saved."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")

    result = cli(
        project_dir, "do", ref, "-i", "--as", "carol", input=lines("Ann Smith", "", "billing", "Charged twice", "")
    )

    assert result.exit_code == 130
    assert "Your answers:" in result.stderr
    assert "nothing was saved" in result.stderr
    assert [str(i.ref) for i in app.inbox(project, iid)] == [ref]
    assert "customer_name" not in app.show(project, iid).data


def test_interactive_survey_ranges_and_optional_field(cli, project, project_dir):
    """Numbers outside the form's range are asked again; an optional field can be skipped."""
    iid = app.start(project, "complaint:baseline").instance
    for name, data in (
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_NO_SPECIALIST),
        ("Draft resolution", draft(20)),
        ("Reply to customer", REPLY),
    ):
        work(project, iid, name, data)
    ref = ready_ref(project, iid, "Satisfaction survey")

    result = cli(
        project_dir,
        "do",
        ref,
        "-i",
        "--as",
        "customer",
        input=lines("7", "4", "11", "ten", "10", "maybe", "no", "", ""),
        now=OPEN,
    )

    assert result.exit_code == 0, result.stderr
    assert "How satisfied are you with how we handled your complaint? (integer, 1..5):" in result.stderr
    assert "(integer, 0..10):" in result.stderr
    assert "complaint? must be a whole number between 1 and 5; try again" in result.stderr
    assert "colleague? must be a whole number between 0 and 10; try again" in result.stderr
    assert result.stderr.count("must be a whole number between 0 and 10; try again") == 2
    assert "Anything else you would like to tell us? (text, optional):" in result.stderr
    view = app.show(project, iid)
    assert view.status == "completed"
    assert (view.data["satisfaction"], view.data["nps"], view.data["resolved_first_contact"]) == (4, 10, False)
    assert "comment" not in view.data


def test_interactive_open_claims_the_task(cli, project, project_dir):
    """Opening a task at the prompt starts its touch time, even if the operator gives up."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")

    gave_up = cli(project_dir, "do", ref, "-i", "--as", "carol", input=lines("Ann Smith"), now=OPEN)

    assert gave_up.exit_code == 130
    assert "nothing was saved" in gave_up.stderr
    claimed = app.get_task(project, ref)
    assert claimed.started_at is not None
    assert (claimed.status, claimed.actor, claimed.started_at.isoformat()) == ("started", "carol", OPEN)
    assert [i.actor for i in app.inbox(project, iid)] == ["carol"]

    later = cli(
        project_dir,
        "do",
        ref,
        "--data",
        "customer_name=Ann Smith",
        "--data",
        "category=billing",
        "--data",
        "description=Charged twice",
        "--as",
        "carol",
        now="2026-03-02T08:45:00Z",
    )
    assert later.exit_code == 0, later.stderr
    _, tasks = app.history(project, iid)
    done = next(t for t in tasks if t.name == "Record complaint")
    assert (done.waiting_s, done.touch_s, done.actor) == (20 * 60, 25 * 60, "carol")


def test_interactive_skips_fields_given_with_data(cli, project, project_dir):
    """Fields given with --data are not asked again at the prompt."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")

    result = cli(
        project_dir,
        "do",
        ref,
        "-i",
        "--data",
        "customer_name=Zed Zed",
        "--as",
        "carol",
        input=lines("", "billing", "Charged twice", "", "y"),
        now=OPEN,
    )

    assert result.exit_code == 0, result.stderr
    assert "Customer name (text):" not in result.stderr
    assert "Customer name: Zed Zed (given with --data)" in result.stderr
    assert app.show(project, iid).data["customer_name"] == "Zed Zed"


def test_interactive_on_a_task_claimed_by_someone_else(cli, project, project_dir):
    """Opening a task another operator has claimed is a conflict (exit 3)."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")
    app.claim(project, ref, "alice")
    result = cli(project_dir, "do", ref, "-i", "--as", "carol", input=lines("x"))
    assert result.exit_code == 3
    assert "is claimed by alice since" in result.stderr
    assert "Full name" not in result.stderr  # refused before any question is asked


# -- a real terminal ---------------------------------------------------------------


class Terminal:
    """The master side of a pseudo-terminal a child process runs in."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.transcript = b""
        self._seen = 0

    def expect(self, text: str, timeout: float = 20.0) -> str:
        """Wait until ``text`` appears after what was already matched; returns the new output."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while needle not in self.transcript[self._seen :]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {text!r} on the terminal; it shows:\n{self.transcript.decode(errors='replace')}"
                )
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready and not self._read():
                raise AssertionError(f"terminal closed before {text!r}:\n{self.transcript.decode(errors='replace')}")
        end = self.transcript.index(needle, self._seen) + len(needle)
        new = self.transcript[self._seen : end]
        self._seen = end
        return new.decode(errors="replace")

    def answer(self, prompt: str, text: str) -> None:
        self.expect(prompt)
        os.write(self.fd, text.encode() + b"\n")

    def rest(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready and not self._read():
                break
        return self.transcript[self._seen :].decode(errors="replace")

    def _read(self) -> bool:
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.transcript += chunk
        return bool(chunk)


def _controlling_terminal() -> None:
    """In the child: the pseudo-terminal on stdin becomes its controlling terminal, so Ctrl-C there is SIGINT."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def at_a_terminal(project_dir: Path, *args: str) -> tuple[subprocess.Popen[bytes], Terminal]:
    """``flowrun ARGS`` in a new session whose controlling terminal is a fresh pseudo-terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env.update(FLOWRUN_NOW=OPEN, TERM="dumb", COLUMNS="120")
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [str(flowrun_executable()), *args],
            cwd=project_dir,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
            start_new_session=True,
            preexec_fn=_controlling_terminal,  # the child has no threads between fork and exec
        )
    finally:
        os.close(slave)
    return proc, Terminal(master)


def run_at_a_terminal(project_dir: Path, dialogue: Callable[[Terminal], None], *args: str) -> tuple[int, Terminal, str]:
    """Run ``flowrun ARGS`` at a terminal through ``dialogue``; its exit code, the terminal, the output after."""
    proc, term = at_a_terminal(project_dir, *args)
    try:
        dialogue(term)
        tail = term.rest()
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(term.fd)
    return code, term, tail


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_do_on_a_real_terminal_prompts(project, project_dir):
    """``flowrun do REF`` with no data on a terminal asks the form at the prompt."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")

    def fill_in(term: Terminal) -> None:
        term.expect("Task " + ref + ": Record complaint [Call Centre]")
        term.answer("Customer name (text):", "Dana Lee")
        term.answer("[phone]:", "")
        term.answer("Complaint category (billing/product_fault/service_delay/other):", "fridge")
        term.answer("try again", "product_fault")
        term.answer("Description (text):", "Kettle broke after a week")
        term.answer("Amount disputed (number, 0.., optional) [0]:", "35.5")
        term.expect("5) Amount disputed: 35.5")
        term.answer("Submit these answers?", "y")

    code, term, tail = run_at_a_terminal(project_dir, fill_in, "do", ref, "--as", "dave")

    assert code == 0, term.transcript.decode(errors="replace")
    assert f"task {ref} done" in tail
    assert "Analyse needs" in tail
    data = app.show(project, iid).data
    assert (data["customer_name"], data["channel"], data["category"], data["amount_disputed"]) == (
        "Dana Lee",
        "phone",
        "product_fault",
        35.5,
    )
    _, tasks = app.history(project, iid)
    done = next(t for t in tasks if t.name == "Record complaint")
    assert done.started_at is not None
    assert (done.actor, done.started_at.isoformat(), done.ready_at) == ("dave", OPEN, T0)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_ctrl_c_at_the_review_saves_nothing(project, project_dir):
    """Ctrl-C at the review of a real terminal: exit 130, the answers are not saved, the task stays open."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")

    def leave_at_the_review(term: Terminal) -> None:
        term.answer("Customer name (text):", "Dana Lee")
        term.answer("[phone]:", "")
        term.answer("Complaint category (billing/product_fault/service_delay/other):", "2")
        term.answer("Description (text):", "Kettle broke after a week")
        term.answer("Amount disputed (number, 0.., optional) [0]:", "35.5")
        term.expect("Submit these answers?")
        os.write(term.fd, b"\x03")

    code, term, tail = run_at_a_terminal(project_dir, leave_at_the_review, "do", ref, "--as", "dave")

    assert code == 130, term.transcript.decode(errors="replace")
    assert "nothing was saved" in tail
    assert "Traceback" not in tail
    assert [str(i.ref) for i in app.inbox(project, iid)] == [ref]
    assert "customer_name" not in app.show(project, iid).data
