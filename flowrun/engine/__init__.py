"""The BPMN engine adapter: the only package that imports SpiffWorkflow.

Public names: :class:`Engine`, :class:`Run` (running instances) and
:func:`load_model` (parsing diagrams into storable definitions). They are
imported on first use, so a command that only restores an instance never
loads the BPMN parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrun.engine.loader import load_model
    from flowrun.engine.runner import Engine, Run

__all__ = ["Engine", "Run", "load_model"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from flowrun.engine.loader import load_model

        return load_model
    if name in ("Engine", "Run"):
        from flowrun.engine import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'flowrun.engine' has no attribute {name!r}")
