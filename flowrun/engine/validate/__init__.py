"""Check a BPMN or DMN file without running it, reporting every problem at once.

:func:`check_file` reads the file safely, validates it against the BPMN 2.0
schema SpiffWorkflow ships, checks its structure (ids, flows, supported
elements), compiles every condition and script in the sandbox, parses every
timer, resolves forms, service topics, called processes and decisions, and
finally tries to load it as flowrun would before running it. Each finding is a
located :class:`~flowrun.models.Problem`; nothing is raised.

Forms are checked through a callback (``check_form``) because the engine does
not import :mod:`flowrun.forms`; the use case passes one in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from flowrun.engine.validate._common import Context, FormCheck, namespace_of
from flowrun.engine.validate.blueprint import check_touchpoints
from flowrun.engine.validate.code import check_code, check_timers
from flowrun.engine.validate.dmn import check_dmn
from flowrun.engine.validate.loading import check_loading, from_model_error, unexpected_problem
from flowrun.engine.validate.references import check_calls, check_tasks
from flowrun.engine.validate.schema import check_schema
from flowrun.engine.validate.structure import check_elements, check_flows, check_ids
from flowrun.engine.xml import BPMN_NS, BPMN_TAG, local_name, parse_bytes, read_bytes
from flowrun.errors import ModelError
from flowrun.models import Problem


def check_file(
    path: Path,
    display: str,
    search_dir: Path | None = None,
    *,
    known_topics: set[str] | None = None,
    check_form: FormCheck | None = None,
) -> list[Problem]:
    """Every problem of the BPMN or DMN file at ``path``, in file order; never raises.

    Args:
        path: the file to check.
        display: how to name the file in problems (relative to the project).
        search_dir: folder whose other files may provide called processes and
            decisions; defaults to the file's own folder.
        known_topics: service topics that have a handler; None skips that check.
        check_form: resolves a user task's form reference, raising
            :class:`FormError`; None skips the form check.
    """
    data = b""
    try:
        data = read_bytes(path, display)
        tree = parse_bytes(data, display)
    except ModelError as exc:
        problem = from_model_error(exc, display)
        marker = data.find(b"<!DOCTYPE") if b"<!DOCTYPE" in data else data.find(b"<!ENTITY")
        if problem.line is None and marker >= 0:  # name the line, so the designer finds it
            problem = replace(problem, line=data[:marker].count(b"\n") + 1)
        return [problem]
    except Exception as exc:  # noqa: BLE001 - a validator reports, it never crashes
        return [unexpected_problem(display, exc)]
    root = tree.getroot()
    ctx = Context(path, display, search_dir or path.parent, root, known_topics, check_form, [])
    if namespace_of(root.tag).startswith(("https://www.omg.org/spec/DMN/", "http://www.omg.org/spec/DMN/")):
        stages: tuple[Callable[[Context], None], ...] = (check_dmn,)
    elif root.tag != BPMN_TAG + "definitions":
        ctx.add(
            root,
            f"not a BPMN 2.0 file: the root element is <{local_name(root.tag)}> in namespace "
            f"'{namespace_of(root.tag) or 'none'}'",
            f'save the diagram from a BPMN modeler; the root must be <bpmn:definitions xmlns:bpmn="{BPMN_NS}">',
        )
        return ctx.problems
    else:
        stages = (check_schema, check_ids, check_flows, check_elements, check_code, check_timers)
        stages += (check_tasks, check_touchpoints, check_calls, check_loading)
    for stage in stages:
        try:
            stage(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            ctx.problems.append(unexpected_problem(display, exc))
    return sorted(ctx.problems, key=lambda p: (p.file != display, p.line or 0))
