"""Service task handlers: functions registered by topic that the engine calls.

A handler is ``(Mapping[str, Any]) -> dict[str, Any]``: it gets a copy of the
task data and returns a dict merged into it. A handler with a second parameter
(or one named ``context``) also gets a :class:`~flowrun.models.ServiceContext`
whose ``idempotency_key`` is the same across retries of the same task. Handlers come from the project's
``flowrun.yaml`` (``services: {topic: module:function}``, importable from the
project folder).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flowrun.errors import BpmnError, FlowrunError, ServiceError, UnknownServiceError
from flowrun.models import SERVICE_CONTEXT

Handler = Callable[..., Mapping[str, Any]]


class Registry:
    """Handlers by topic; imports a configured module only when its topic is first called.

    Args:
        services: topic -> ``module:function`` from ``flowrun.yaml``.
        root: the project folder, put on ``sys.path`` so project modules import.
    """

    def __init__(self, services: Mapping[str, str], root: Path) -> None:
        self.services = dict(services)
        self.root = root
        self._loaded: dict[str, Handler] = {}

    def known(self) -> list[str]:
        return sorted(self.services)

    def get(self, topic: str) -> Handler:
        """The handler for ``topic``.

        Raises:
            UnknownServiceError: nothing is registered for it.
            ServiceError: the configured module or function cannot be imported.
        """
        if topic in self._loaded:
            return self._loaded[topic]
        if topic in self.services:
            fn = self._import(topic, self.services[topic])
        else:
            known = ", ".join(self.known()) or "none"
            raise UnknownServiceError(
                f"no handler is registered for the service topic '{topic}' (known: {known}); "
                f"add '{topic}: module:function' under 'services:' in flowrun.yaml"
            )
        self._loaded[topic] = fn
        return fn

    def _import(self, topic: str, target: str) -> Handler:
        module_name, _, attr = target.partition(":")
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's module
            raise ServiceError(
                f"cannot import '{module_name}' for service topic '{topic}': "
                f"{exc.__class__.__name__}: {exc}; check 'services:' in flowrun.yaml"
            ) from None
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise ServiceError(
                f"'{module_name}' has no function '{attr}' for service topic '{topic}'; "
                "check 'services:' in flowrun.yaml"
            )
        return fn  # type: ignore[no-any-return]

    def call(self, topic: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Call the handler for ``topic``; its failures become a :class:`ServiceError`."""
        fn = self.get(topic)
        context = SERVICE_CONTEXT.get()
        try:
            result = fn(dict(data), context) if _wants_context(fn) else fn(dict(data))
        except (FlowrunError, BpmnError):
            raise  # BpmnError is the handler throwing a BPMN error, not a failure
        except Exception as exc:  # noqa: BLE001 - a handler may fail in any way
            error = ServiceError(
                f"the service '{topic}' failed: {exc.__class__.__name__}: {exc}; "
                "nothing was saved, fix the cause and run the command again"
            )
            error.original = (exc.__class__.__name__, str(exc))
            raise error from None
        if result is None:
            return {}
        return result


def _wants_context(fn: Handler) -> bool:
    """Handlers written ``def handler(data, context)`` also get the :class:`ServiceContext`."""
    cached = _WANTS.get(fn)
    if cached is None:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        cached = len(positional) >= 2 or any(p.name == "context" for p in params)
        _WANTS[fn] = cached
    return cached


_WANTS: dict[Any, bool] = {}
