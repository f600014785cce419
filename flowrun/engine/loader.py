"""Load a BPMN file into an executable, serialisable process definition.

``load_model`` reads the file safely (:mod:`flowrun.engine.xml`), parses it
with flowrun's SpiffWorkflow parser, resolves called processes and decisions
from the other files of the same folder, and returns a :class:`ModelInfo`
whose ``spec`` is the definition as JSON text, ready to be stored once per
model version. Every failure is a located :class:`ModelError`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flowrun.config import PathRefused, inside
from flowrun.engine import _parser, _spiff
from flowrun.engine.error_map import mapped, parsing, storing
from flowrun.engine.normalize import normalize
from flowrun.engine.xml import BPMN_NS, BPMN_TAG, local_name, parse_bytes, read_bytes
from flowrun.errors import ModelError
from flowrun.models import ModelInfo

DMN_PREFIX = "https://www.omg.org/spec/DMN/"


def load_model(path: Path, display: str, search_dir: Path | None = None) -> ModelInfo:
    """Parse the BPMN file at ``path`` into a :class:`ModelInfo`.

    Args:
        path: the file to load.
        display: how to name the file in messages (relative to the project).
        search_dir: folder whose other ``.bpmn``/``.dmn`` files may provide called
            processes and decisions; defaults to the file's own folder.

    Raises:
        ModelError: the file cannot be read, parsed or executed, with its location.
    """
    data = read_bytes(path, display)
    tree = parse_bytes(data, display)
    root = tree.getroot()
    if root.tag != BPMN_TAG + "definitions":
        raise ModelError(
            f"not a BPMN 2.0 file: the root element is <{local_name(root.tag)}>, expected "
            f"<bpmn:definitions> in namespace {BPMN_NS}",
            file=display,
            line=root.sourceline,
        )
    _refuse_reserved_ids(root, display)
    parser = _parser.FlowrunParser()
    trees = {display: tree}
    warnings = _add(parser, tree, display, trees)
    process_id = _pick_process(parser, root, display)
    used = [(display, data)]
    if _missing(parser):
        used += _add_folder(parser, search_dir or path.parent, path, trees, warnings)
    _refuse_recursion(parser, process_id, trees, display)
    with mapped(parsing("cannot be executed", trees, display)):
        spec = parser.get_spec(process_id)
        subprocesses = parser.get_subprocess_specs(process_id)
    with mapped(storing(display)):
        spec_json = _spiff.dump_definition(spec, subprocesses)
    lanes = tuple(dict.fromkeys(t.lane for t in spec.task_specs.values() if getattr(t, "lane", None)))
    return ModelInfo(
        file=display,
        sha256=_digest(used),
        process_id=process_id,
        name=spec.description if spec.description != process_id else None,
        spec=spec_json,
        lanes=lanes,
        warnings=tuple(warnings),
    )


#: Names SpiffWorkflow gives its own internal tasks; an element with such an id would clash.
RESERVED_IDS = ("Start", "Root")


def _refuse_reserved_ids(root: Any, display: str) -> None:
    for node in root.xpath("//*[@id='Start' or @id='Root']"):
        if local_name(node.tag) in ("definitions", "collaboration", "participant"):
            continue
        ident = node.get("id")
        raise ModelError(
            f'the id "{ident}" is reserved by the engine; rename the element (e.g. {local_name(node.tag)}_{ident}) '
            "in the modeler's properties panel",
            file=display,
            line=node.sourceline,
            element=ident,
        )


def _refuse_recursion(parser: Any, start: str, trees: dict[str, Any], display: str) -> None:
    """Refuse a process that calls itself, directly or through others (it would never end)."""

    def called(pid: str) -> list[str]:
        pp = parser.get_process_parser(pid)
        if pp is None:
            return []
        found = getattr(pp, "called_element_ids", None)
        return [str(x) for x in ((found() if callable(found) else found) or ())]

    path: list[str] = []

    def visit(pid: str) -> None:
        if pid in path:
            cycle = " -> ".join([*path[path.index(pid) :], pid])
            raise ModelError(
                f"process {pid} calls itself ({cycle}), so a case would never end; break the cycle of call activities",
                file=display,
            )
        path.append(pid)
        for child in called(pid):
            visit(child)
        path.pop()

    visit(start)


def _digest(files: list[tuple[str, bytes]]) -> str:
    if len(files) == 1:
        return hashlib.sha256(files[0][1]).hexdigest()
    h = hashlib.sha256()
    for name, data in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _add(parser: Any, tree: Any, display: str, trees: dict[str, Any]) -> list[str]:
    warnings = normalize(tree, display)
    with mapped(parsing("cannot be parsed", trees, display)):
        parser.add_bpmn_xml(tree, filename=display)
    return warnings


def _pick_process(parser: Any, root: Any, display: str) -> str:
    ids = list(parser.get_process_ids())
    if not ids:
        declared = root.findall(BPMN_TAG + "process")
        if declared:
            raise ModelError(
                'no process is executable (isExecutable="false"); tick "Executable" in the '
                "modeler's properties panel for the process to run",
                file=display,
                line=declared[0].sourceline,
                element=declared[0].get("id"),
            )
        raise ModelError("the file defines no <bpmn:process>; draw a process in it", file=display)
    called: set[str] = set()
    for pid in ids:
        found = getattr(parser.get_process_parser(pid), "called_element_ids", None)
        called |= set((found() if callable(found) else found) or ())
    top = [pid for pid in ids if pid not in called]
    return str((top or ids)[0])


def _missing(parser: Any) -> set[str]:
    """Called processes and decisions the parser has not seen yet."""
    known = set(parser.process_parsers)
    known |= set(getattr(parser, "dmn_parsers", {}) or {})
    return {d for d in parser.get_dependencies() if d} - known


def _add_folder(
    parser: Any, folder: Path, main: Path, trees: dict[str, Any], warnings: list[str]
) -> list[tuple[str, bytes]]:
    """Add the files of ``folder`` that define missing called processes or decisions."""
    used: list[tuple[str, bytes]] = []
    candidates = [p for p in diagrams_in(folder) if p != main.resolve()]
    progress = True
    while progress and _missing(parser):
        progress = False
        for other in list(candidates):
            display = other.name if main.parent == folder else str(other)
            try:
                data = read_bytes(other, display)
                tree = parse_bytes(data, display)
            except ModelError:
                candidates.remove(other)
                continue
            root = tree.getroot()
            ids = set(root.xpath("//*[local-name()='process' or local-name()='decision']/@id"))
            if not ids & _missing(parser):
                continue
            candidates.remove(other)
            trees[display] = tree
            with mapped(parsing("cannot be parsed", trees, display)):
                if root.tag == BPMN_TAG + "definitions":
                    warnings += normalize(tree, display)
                    parser.add_bpmn_xml(tree, filename=display)
                else:
                    parser.add_dmn_xml(tree.getroot(), filename=display)
            used.append((display, data))
            progress = True
    return used


def diagrams_in(folder: Path, passed_over: list[str] | None = None) -> list[Path]:
    """The BPMN and DMN files of ``folder`` that may provide called processes and decisions, resolved.

    A symbolic link that leads out of the folder is passed over unopened (its name is added
    to ``passed_over``): called diagrams and decisions come only from the folder itself
    (:func:`flowrun.config.inside`).
    """
    found = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not (entry.suffix.lower() in (".bpmn", ".dmn") or entry.name.endswith(".bpmn20.xml")):
            continue
        try:
            path = inside(folder, entry.name)
        except PathRefused:
            if passed_over is not None:
                passed_over.append(entry.name)
            continue
        if path.is_file():
            found.append(path)
    return found


def start_events(path: Path) -> set[tuple[str, str]]:
    """The ``(kind, name)`` of the message and signal start events of a diagram's processes.

    Unreadable files give an empty set (they are reported when started or validated).
    """
    try:
        root = parse_bytes(read_bytes(path, path.name), path.name).getroot()
    except ModelError:
        return set()
    ns = {"bpmn": BPMN_NS}
    names = {
        m.get("id"): m.get("name") or m.get("id") for m in root.xpath("//bpmn:message|//bpmn:signal", namespaces=ns)
    }
    found: set[tuple[str, str]] = set()
    for kind in ("message", "signal"):
        for ref in root.xpath(f"//bpmn:process/bpmn:startEvent/bpmn:{kind}EventDefinition/@{kind}Ref", namespaces=ns):
            found.add((kind, str(names.get(ref, ref))))
    return found


def event_names(path: Path) -> set[tuple[str, str]]:
    """The ``(kind, name)`` of every message and signal a diagram declares (for shell completion).

    Unreadable files give an empty set.
    """
    try:
        root = parse_bytes(read_bytes(path, path.name), path.name).getroot()
    except ModelError:
        return set()
    ns = {"bpmn": BPMN_NS}
    return {
        (str(m.tag).rsplit("}", 1)[-1], str(m.get("name") or m.get("id")))
        for m in root.xpath("//bpmn:message|//bpmn:signal", namespaces=ns)
        if m.get("name") or m.get("id")
    }
