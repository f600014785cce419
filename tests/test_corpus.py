"""Every third-party diagram in ../shared/corpus either starts or is refused with a located error."""

from __future__ import annotations

import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest

from flowrun.clock import ManualClock
from flowrun.engine import Engine, load_model
from flowrun.errors import FlowrunError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and (p.suffix == ".bpmn" or p.name.endswith(".bpmn20.xml")))


def _deadline(seconds: int) -> None:
    def stop(signum, frame):
        raise TimeoutError(f"no answer after {seconds} s")

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)


@pytest.mark.skipif(not FILES, reason="../shared/corpus is not present")
def test_corpus_runs_or_is_refused_with_a_located_error():
    """No traceback, no hang: each file starts, or its error names the file."""
    outcomes = {"started": 0, "refused": 0}
    crashes = []
    for path in FILES:
        display = str(path.relative_to(CORPUS))
        _deadline(20)
        try:
            model = load_model(path, display)
            engine = Engine(ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc)), lambda topic, data: {})
            run = engine.start(model.spec, {}, key=model.sha256, source=display)
            engine.restore(model.spec, run.snapshot(), key=model.sha256)
            outcomes["started"] += 1
        except FlowrunError as exc:
            outcomes["refused"] += 1
            if path.name not in str(exc) and ".bpmn" not in str(exc):
                crashes.append(f"{display}: error does not say where: {exc}")
        except Exception as exc:  # noqa: BLE001 - this is what the test is looking for
            crashes.append(f"{display}: {exc.__class__.__name__}: {exc}")
        finally:
            signal.alarm(0)
    assert not crashes, "\n".join(crashes)
    assert outcomes["started"] >= 100, outcomes
