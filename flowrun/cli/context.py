"""What every command is handed: :class:`AppContext` and the ``pass_app`` decorator.

It lives apart from ``cli/main.py`` so that a command module can be imported on its own:
``main.py`` imports every command module to register it, and the command modules import
this one, never ``main.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


class AppContext:
    """What every command gets: the ``--project`` option and the lazily loaded project."""

    def __init__(self, project_dir: Path | None) -> None:
        self.project_dir = project_dir
        self._project: Any = None

    @property
    def project(self) -> Any:
        if self._project is None:
            from flowrun.app import Project
            from flowrun.clock import clock_from_env
            from flowrun.config import find_project

            try:
                clock = clock_from_env()
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
            self._project = Project(find_project(explicit=self.project_dir), clock)
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


pass_app = click.make_pass_decorator(AppContext)
