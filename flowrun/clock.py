"""Where flowrun gets the time from.

All timings (ready, started, completed) come from a :class:`Clock`, never from
``time.time()`` directly, so tests and replays control time. ``FLOWRUN_NOW``
fixes the clock for one command.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new time."""
        self._now = self._now + timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (which must be aware or is taken as UTC)."""
        self._now = as_utc(when)


def as_utc(when: datetime) -> datetime:
    """Return ``when`` as an aware UTC datetime (naive values are taken as UTC)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


#: The earliest and latest time the clock may be set to: a day's margin inside what a datetime holds,
#: so that due times, leases and day boundaries computed from it still fit.
EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)
_OUTSIDE = "the years 1 to 9999 in UTC"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time; a trailing ``Z`` and naive times mean UTC.

    Raises:
        ValueError: the text is not an ISO 8601 time, or it lies outside the years 1 to 9999 in UTC
            (``0001-01-01T00:00:00+14:00``); the message then says so.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    try:
        return as_utc(parsed)
    except OverflowError:
        raise ValueError(f"{text.strip()!r} lies outside {_OUTSIDE}") from None


def check_clock_time(when: datetime) -> datetime:
    """``when`` (aware), refused when it is too close to the ends of the calendar to compute times after it.

    Raises:
        ValueError: ``when`` is before :data:`EARLIEST` or after :data:`LATEST`.
    """
    if not EARLIEST <= when <= LATEST:
        raise ValueError(
            f"{when.isoformat()} lies too close to the ends of the calendar ({_OUTSIDE}) to compute due times from"
        )
    return when


def clock_from_env(environ: dict[str, str] | None = None) -> Clock:
    """The clock for one command: fixed at ``FLOWRUN_NOW`` when it is set.

    Raises:
        ValueError: ``FLOWRUN_NOW`` is set but is not an ISO 8601 time within :data:`EARLIEST` to :data:`LATEST`.
    """
    env = os.environ if environ is None else environ
    fixed = env.get("FLOWRUN_NOW")
    if fixed:
        try:
            when = check_clock_time(parse_time(fixed))
        except ValueError as exc:
            reason = str(exc) if _OUTSIDE in str(exc) else f"{fixed!r} is not an ISO 8601 time"
            raise ValueError(f"FLOWRUN_NOW: {reason}; use e.g. 2026-03-01T09:00:00+01:00") from None
        return ManualClock(when)
    return SystemClock()


def iso(when: datetime | None) -> str | None:
    """Format a time as ISO 8601 with offset (UTC), or None."""
    if when is None:
        return None
    return as_utc(when).isoformat()


def human(when: datetime) -> str:
    """A time for people to read in a message: local time (the machine's zone, or ``TZ``) to the second.

    E.g. ``2026-03-02 09:01:00 CET``; scripts get :func:`iso` (UTC, exact) in ``--json`` instead.
    """
    local = as_utc(when).astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or local.strftime('%z')}"
