"""Every third-party diagram in ../shared/corpus runs, waits for the outside world, or is refused
with a located error: never a traceback, never a hang."""

from __future__ import annotations

import collections
import os

import pytest

from tests.corpus_driver import CORPUS, corpus_files, drive_with_deadline

FILES = corpus_files()

#: Raw SpiffWorkflow 3.2.0 ran this many corpus files to the end (probe-results.csv).
RAW_SPIFF_COMPLETED = 59


@pytest.mark.skipif(not FILES, reason="../shared/corpus is not present")
def test_corpus_runs_or_is_refused_with_a_located_error():
    """No traceback, no hang; more files run to the end than with raw SpiffWorkflow."""
    problems = []
    outcomes = []
    for path in FILES:
        display = str(path.relative_to(CORPUS))
        try:
            outcome = drive_with_deadline(path, display)
        except Exception as exc:  # noqa: BLE001 - this is what the test is looking for
            problems.append(f"{display}: {exc.__class__.__name__}: {exc}")
            continue
        outcomes.append(outcome)
        if outcome.result in ("refused", "failed") and ".bpmn" not in outcome.detail:
            problems.append(f"{display}: the error does not say which file: {outcome.detail}")
    counts = collections.Counter(o.result for o in outcomes)
    report = os.environ.get("FLOWRUN_CORPUS_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as f:
            for o in outcomes:
                f.write(f"{o.result}\t{o.file}\t{o.detail}\n")
    assert not problems, "\n".join(problems)
    assert counts["completed"] > RAW_SPIFF_COMPLETED, dict(counts)
