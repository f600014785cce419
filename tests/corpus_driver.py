"""Drive one third-party diagram as far as it goes: the corpus test and its report share this.

Each file is loaded with flowrun's loader and started; ready user tasks are completed
with data generated from their forms (defaults, first choices, typed placeholders),
and the clock is advanced a day at a time so timers fire, until the instance ends,
waits for something only the outside world can send (a message or signal), or is
refused with an error.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flowrun import forms
from flowrun.clock import ManualClock
from flowrun.engine import Engine, load_model
from flowrun.errors import FlowrunError
from flowrun.models import READY

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_files() -> list[Path]:
    return sorted(
        p for p in CORPUS.rglob("*") if p.is_file() and (p.suffix == ".bpmn" or p.name.endswith(".bpmn20.xml"))
    )


@dataclass
class Outcome:
    file: str
    result: str  # completed | waiting | refused | failed
    detail: str = ""
    steps: int = 0


def _value(field: forms.FormField) -> Any:
    if field.has_default:
        return field.default
    if field.choices:
        return field.choices[0]
    return {"integer": 1, "number": 1.0, "boolean": True, "object": {}, "array": []}.get(field.type, "x")


def _data_for(form_ref: Any, folder: Path) -> dict[str, Any]:
    try:
        form = forms.resolve_form(form_ref, folder / "forms", folder)
    except FlowrunError:
        return {}
    if form is None:
        return {}
    return {f.name: _value(f) for f in form.fields}


def drive(path: Path, display: str, max_rounds: int = 40) -> Outcome:
    """Run ``path`` as far as it goes; never raises for a diagram's own faults."""
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=timezone.utc))
    try:
        model = load_model(path, display)
    except FlowrunError as exc:
        return Outcome(display, "refused", str(exc))
    engine = Engine(clock, lambda topic, data: {})
    steps = 0
    try:
        run = engine.start(model.spec, {}, key=model.sha256, source=display)
        ready = {r.task_id: r for r in run.drain() if r.status == READY}
        for _ in range(max_rounds):
            if run.completed:
                return Outcome(display, "completed", steps=steps)
            if ready:
                task_id, rec = next(iter(ready.items()))
                run.complete(task_id, _data_for(rec.form, path.parent), "corpus", None)
                steps += 1
            else:
                clock.advance(timedelta(days=1).total_seconds())
                run.refresh()
            for r in run.drain():
                if r.status == READY:
                    ready[r.task_id] = r
                else:
                    ready.pop(r.task_id, None)
            engine.restore(model.spec, run.snapshot(), key=model.sha256)
        if run.completed:
            return Outcome(display, "completed", steps=steps)
        return Outcome(display, "waiting", "; ".join(str(w) for w in run.waiting_for())[:200], steps)
    except FlowrunError as exc:
        return Outcome(display, "failed", str(exc), steps)


def drive_with_deadline(path: Path, display: str, seconds: int = 20) -> Outcome:
    def stop(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        return drive(path, display)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


if __name__ == "__main__":
    import collections
    import sys

    outcomes = [drive_with_deadline(p, str(p.relative_to(CORPUS))) for p in corpus_files()]
    counts = collections.Counter(o.result for o in outcomes)
    for o in outcomes:
        if "-v" in sys.argv:
            print(f"{o.result:9} {o.file}  {o.detail[:160]}")
    print(dict(counts), "of", len(outcomes))
