"""Timer expressions in bounded time: ISO 8601 dates, durations and cycles, and how a late cycle catches up.

SpiffWorkflow's timer code walks a duration month by month (``R/P99999999Y`` is
a billion steps), overflows on dates past the year 9999 or before the year 1 in
UTC, and fires a cycle timer that is far behind the clock one round per refresh.
Importing this module replaces those parts of its timer classes (as
:mod:`flowrun.engine._spiff` replaces their clock), so that every timer, at
validate time and at run time, is computed with arithmetic and refused with a
reason when it is absurd:

* a duration (on its own, or a cycle's interval) is at most :data:`MAX_YEARS`;
* a date and a due time lie within the years 1 to 9999 in UTC, a day short of
  each end (:data:`flowrun.clock.EARLIEST` to :data:`flowrun.clock.LATEST`);
* a cycle's interval is at least :data:`MIN_CYCLE_SECONDS`;
* a cycle timer whose due time has passed fires **once**, however many rounds
  it missed; the missed rounds count towards its repetitions (``R5/...``) and
  are added up in its stored state (``missed``); its next round is the first
  one after now, on its original schedule.

A refused value raises :class:`TimerValueError` (a ``ValueError`` whose message
says what is wrong and how to write it); at run time it becomes a
:class:`~flowrun.errors.ScriptError` naming the timer's element.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer
from SpiffWorkflow.exceptions import SpiffWorkflowException

from flowrun.clock import EARLIEST, LATEST
from flowrun.engine.sandbox import SandboxError
from flowrun.errors import FlowrunError, ScriptError

#: The longest duration a timer may wait, or a cycle may repeat after.
MAX_YEARS = 100

#: The shortest interval of a cycle timer, in seconds.
MIN_CYCLE_SECONDS = 1.0

#: Seconds per designator, to bound a duration before computing it (years and months on average, so
#: that P100Y and P1200M are the same length).
_SECONDS = {"years": 365.2425 * 86400, "months": 365.2425 * 86400 / 12, "weeks": 7 * 86400, "days": 86400}
_SECONDS.update(hours=3600, minutes=60, seconds=1)
_MAX_SECONDS = MAX_YEARS * _SECONDS["years"] * (1 + 1e-12)
_CALENDAR = "the years 1 to 9999 in UTC (less a day at each end)"
_TIMER_FIX = "e.g. PT4H, P30D, R/PT1H or 2026-03-02T09:00:00Z"


class TimerValueError(ValueError):
    """A timer value flowrun refuses; the message says why and how to write it."""


_spiff_parse_duration: Callable[[str], dict[str, Any]] = _timer.TimerEventDefinition.parse_iso_duration


def parse_duration(expression: str) -> dict[str, Any]:
    """An ISO 8601 duration (``P2DT4H``) as SpiffWorkflow's parts, refused when longer than :data:`MAX_YEARS`.

    Raises:
        TimerValueError: the duration is too long.
        Exception: the text is not an ISO 8601 duration (SpiffWorkflow's own error).
    """
    parsed = _spiff_parse_duration(expression)
    try:
        total = sum(float(value) * _SECONDS[part] for part, value in parsed.items())
    except OverflowError:  # an integer too large for a float
        total = float("inf")
    if not total <= _MAX_SECONDS:  # also catches inf and nan from a huge decimal
        raise TimerValueError(
            f"the duration {_short(expression)} is longer than {MAX_YEARS} years, the longest a timer may wait"
        )
    return parsed


def get_datetime(expression: str) -> datetime:
    """An ISO 8601 date and time in UTC (naive: the machine's time zone, as SpiffWorkflow reads it).

    Raises:
        TimerValueError: the time is outside :data:`~flowrun.clock.EARLIEST` to :data:`~flowrun.clock.LATEST`.
        ValueError: the text is not an ISO 8601 time.
    """
    when = datetime.fromisoformat(expression)
    if when.tzinfo is None:
        when = datetime.combine(when.date(), when.time(), _timer.LOCALTZ)
    try:
        utc: datetime | None = when.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise TimerValueError(f"the time {_short(expression)} lies outside {_CALENDAR}")
    return utc


def timedelta_from_start(parsed: dict[str, Any], start: datetime | None = None) -> timedelta:
    """How long ``parsed`` (from :func:`parse_duration`) lasts from ``start`` (now): months by the calendar."""
    start = start or _timer.datetime.now(timezone.utc)
    parts = dict(parsed)
    months = parts.pop("months", 0) + parts.pop("years", 0) * 12
    whole = int(months)
    target = _add_months(start, whole)
    days = (target - date(start.year, start.month, 1)).days + (months - whole) * _days_in(target)
    return _bounded(start, timedelta(days=parts.pop("days", 0) + days, **parts))


def timedelta_from_end(parsed: dict[str, Any], end: datetime) -> timedelta:
    """How long ``parsed`` lasts up to ``end``: months by the calendar, counted back."""
    parts = dict(parsed)
    months = parts.pop("months", 0) + parts.pop("years", 0) * 12
    whole = int(months)
    first = _add_months(end, -whole)
    back = _add_months(end, -whole - 1) if months != whole else first
    days = (date(end.year, end.month, 1) - first).days + (months - whole) * _days_in(back)
    delta = timedelta(days=parts.pop("days", 0) + days, **parts)
    try:
        first_round: datetime | None = end - delta
    except OverflowError:
        first_round = None
    if first_round is None or first_round < EARLIEST:
        raise TimerValueError(f"the timer would start outside {_CALENDAR}")
    return delta


def _add_months(when: datetime | date, months: int) -> date:
    """The first day of the month ``months`` after (or before) ``when``'s month."""
    index = when.year * 12 + when.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise TimerValueError(f"the timer would be due outside {_CALENDAR}")
    return date(year, month + 1, 1)


def _days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _bounded(start: datetime, delta: timedelta) -> timedelta:
    try:
        due: datetime | None = start + delta
    except OverflowError:
        due = None
    if due is None or due > LATEST:
        raise TimerValueError(f"the timer would be due after the year 9999 (from {start.date().isoformat()})")
    return delta


def parse_cycle(expression: str) -> tuple[int, datetime, timedelta]:
    """An ISO 8601 repeating interval (``R3/PT1H``, ``R/2026-03-02T09:00Z/P1D``): (repetitions, first, interval).

    Repetitions are -1 for no limit. A bare interval starts one interval after now.

    Raises:
        TimerValueError: the interval is shorter than :data:`MIN_CYCLE_SECONDS` or too long, or a time overflows.
        Exception: the text is not an ISO 8601 repeating interval (SpiffWorkflow's own error).
    """
    parse = _timer.TimerEventDefinition.parse_time_or_duration
    components = expression.upper().replace("--", "/").strip("R").split("/")
    cycles = int(components[0]) if components[0] else -1
    if cycles < -1 or components[0].startswith(("-", "+")):
        raise TimerValueError(f"the cycle {_short(expression)} repeats {components[0]} times")
    first = parse(components[1])
    second = parse(components[2]) if len(components) == 3 else None
    if isinstance(first, datetime) and isinstance(second, dict):
        start, interval = first, timedelta_from_start(second, first)
    elif isinstance(first, dict) and isinstance(second, datetime):
        interval = timedelta_from_end(first, second)
        start = second - interval
    elif isinstance(first, dict) and second is None:
        now = _timer.datetime.now(timezone.utc)
        interval = timedelta_from_start(first, now)
        start = now + interval
    else:
        raise ValueError("Invalid recurring interval")
    if interval.total_seconds() < MIN_CYCLE_SECONDS:
        raise TimerValueError(
            f"the cycle {_short(expression)} repeats every {interval.total_seconds():g} s; "
            "a cycle may repeat at most once a second"
        )
    return cycles, start, interval


def _cycle_complete(self: Any, my_task: Any) -> bool:
    """SpiffWorkflow's ``CycleTimerEventDefinition.cycle_complete``, firing a late cycle once for all its rounds."""
    event_value = my_task._get_internal_data("event_value")
    if event_value is None:
        expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
        cycles, start, interval = parse_cycle(expression)
        event_value = {"cycles": cycles, "next": start.isoformat(), "duration": interval.total_seconds()}
    ready = False
    if event_value["cycles"] != 0:
        due = datetime.fromisoformat(event_value["next"])
        late = _timer.datetime.now(timezone.utc) - due
        if late > timedelta(0):
            step = timedelta(seconds=event_value["duration"])
            rounds = (late - timedelta(microseconds=1)) // step + 1  # rounds due strictly before now
            if event_value["cycles"] > 0:
                rounds = min(rounds, event_value["cycles"])
                event_value["cycles"] -= rounds
            event_value["missed"] = event_value.get("missed", 0) + rounds - 1
            try:
                following: datetime | None = due + rounds * step
            except OverflowError:
                following = None
            if following is None or following > LATEST:  # the next round would be past the calendar: none
                event_value["cycles"] = 0
            else:
                event_value["next"] = following.isoformat()
            ready = True
    else:
        my_task.internal_data.pop("event_value", None)
        my_task.internal_data["event_fired"] = True
    my_task._set_internal_data(event_value=event_value)
    return ready


#: What each kind of timer's value must be, for the message when it is not.
_KINDS = {
    "TimeDateEventDefinition": "an ISO 8601 date and time",
    "DurationTimerEventDefinition": "an ISO 8601 duration",
    "CycleTimerEventDefinition": "an ISO 8601 repeating interval",
}


def _located(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a timer method so that a refused or unreadable value names the timer's element (a ScriptError).

    Errors of the expression itself (SpiffWorkflow's, the sandbox's, flowrun's, running out of
    memory or stack) pass through, to be mapped with their reason where every script error is.
    """

    @functools.wraps(method)
    def wrapper(self: Any, my_task: Any, *args: Any) -> Any:
        try:
            return method(self, my_task, *args)
        except (SpiffWorkflowException, SandboxError, FlowrunError, MemoryError, RecursionError):
            raise
        except Exception as exc:
            if isinstance(exc, TimerValueError):
                reason = str(exc)
            elif isinstance(exc, OverflowError):
                reason = f"the timer's time overflows ({exc})"
            else:
                kind = _KINDS.get(type(self).__name__, "an ISO 8601 date, duration or cycle")
                reason = f"its value is not {kind} ({type(exc).__name__}: {_short(str(exc))})"
            spec = my_task.task_spec
            raise ScriptError(
                f'timer {spec.bpmn_id} ("{spec.bpmn_name or spec.bpmn_id}") `{_short(str(self.expression))}`: '
                f"{reason}; fix the timer in the diagram ({_TIMER_FIX})"
            ) from exc

    return wrapper


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: SpiffWorkflow's own month walks, kept to test that the arithmetic gives the same durations.
SPIFF_FROM_START: Callable[..., timedelta] = _timer.TimerEventDefinition.get_timedelta_from_start
SPIFF_FROM_END: Callable[..., timedelta] = _timer.TimerEventDefinition.get_timedelta_from_end


def _install() -> None:
    base = _timer.TimerEventDefinition
    base.parse_iso_duration = staticmethod(parse_duration)
    base.get_datetime = staticmethod(get_datetime)
    base.get_timedelta_from_start = staticmethod(timedelta_from_start)
    base.get_timedelta_from_end = staticmethod(timedelta_from_end)
    base.parse_iso_recurring_interval = staticmethod(parse_cycle)
    _timer.CycleTimerEventDefinition.cycle_complete = _located(_cycle_complete)
    for cls in (_timer.TimeDateEventDefinition, _timer.DurationTimerEventDefinition):
        cls.has_fired = _located(cls.has_fired)


_install()
