"""The SQLite writer queue: writers wait in the kernel for their turn, and give up cleanly after the timeout."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flowrun import app
from flowrun.errors import StoreError
from flowrun.store.writers import WriterQueue
from tests.helpers import intake, query, ready_ref

pytestmark = pytest.mark.sqlite


def _hold(path: str, seconds: float, ready: object) -> None:
    queue = WriterQueue(Path(path), timeout=5)
    with queue.turn():
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_a_writer_waits_for_the_writer_before_it_and_then_saves(project, project_dir):
    started = app.start(project, "complaint:reengineered")
    lock = project_dir / ".flowrun" / "flowrun.db.writers"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(lock), 1.0, ready), daemon=True)
    holder.start()
    assert ready.wait(10)
    began = time.monotonic()
    app.complete(project, ready_ref(project, started.instance, "Record and assess complaint"), intake(), "alice")
    waited = time.monotonic() - began
    holder.join(10)
    assert waited >= 0.5, f"the step did not wait for the other writer ({waited:.2f} s)"
    assert query(
        project_dir, "SELECT count(*) FROM tasks WHERE status = 'completed' AND name = 'Record and assess complaint'"
    ) == [(1,)]


def test_a_writer_gives_up_after_the_timeout_with_a_clear_message(tmp_path):
    path = tmp_path / "db.writers"
    ready = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with WriterQueue(path, timeout=5).turn():
            ready.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert ready.wait(5)
        with pytest.raises(StoreError, match=r"waited 0 s for the other writers .*db\.writers.*nothing was saved"):
            with WriterQueue(path, timeout=0.3).turn():
                pass  # pragma: no cover - never reached
        errors: list[BaseException] = []  # outside the main thread, the queue polls instead of sleeping in flock
        waiter = threading.Thread(
            target=_catch, args=(lambda: WriterQueue(path, timeout=0.3).turn().__enter__(), errors)
        )
        waiter.start()
        waiter.join(10)
        assert len(errors) == 1
        assert isinstance(errors[0], StoreError)
        assert "nothing was saved" in str(errors[0])
    finally:
        release.set()
        holder.join(10)
    with WriterQueue(path, timeout=0.3).turn():  # free again
        pass


def _catch(fn: Callable[[], object], errors: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - handed to the test
        errors.append(exc)


def test_a_read_only_folder_falls_back_to_sqlites_own_lock(tmp_path):
    queue = WriterQueue(tmp_path / "missing-folder" / "db.writers", timeout=1)
    with queue.turn():
        pass
    assert queue.path is None
