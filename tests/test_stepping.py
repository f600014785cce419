"""The step machinery's service-call memo, and the store's records at the app boundary."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import Token
from datetime import datetime, timezone
from typing import Any

import pytest

from flowrun.app.stepping import once_per_step, remembered_service_calls
from flowrun.errors import ServiceError
from flowrun.models import SERVICE_CONTEXT, EventRow, ServiceContext
from flowrun.store import SqlStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def _counting(calls: list[str], fail: bool = False) -> Callable[[str, Mapping[str, Any]], dict[str, Any]]:
    def call(topic: str, data: Mapping[str, Any]) -> dict[str, Any]:
        calls.append(topic)
        if fail:
            raise ServiceError(f"{topic} is down")
        return {"n": len(calls), "seen": dict(data)}

    return call


def _in_call(attempt: int = 1) -> Token[ServiceContext | None]:
    return SERVICE_CONTEXT.set(ServiceContext(topic="lookup", instance="i1", task="t1", attempt=attempt))


def test_outside_a_step_every_call_reaches_the_handler():
    """Without remembered_service_calls, once_per_step passes every call through."""
    calls: list[str] = []
    caller = once_per_step(_counting(calls))
    token = _in_call()
    try:
        assert caller("lookup", {})["n"] == 1
        assert caller("lookup", {})["n"] == 2
    finally:
        SERVICE_CONTEXT.reset(token)


def test_a_repeated_call_of_one_step_is_answered_from_the_first():
    """Same key, attempt and topic within one step: the handler runs once, the result is a copy."""
    calls: list[str] = []
    caller = once_per_step(_counting(calls))
    token = _in_call()
    try:
        with remembered_service_calls():
            first = caller("lookup", {"a": 1})
            first["seen"]["a"] = 99  # the engine changing a result must not change the remembered one
            again = caller("lookup", {"a": 1})
        assert calls == ["lookup"]
        assert again == {"n": 1, "seen": {"a": 1}}
        with remembered_service_calls():  # a new step starts with an empty memo
            assert caller("lookup", {})["n"] == 2
    finally:
        SERVICE_CONTEXT.reset(token)


def test_a_new_attempt_reaches_the_handler_and_a_failure_is_raised_again():
    """A failed call is raised again from the memo; the next attempt (a retry) calls the handler."""
    calls: list[str] = []
    caller = once_per_step(_counting(calls, fail=True))
    with remembered_service_calls():
        token = _in_call(attempt=1)
        try:
            for _ in range(2):
                with pytest.raises(ServiceError, match="lookup is down"):
                    caller("lookup", {})
        finally:
            SERVICE_CONTEXT.reset(token)
        assert calls == ["lookup"]
        token = _in_call(attempt=2)
        try:
            with pytest.raises(ServiceError):
                caller("lookup", {})
        finally:
            SERVICE_CONTEXT.reset(token)
    assert calls == ["lookup", "lookup"]


def test_events_and_incidents_come_back_as_the_records_written(tmp_path):
    """An EventRow and an incident round-trip through the store as frozen dataclasses."""
    from flowrun.models import InstanceRecord

    store = SqlStore(f"sqlite:///{tmp_path / 'flowrun.db'}")
    rec = InstanceRecord("i1", "complaint", "default", "p.bpmn", "ab" * 32, "P", None, "running", T0, None, 1, {})
    event = EventRow("i1", None, T0, "instance_started", None, {"pilot": None, "variant": "default"})
    try:
        with store.write() as tx:
            tx.ensure_model(rec.sha256, "P", "p.bpmn", "{}", T0)
            tx.insert_instance(rec, T0)
            tx.add_events([event, EventRow("i1", None, T0, "instance_completed", None)])
            number = tx.open_incident("i1", None, "", None, "ServiceError", "down", 3, T0)
        with store.read() as tx:
            assert tx.instance_events("i1") == [event, EventRow("i1", None, T0, "instance_completed", None)]
            [incident] = tx.list_incidents()
            assert tx.get_incident(number) == incident
        assert (incident.id, incident.instance, incident.task_ref, incident.attempts) == (number, "i1", None, 3)
        assert (incident.error_type, incident.message, incident.created_at, incident.resolved_at) == (
            "ServiceError",
            "down",
            T0,
            None,
        )
    finally:
        store.close()
