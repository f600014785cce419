"""Interactive ``do``: each form field is asked, bad answers are asked again, defaults apply."""

from __future__ import annotations

import os
import select
import subprocess
import time

import pytest

from flowrun import app
from tests.helpers import ANALYSE_NO_SPECIALIST, RECORD, REPLY, T0, draft, flowrun_executable, ready_ref, work

OPEN = "2026-03-02T08:20:00+00:00"


def lines(*answers: str) -> str:
    return "".join(f"{a}\n" for a in answers)


def test_interactive_intake(cli, project, project_dir):
    """Every field is asked with its label and choices; invalid answers are asked again."""
    iid = app.start(project, "complaint:reengineered").instance
    ref = ready_ref(project, iid, "Record and assess complaint")
    answers = lines(
        "Ann Smith",  # customer name
        "",  # channel: take the default
        "food",  # not a category: asked again
        "billing",
        "abc",  # shorter than 5 characters: asked again
        "Charged twice for March",
        "",  # amount: take the default 0
        "urgent",  # not a severity: asked again
        "low",
        "maybe",  # not yes/no: asked again
        "yes",
    )

    result = cli(project_dir, "do", ref, "--interactive", "--as", "carol", input=answers, now=OPEN)

    assert result.exit_code == 0, result.stderr
    prompts = result.stderr
    assert "Task " + ref + ": Record and assess complaint [Front Office]" in prompts
    assert "Customer name (text):" in prompts
    assert "Contact channel (phone/email/web/walk-in, optional) [phone]:" in prompts
    assert "Complaint category (billing/product_fault/service_delay/other):" in prompts
    assert "Severity (low/medium/high):" in prompts
    assert "Can you resolve this now, on this contact? (yes/no):" in prompts
    assert "Amount disputed (number, 0.., optional) [0]:" in prompts
    assert "'food' is not one of" in prompts
    assert "'abc' is too short" in prompts
    assert "'urgent' is not one of" in prompts
    assert "'maybe' is not yes or no" in prompts
    assert prompts.count("try again") == 4
    assert prompts.count("Complaint category (") == 2
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
        "channel": "phone",
        "category": "billing",
        "description": "Charged twice for March",
        "amount_disputed": 0,
        "severity": "low",
        "can_resolve_now": True,
    }
    _, tasks = app.history(project, iid)
    done = next(t for t in tasks if t.name == "Record and assess complaint")
    assert done.actor == "carol"
    assert done.started_at is not None
    assert done.started_at.isoformat() == OPEN
    assert done.waiting_s == 20 * 60


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
        input=lines("7", "4", "11", "ten", "10", "maybe", "no", ""),
        now=OPEN,
    )

    assert result.exit_code == 0, result.stderr
    assert "How satisfied are you with how we handled your complaint? (integer, 1..5):" in result.stderr
    assert "(integer, 0..10):" in result.stderr
    assert "7 is greater than the maximum of 5" in result.stderr
    assert "11 is greater than the maximum of 10" in result.stderr
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

    assert gave_up.exit_code == 1
    assert "Aborted" in gave_up.stderr
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
        input=lines("", "billing", "Charged twice", ""),
        now=OPEN,
    )

    assert result.exit_code == 0, result.stderr
    assert "Customer name" not in result.stderr
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


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_do_on_a_real_terminal_prompts(project, project_dir):
    """``flowrun do REF`` with no data on a terminal asks the form at the prompt."""
    iid = app.start(project, "complaint:baseline").instance
    ref = ready_ref(project, iid, "Record complaint")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env.update(FLOWRUN_NOW=OPEN, TERM="dumb", COLUMNS="120")
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [str(flowrun_executable()), "do", ref, "--as", "dave"],
            cwd=project_dir,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
    finally:
        os.close(slave)
    term = Terminal(master)
    try:
        term.expect("Task " + ref + ": Record complaint [Call Centre]")
        term.answer("Customer name (text):", "Dana Lee")
        term.answer("[phone]:", "")
        term.answer("Complaint category (billing/product_fault/service_delay/other):", "fridge")
        term.answer("try again", "product_fault")
        term.answer("Description (text):", "Kettle broke after a week")
        term.answer("Amount disputed (number, 0.., optional) [0]:", "35")
        tail = term.rest()
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)

    assert code == 0, term.transcript.decode(errors="replace")
    assert f"task {ref} done" in tail
    assert "Analyse needs" in tail
    data = app.show(project, iid).data
    assert (data["customer_name"], data["channel"], data["category"], data["amount_disputed"]) == (
        "Dana Lee",
        "phone",
        "product_fault",
        35,
    )
    _, tasks = app.history(project, iid)
    done = next(t for t in tasks if t.name == "Record complaint")
    assert done.started_at is not None
    assert (done.actor, done.started_at.isoformat(), done.ready_at) == ("dave", OPEN, T0)
