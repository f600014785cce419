"""A project (settings, clock, store and engine), its processes, and ``flowrun init``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from flowrun.clock import Clock, clock_from_env
from flowrun.config import Settings
from flowrun.errors import (
    NotFoundError,
    ProjectError,
)
from flowrun.models import (
    ProcessEntry,
    ServicePolicy,
)

if TYPE_CHECKING:
    from flowrun.engine import Engine
    from flowrun.handlers import Registry
    from flowrun.store import SqlStore


@dataclass
class Project:
    """A project's settings, clock and (lazily opened) store and engine."""

    settings: Settings
    clock: Clock = field(default_factory=clock_from_env)

    @cached_property
    def store(self) -> SqlStore:
        from flowrun.store import SqlStore

        return SqlStore(self.settings.database_url)

    @cached_property
    def registry(self) -> Registry:
        from flowrun.handlers import Registry

        return Registry(self.settings.services, self.settings.root)

    @cached_property
    def engine(self) -> Engine:
        from flowrun.app.stepping import once_per_step
        from flowrun.engine import Engine

        policies = self.settings.service_policies
        return Engine(self.clock, once_per_step(self.registry.call), lambda topic: policies.get(topic, ServicePolicy()))

    def close(self) -> None:
        """Close the database connections the project keeps open (if it opened any)."""
        store = self.__dict__.get("store")
        if store is not None:
            store.close()


# -- project ---------------------------------------------------------------------

EXAMPLE_FILES = ("flowrun.yaml", "complaint_services.py", "processes", "forms")


def example_dir() -> Path:
    """Where the shipped example lives: ``flowrun/example/``, package data in the wheel and the checkout alike."""
    return Path(__file__).resolve().parent.parent / "example"


def init_project(dest: Path) -> list[str]:
    """Create a project in ``dest`` with the shipped complaint-handling example.

    Raises:
        ProjectError: ``dest`` already holds a ``flowrun.yaml``.
    """
    if (dest / "flowrun.yaml").exists():
        raise ProjectError(f"{dest} already has a flowrun.yaml; choose an empty folder")
    src = example_dir()
    dest.mkdir(parents=True, exist_ok=True)
    created = []
    for name in EXAMPLE_FILES:
        source = src / name
        target = dest / name
        if source.is_dir():
            target.mkdir(exist_ok=True)
            for item in sorted(source.iterdir()):
                if item.is_file() and not (target / item.name).exists():
                    shutil.copyfile(item, target / item.name)
                    created.append(f"{name}/{item.name}")
        elif source.is_file() and not target.exists():
            shutil.copyfile(source, target)
            created.append(name)
    return created


def list_processes(project: Project) -> list[ProcessEntry]:
    """Families and variants named in ``flowrun.yaml``, then other ``.bpmn`` files in processes/."""
    s = project.settings
    out = []
    named = set()
    for family, variants in s.families.items():
        for variant, file in variants.items():
            path = (s.root / file).resolve()
            named.add(path)
            out.append(ProcessEntry(family, variant, s.rel(path), path.is_file(), True))
    if s.processes_dir.is_dir():
        for path in sorted(s.processes_dir.iterdir()):
            if _is_bpmn(path) and path.resolve() not in named and outside_project(s, path) is None:
                out.append(ProcessEntry(_stem(path), "default", s.rel(path), True, False))
    return out


def outside_project(s: Settings, path: Path) -> str | None:
    """Why ``path`` is not a file of the project (it lies outside, or a link leads out), or None."""
    target = path.resolve()
    if target.is_relative_to(s.root.resolve()):
        return None
    if path.is_symlink() or any(p.is_symlink() for p in path.parents if p.is_relative_to(s.root)):
        return f"is a symbolic link that leads out of the project (to {target})"
    return f"lies outside the project ({s.root})"


def _refuse_outside(s: Settings, path: Path) -> None:
    """flowrun runs and stores only diagrams of the project: a file outside it, or behind a link
    leading out of it (a cloned repository may hold such a link), is refused before it is read."""
    why = outside_project(s, path)
    if why is not None:
        raise ProjectError(
            f"{_shown(s, path)} {why}; flowrun runs only the diagrams inside the project: "
            "copy the file into processes/ and start it by name"
        )


def _shown(s: Settings, path: Path) -> str:
    """``path`` as given, relative to the project when it is written inside it (links not followed)."""
    try:
        return path.absolute().relative_to(s.root.absolute()).as_posix()
    except ValueError:
        return str(path)


def _is_bpmn(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() == ".bpmn" or path.name.endswith(".bpmn20.xml"))


def _stem(path: Path) -> str:
    return path.name.removesuffix(".bpmn20.xml").removesuffix(".bpmn")


def resolve_process(project: Project, target: str) -> tuple[str, str, Path]:
    """``FAMILY[:VARIANT]`` or a file (path, or name in processes/) -> (family, variant, path).

    Raises:
        NotFoundError: nothing by that name; the message lists what exists.
    """
    s = project.settings
    family, _, variant = target.partition(":")
    if family in s.families:
        variants = s.families[family]
        if not variant:
            if len(variants) == 1:
                variant = next(iter(variants))
            else:
                choices = ", ".join(f"{family}:{v}" for v in variants)
                raise NotFoundError(f"process family '{family}' has several variants; say which: {choices}")
        if variant not in variants:
            raise NotFoundError(f"process family '{family}' has no variant '{variant}'; it has {', '.join(variants)}")
        return family, variant, s.root / variants[variant]
    for candidate in (Path(target), s.root / target, s.processes_dir / target, s.processes_dir / f"{target}.bpmn"):
        if _is_bpmn(candidate):
            _refuse_outside(s, candidate)
            for fam, variants in s.families.items():
                for var, file in variants.items():
                    if (s.root / file).resolve() == candidate.resolve():
                        return fam, var, candidate
            return _stem(candidate), "default", candidate
    known = ", ".join(sorted({e.family for e in list_processes(project)})) or "none"
    raise NotFoundError(
        f"no process '{target}': not a family in flowrun.yaml nor a .bpmn file (families and files: {known}); "
        "see 'flowrun processes'"
    )


def db_upgrade(project: Project) -> str:
    """Create or migrate the database schema; returns the revision it is at."""
    from flowrun.store import SqlStore

    store = SqlStore(project.settings.database_url, check=False)
    try:
        return store.upgrade()
    finally:
        store.close()
