"""A queue for SQLite writers: processes wait in the kernel for their turn instead of polling.

SQLite lets one writer in at a time. A writer that finds the database locked
is put to sleep by SQLite's busy handler, which does not queue it: it sleeps 1,
2, 5, 10 ... up to 100 ms between tries, and whoever asks at the right moment
gets in. With many operators, most steps go straight through and a few wait
hundreds of milliseconds or seconds (measured: p95 540 ms at 16 operators, with
p50 10 ms; see benchmarks/LOAD.md).

:class:`WriterQueue` puts an exclusive ``flock`` on a file next to the database
around each write transaction. A process waiting for it sleeps in the kernel and
is woken the moment the holder lets go, so the wait is the holder's remaining
write time, not a sleep interval. SQLite's own lock and busy timeout still guard
the database against writers that do not use the queue (another tool, an older
flowrun). Locks held by a process that dies are released by the kernel.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

from flowrun.errors import StoreError


class WriterQueue:
    """An exclusive file lock taken around each write transaction on one SQLite database.

    Args:
        path: the lock file (created when missing); None disables the queue.
        timeout: seconds to wait for the turn before giving up with :class:`StoreError`.
    """

    def __init__(self, path: Path | None, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._pid = 0
        self._threads = threading.Lock()  # flock is per open file: threads of one process queue here

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the queue for the duration of the block (a no-op when the lock file cannot be used)."""
        fd = self._open()
        if fd is None:
            yield
            return
        if not self._threads.acquire(timeout=self.timeout):
            raise StoreError(
                f"waited {self.timeout:.0f} s for another thread's write to {self.path}; nothing was saved"
            )
        try:
            self._lock(fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _open(self) -> int | None:
        if self.path is None or fcntl is None:
            return None
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        try:  # a forked child opens its own file description: locks are per open file
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            self.path = None  # a read-only folder: SQLite's busy handler alone
            return None
        self._pid = os.getpid()
        return self._fd

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if threading.current_thread() is threading.main_thread():
            self._wait_blocking(fd)
        else:
            self._wait_polling(fd)

    def _wait_blocking(self, fd: int) -> None:
        """Sleep in ``flock`` until the turn comes, with an interval timer as the deadline."""

        def expired(signum: int, frame: FrameType | None) -> None:
            raise TimeoutError

        previous = signal.signal(signal.SIGALRM, expired)
        old_timer = signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except TimeoutError:
            fcntl.flock(fd, fcntl.LOCK_UN)  # the timer may have gone off just as the turn came
            raise self._timed_out() from None
        finally:
            signal.signal(signal.SIGALRM, previous)
            if old_timer[0]:
                signal.setitimer(signal.ITIMER_REAL, *old_timer)

    def _wait_polling(self, fd: int) -> None:
        """Outside the main thread no timer can interrupt ``flock``: try again every few milliseconds."""
        deadline = time.monotonic() + self.timeout
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise self._timed_out() from None
                time.sleep(pause)
                pause = min(pause * 2, 0.004)

    def _timed_out(self) -> StoreError:
        return StoreError(
            f"waited {self.timeout:.0f} s for the other writers of the database (lock file {self.path}); "
            "nothing was saved; is a flowrun process stuck? try again"
        )

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
