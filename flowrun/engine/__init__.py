"""The BPMN engine adapter: the only package that imports SpiffWorkflow.

Public names: :class:`Engine`, :class:`Run` (running instances) and
:func:`load_model` (parsing diagrams into storable definitions).
"""

from flowrun.engine.loader import load_model
from flowrun.engine.runner import Engine, Run

__all__ = ["Engine", "Run", "load_model"]
