"""``flowrun validate``: the project's diagrams and forms, checked before anything runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowrun import forms
from flowrun.app.project import Project, outside_project
from flowrun.config import Settings
from flowrun.errors import (
    ProjectError,
)

if TYPE_CHECKING:
    pass


if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from flowrun.models import Problem, ValidationReport

DIAGRAM_SUFFIXES = (".bpmn", ".dmn", ".bpmn20.xml")


def validate(project: Project | None, paths: Sequence[Path] = ()) -> ValidationReport:
    """Check diagrams without running anything and report every problem at once.

    Args:
        project: the project whose forms and service handlers are checked; None
            checks the files alone (forms and service topics are then not checked).
        paths: files or folders to check; none means every ``.bpmn`` and ``.dmn``
            file in processes/ and every file ``flowrun.yaml`` names.

    Raises:
        ProjectError: no paths were given and there is no project to check.
    """
    from flowrun.engine.validate import check_file
    from flowrun.models import ValidationReport

    if project is None and not paths:
        raise ProjectError("nothing to validate: name the files to check, or run inside a project (flowrun init)")
    s = project.settings if project is not None else None
    targets = _validation_targets(s, paths)
    known = set(project.registry.known()) if project is not None else None
    check_form = _form_checker(s) if s is not None else None
    problems: list[Problem] = []
    if s is not None and not paths:
        from flowrun.app.blueprints import blueprint_problems

        problems += _links_leading_out(s)
        problems += blueprint_problems(s)
    for path in targets:
        display = s.rel(path) if s is not None else str(path)
        search_dir = s.processes_dir if s is not None and path.resolve().parent == s.processes_dir.resolve() else None
        problems += check_file(path, display, search_dir, known_topics=known, check_form=check_form)
    files = tuple(s.rel(p) if s is not None else str(p) for p in targets)
    return ValidationReport(files=files, problems=tuple(problems))


def _validation_targets(s: Settings | None, paths: Sequence[Path]) -> list[Path]:
    """The files to check: those given (folders expanded), else the project's diagrams."""
    found: list[Path] = []
    if paths:
        for path in paths:
            found += _diagrams_in(path) if path.is_dir() else [path]
    elif s is not None:
        found += [p for p in _diagrams_in(s.processes_dir) if outside_project(s, p) is None]
        found += [s.root / file for variants in s.families.values() for file in variants.values()]
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _diagrams_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(DIAGRAM_SUFFIXES))


def _links_leading_out(s: Settings) -> list[Problem]:
    """The diagrams of processes/ that lie outside the project (links leading out): reported, never read."""
    from flowrun.models import Problem

    problems = []
    for path in _diagrams_in(s.processes_dir):
        why = outside_project(s, path)
        if why is not None:
            problems.append(
                Problem(
                    file=path.absolute().relative_to(s.root.absolute()).as_posix(),
                    line=None,
                    element=None,
                    name=None,
                    message=f"{why}, so flowrun does not read it",
                    fix="copy the diagram into processes/ instead of linking to it",
                )
            )
    return problems


def _form_checker(s: Settings) -> Callable[[Mapping[str, Any]], object]:
    """Resolves a user task's form reference in the project, raising :class:`FormError`."""

    def check(ref: Mapping[str, Any]) -> object:
        return forms.resolve_form(ref, s.forms_dir, s.root)

    return check
