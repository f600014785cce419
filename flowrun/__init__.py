"""flowrun: run, time and compare customer service processes drawn in BPMN.

Only the version and :class:`BpmnError` (which service handlers raise) live here,
so that ``import flowrun`` is instant; the public building blocks are in their own
modules (``flowrun.app`` for use cases, ``flowrun.errors`` for the exception tree).
"""

from flowrun.errors import BpmnError

# The one place the version is written: hatchling reads it for the package metadata
# ([tool.hatch.version] in pyproject.toml), and `flowrun --version` prints it without importing anything.
__version__ = "0.1.0"

__all__ = ["BpmnError", "__version__"]
