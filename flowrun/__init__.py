"""flowrun: run, time and compare customer service processes drawn in BPMN.

Only the version lives here, so that ``import flowrun`` is instant; the public
building blocks are in their own modules (``flowrun.app`` for use cases,
``flowrun.errors`` for the exception tree).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
