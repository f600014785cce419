"""What the shell may complete a word to: families and variants, open task refs, instances, message names.

Each function returns ``(value, help)`` pairs for the values starting with what was typed.
They only read: a project whose SQLite file does not exist yet gives no instances or tasks
(completion never creates or migrates a database). Errors are the caller's to swallow.
"""

from __future__ import annotations

from flowrun.app.project import Project, list_processes

#: At most this many instances are offered (the newest first).
MAX_INSTANCES = 50

Choice = tuple[str, str]


def process_targets(project: Project, typed: str, with_variants: bool = True) -> list[Choice]:
    """Families (``complaint``) and, with ``with_variants``, ``FAMILY:VARIANT`` of the project's processes."""
    out: dict[str, str] = {}
    for entry in list_processes(project):
        if not entry.exists:
            continue
        out.setdefault(entry.family, f"{entry.file}" if entry.variant == "default" else "process family")
        if with_variants and entry.variant != "default":
            out[f"{entry.family}:{entry.variant}"] = entry.file
    return [(value, help) for value, help in out.items() if value.startswith(typed)]


def variants(project: Project, family: str | None, typed: str) -> list[Choice]:
    """The variants of ``family`` (of every family when None)."""
    found = {
        e.variant: e.file
        for e in list_processes(project)
        if e.exists and e.variant != "default" and family in (None, e.family)
    }
    return [(v, help) for v, help in found.items() if v.startswith(typed)]


def open_task_refs(project: Project, typed: str) -> list[Choice]:
    """The refs of the ready and claimed user tasks, with the task, its lane, instance and owner."""
    if not _has_database(project):
        return []
    from flowrun.app.views import inbox

    out = []
    for item in inbox(project):
        ref = str(item.ref)
        if ref.startswith(typed.lstrip("#")):
            owner = f", claimed by {item.actor}" if item.actor else ""
            out.append((ref, f"{item.name} [{item.lane or 'no lane'}] {item.instance[:8]}{owner}"))
    return out


def instance_names(project: Project, typed: str) -> list[Choice]:
    """Instances whose short id, id or business key starts with ``typed``, newest first."""
    if not _has_database(project):
        return []
    with project.store.read(snapshot=False) as tx:
        rows = tx.instances_named_like(typed, MAX_INSTANCES)
    out: dict[str, str] = {}
    for iid, key, family, variant, status in rows:
        what = f"{family}:{variant} {status}"
        if key and key.startswith(typed):
            out[key] = f"{what} {iid[:8]}"
        if iid.startswith(typed):
            out[iid[:8] if len(typed) < 8 else iid] = what + (f" key {key}" if key else "")
    return list(out.items())


def message_names(project: Project, typed: str, kind: str = "message") -> list[Choice]:
    """The names of the messages (or signals) the project's diagrams declare."""
    from flowrun.engine.loader import event_names

    found: dict[str, str] = {}
    for entry in list_processes(project):
        if entry.exists:
            for k, name in event_names(project.settings.root / entry.file):
                if k == kind and name.startswith(typed):
                    found.setdefault(name, entry.file)
    return sorted(found.items())


def _has_database(project: Project) -> bool:
    """False for an SQLite project whose database file is not made yet (opening it would make it)."""
    from flowrun.store.connect import sqlite_path

    url = project.settings.database_url
    if not url.startswith("sqlite"):
        return True
    path = sqlite_path(url)
    return path is not None and path.is_file()
