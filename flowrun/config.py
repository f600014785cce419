"""The project: a folder with a ``flowrun.yaml`` naming processes, forms, database and services.

``find_project`` looks for ``flowrun.yaml`` from a folder upwards (or takes the
folder given with ``--project``) and returns :class:`Settings` with every path
resolved against the project folder, so a project can be moved or shared.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowrun.errors import ProjectError
from flowrun.models import ServicePolicy

CONFIG_NAME = "flowrun.yaml"
#: Largest data a user hands flowrun in one piece (a ``--data-file``, a ``send`` payload), in MB;
#: ``FLOWRUN_MAX_DATA_MB`` changes it. A ``flowrun.yaml`` may hold at most 1 MB.
DEFAULT_MAX_DATA_MB = 16.0
MAX_CONFIG_BYTES = 1 << 20


def max_data_bytes() -> int:
    """The data size limit in bytes: ``FLOWRUN_MAX_DATA_MB`` (default 16), as a whole number of bytes.

    Raises:
        ProjectError: the variable is not a positive number.
    """
    text = os.environ.get("FLOWRUN_MAX_DATA_MB", "").strip()
    if not text:
        return int(DEFAULT_MAX_DATA_MB * 1_000_000)
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not 0 < mb < 1e6:
        raise ProjectError(f"FLOWRUN_MAX_DATA_MB='{text}' is not a size in MB; set it to a number such as 16")
    return max(1, int(mb * 1_000_000))


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused above ``limit`` before they are all read into memory.

    Reads at most ``limit + 1`` bytes, so a FIFO or a device such as ``/dev/zero`` is refused
    as well as a huge file.

    Raises:
        OSError: the file cannot be read.
        ProjectError: it holds more than ``limit`` bytes; the message names ``what`` and the limit.
    """
    with path.open("rb") as stream:
        raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise ProjectError(f"{path}: {what} is larger than {_size(limit)}, the limit; {_size_fix(what)}")
    return raw


def _size(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n} bytes"


def _size_fix(what: str) -> str:
    if what == CONFIG_NAME:
        return "a flowrun.yaml holds settings only; move data out of it"
    return "send less data, or raise FLOWRUN_MAX_DATA_MB"


def load_yaml(text: str | bytes, source: str) -> Any:
    """Parse YAML the one way flowrun reads it: safe types, no aliases, bounded nesting.

    An anchor with aliases (``&a`` ... ``*a``) is refused outright: aliases are how a
    few hundred bytes expand to billions of nodes ("billion laughs"), and data and
    settings never need them. Nesting deeper than Python's recursion can follow is
    refused too.

    Raises:
        ProjectError: the text is not valid YAML or uses aliases; the message names
            ``source`` and the line.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass, see _loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProjectError(f"{where}: invalid YAML ({problem}); fix the file") from None
    except RecursionError:
        raise ProjectError(f"{source}: the YAML is nested too deeply; flatten it") from None
    except ValueError:  # an integer of more digits than Python converts
        raise ProjectError(f"{source}: a number has too many digits to read; write it as quoted text") from None


@functools.cache
def _loader() -> Any:
    """A ``yaml.SafeLoader`` that refuses aliases (built on first use: yaml is imported lazily)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"the alias *{event.anchor} repeats an anchor; aliases are not allowed, write the value out",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

    return NoAliasLoader


#: A name that is a URL: ``scheme://...``, or ``file:``/``http:``/``https:``/``ftp:``/``data:`` without slashes.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|(?:file|https?|ftp|data):", re.IGNORECASE)


class PathRefused(ProjectError):
    """A file name from untrusted input (a diagram, a form, a setting) that leads outside its folder.

    Attributes:
        name: the name as given.
        reason: why it is refused, a phrase that follows the name ("is an absolute path").
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"'{name}' {reason}")
        self.name = name
        self.reason = reason


def inside(folder: Path, name: str, within: Path | None = None, what: str = "its folder") -> Path:
    """The file ``name`` names in ``folder``, resolved, when it stays inside ``within``.

    ``name`` is untrusted: a form key of a diagram, a folder of ``flowrun.yaml``. It is
    joined to ``folder`` and resolved, following every symbolic link on the way, and the
    result must lie inside ``within`` (default: ``folder``), resolved too; ``what`` names
    that place in the reason. URLs, absolute paths, control characters, ``..`` that climbs
    out and links that lead out (dangling ones too) are refused before anything is opened.
    Open the returned path, not the joined one, so the file checked is the file read.

    Raises:
        PathRefused: the name leads outside ``within``; ``reason`` says how.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathRefused(name, "holds a control character")
    if _URL.match(name):
        raise PathRefused(name, "is a URL (flowrun fetches nothing)")
    if Path(name).is_absolute():
        raise PathRefused(name, "is an absolute path")
    bound = within or folder
    joined = folder / name
    try:
        target = joined.resolve()
    except (OSError, RuntimeError):  # a loop of symbolic links (RuntimeError before Python 3.13)
        raise PathRefused(name, "is a loop of symbolic links") from None
    if target.is_relative_to(bound.resolve()):
        return target
    if not _lexical(joined).is_relative_to(_lexical(bound)):
        raise PathRefused(name, f"climbs out of {what} with '..'")
    raise PathRefused(name, f"leads out of {what} through a symbolic link")


def _lexical(path: Path) -> Path:
    """``path`` made absolute with ``..`` removed from the text alone (no link followed)."""
    return Path(os.path.normpath(path.absolute()))


#: The layers of a service blueprint a lane can belong to (the same as
#: :data:`flowrun.analysis.blueprint.LANE_CLASSES`, which sits above this module).
LANE_LAYERS = ("customer", "frontstage", "backstage", "support")


@dataclass(frozen=True)
class FamilyPilot:
    """One family's entry under ``families:``: what its pilot is judged on.

    Attributes:
        primary: the primary KPI's name (checked against the KPIs by compare), None when not set.
        resolution: milestone task ids (BPMN ids); the diagrams are checked by the app, not here.
        sla_seconds: the service level on resolution time, in seconds; None when not set.
    """

    primary: str | None = None
    resolution: tuple[str, ...] = ()
    sla_seconds: float | None = None


@dataclass(frozen=True)
class Settings:
    """Everything ``flowrun.yaml`` says, with paths resolved.

    Attributes:
        root: the project folder.
        processes_dir: where BPMN and DMN files live.
        forms_dir: where JSON Schema forms live.
        database_url: SQLAlchemy URL; ``FLOWRUN_DATABASE_URL`` overrides the file.
        families: family -> variant -> BPMN path relative to ``root``.
        services: service topic -> ``module:function``, importable from ``root``.
        service_policies: service topic -> retries, backoff and whether only workers run it.
        customer_facing_lanes: lanes whose tasks are customer touchpoints.
        kpis: KPI name -> ``{"field": ..., "kind": ...}``.
        lanes: lane name as written -> its service-blueprint layer (one of :data:`LANE_LAYERS`).
        hourly_cost: lane name as written -> cost of one person-hour in that lane (>= 0).
        currency: the unit of ``hourly_cost``, "" when none is set.
        pilots: family -> what its pilot measures against (``families:`` in flowrun.yaml).
        operators: user name -> the groups they belong to (``operators:``); who may take a task
            offered to a group (``camunda:candidateGroups``). Empty: no groups are known.
        keys: family -> the pattern of its cases' business keys (``keys:``), e.g. ``C-{n:04d}``.
        inbox_columns: case data fields the inbox shows (``inbox: {columns: [...]}``).
    """

    root: Path
    processes_dir: Path
    forms_dir: Path
    database_url: str
    families: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    service_policies: dict[str, ServicePolicy] = field(default_factory=dict)
    customer_facing_lanes: tuple[str, ...] = ()
    kpis: dict[str, dict[str, Any]] = field(default_factory=dict)
    lanes: dict[str, str] = field(default_factory=dict)
    hourly_cost: dict[str, float] = field(default_factory=dict)
    currency: str = ""
    pilots: dict[str, FamilyPilot] = field(default_factory=dict)
    operators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    inbox_columns: tuple[str, ...] = ()

    def rel(self, path: Path) -> str:
        """``path`` relative to the project folder when inside it (POSIX separators)."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)


def find_project(start: Path | None = None, explicit: Path | None = None) -> Settings:
    """Find and read the project's ``flowrun.yaml``.

    Args:
        start: where to start looking upwards (default: the current folder).
        explicit: a project folder (or its ``flowrun.yaml``) given by the user.

    Raises:
        ProjectError: no project is found, or its ``flowrun.yaml`` is invalid.
    """
    if explicit is not None:
        path = explicit / CONFIG_NAME if explicit.is_dir() else explicit
        if not path.is_file():
            raise ProjectError(f"no {CONFIG_NAME} in {explicit}; create a project there with 'flowrun init {explicit}'")
        return load_settings(path)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return load_settings(candidate)
    raise ProjectError(
        f"no {CONFIG_NAME} found in {here} or any folder above it; run 'flowrun init' to create "
        "a project here, or pass --project DIR"
    )


def load_settings(path: Path) -> Settings:
    """Read one ``flowrun.yaml``; see :func:`find_project`."""
    try:
        raw = load_yaml(read_limited(path, MAX_CONFIG_BYTES, CONFIG_NAME), str(path)) or {}
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise ProjectError(f"{path}: expected a mapping of settings at the top level")
    root = path.parent.resolve()
    processes_dir = _folder(raw, "processes_dir", "processes", path)
    forms_dir = _folder(raw, "forms_dir", "forms", path)
    url = os.environ.get("FLOWRUN_DATABASE_URL") or raw.get("database")
    url = _database_url(url, root, path)
    families = _families(raw.get("processes") or {}, path)
    services, policies = _services(raw.get("services") or {}, path)
    lanes = raw.get("customer_facing_lanes") or []
    if not isinstance(lanes, list) or not all(isinstance(x, str) for x in lanes):
        raise ProjectError(
            f"{path}: 'customer_facing_lanes' must be a list of lane names, e.g. [Customer]; "
            "or classify every lane under 'lanes:' (Customer: customer)"
        )
    kpis = raw.get("kpis") or {}
    if not isinstance(kpis, dict):
        raise ProjectError(f"{path}: 'kpis' must map KPI names to {{field: ..., kind: ...}}")
    return Settings(
        lanes=_lane_layers(raw.get("lanes"), path),
        hourly_cost=_hourly_cost(raw.get("hourly_cost"), path),
        currency=_currency(raw.get("currency"), path),
        pilots=_pilots(raw.get("families"), path),
        operators=_operators(raw.get("operators"), path),
        keys=_key_patterns(raw.get("keys"), path),
        inbox_columns=_inbox_columns(raw.get("inbox"), path),
        root=root,
        processes_dir=processes_dir,
        forms_dir=forms_dir,
        database_url=url,
        families=families,
        services=services,
        service_policies=policies,
        customer_facing_lanes=tuple(str(x) for x in lanes),
        kpis={str(k): dict(v) for k, v in kpis.items()},
    )


def _folder(raw: dict[str, Any], key: str, default: str, path: Path) -> Path:
    """A folder ``flowrun.yaml`` names, which must lie inside the project (it says where diagrams and forms are)."""
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ProjectError(f"{path}: '{key}' must be a folder name")
    root = path.parent.resolve()
    try:
        inside(root, value, what="the project")
    except PathRefused as exc:
        raise ProjectError(
            f"{path}: {key} {exc}; the folders of a project lie inside it: name a folder of {root}"
        ) from None
    return root / value


def _database_url(url: Any, root: Path, path: Path) -> str:
    if url is None:
        return f"sqlite:///{(root / '.flowrun' / 'flowrun.db').as_posix()}"
    if not isinstance(url, str):
        raise ProjectError(f"{path}: 'database' must be a database URL such as sqlite:///.flowrun/flowrun.db")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url[len("sqlite:///") :]
        if rest and rest != ":memory:" and not Path(rest).is_absolute():
            return f"sqlite:///{(root / rest).as_posix()}"
    return url


def _services(raw: Any, path: Path) -> tuple[dict[str, str], dict[str, ServicePolicy]]:
    """``topic: module:function`` or ``topic: {handler: module:function, retries: 3, backoff: 10, async: true}``."""
    usage = (
        f"{path}: 'services' maps each topic to 'module:function' or to "
        "{handler: module:function, retries: N, backoff: SECONDS, async: true|false}"
    )
    if not isinstance(raw, dict):
        raise ProjectError(usage)
    targets: dict[str, str] = {}
    policies: dict[str, ServicePolicy] = {}
    for topic, value in raw.items():
        if isinstance(value, str):
            value = {"handler": value}
        if not isinstance(value, dict) or not isinstance(value.get("handler"), str) or ":" not in value["handler"]:
            raise ProjectError(f"{usage}; '{topic}' is not")
        unknown = set(value) - {"handler", "retries", "backoff", "async"}
        if unknown:
            raise ProjectError(f"{path}: service '{topic}' has unknown settings {sorted(unknown)}; {usage}")
        try:
            policy = ServicePolicy(
                retries=int(value.get("retries", 0)),
                backoff_s=float(value.get("backoff", 10)),
                run_async=bool(value.get("async", False)),
            )
        except (TypeError, ValueError):
            raise ProjectError(f"{path}: service '{topic}': retries must be a whole number, backoff seconds") from None
        if policy.retries < 0 or policy.backoff_s < 0:
            raise ProjectError(f"{path}: service '{topic}': retries and backoff cannot be negative")
        targets[str(topic)] = value["handler"]
        policies[str(topic)] = policy
    return targets, policies


def _families(raw: Any, path: Path) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise ProjectError(f"{path}: 'processes' must map each family to its variants and files")
    out: dict[str, dict[str, str]] = {}
    for family, variants in raw.items():
        if isinstance(variants, str):
            variants = {"default": variants}
        if not isinstance(variants, dict) or not all(isinstance(v, str) for v in variants.values()):
            raise ProjectError(
                f"{path}: process family '{family}' must map variant names to BPMN files, "
                f"e.g. {family}: {{baseline: processes/{family}_baseline.bpmn}}"
            )
        for variant, file in variants.items():
            try:
                inside(path.parent.resolve(), file, what="the project")
            except PathRefused as exc:
                raise ProjectError(
                    f"{path}: process family '{family}', variant '{variant}': {exc}; processes are looked up "
                    "inside the project: move the file into processes/ and name it from there"
                ) from None
        out[str(family)] = {str(k): v for k, v in variants.items()}
    return out


def _mapping(raw: Any, key: str, usage: str, path: Path) -> dict[Any, Any]:
    """The mapping under ``key`` ({} when absent); anything else is refused with ``usage``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProjectError(f"{path}: '{key}' must {usage}")
    return raw


def _lane_layers(raw: Any, path: Path) -> dict[str, str]:
    """``lanes: {LANE: customer|frontstage|backstage|support}``; layers compare without case."""
    usage = f"map each lane name to its layer, one of {', '.join(LANE_LAYERS)}, e.g. lanes: {{Call Centre: frontstage}}"
    out: dict[str, str] = {}
    for lane, layer in _mapping(raw, "lanes", usage, path).items():
        text = layer.strip().casefold() if isinstance(layer, str) else None
        if text not in LANE_LAYERS:
            raise ProjectError(f"{path}: lanes: '{lane}' has the layer {layer!r}; {usage}")
        out[str(lane)] = text
    return out


def _operators(raw: Any, path: Path) -> dict[str, tuple[str, ...]]:
    """``operators: {USER: {groups: [GROUP, ...]}}``: each operator's groups (an empty mapping: none)."""
    usage = "map each operator's user name to their groups, e.g. operators: {alice: {groups: [call-centre]}}"
    out: dict[str, tuple[str, ...]] = {}
    for user, entry in _mapping(raw, "operators", usage, path).items():
        if not isinstance(user, str) or not user.strip():
            raise ProjectError(f"{path}: operators: {user!r} is not a user name; {usage}")
        entry = {} if entry is None else entry
        if not isinstance(entry, dict) or set(entry) - {"groups"}:
            raise ProjectError(f"{path}: operators: '{user}' must be a mapping with only 'groups:'; {usage}")
        groups = entry.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) and g.strip() for g in groups):
            raise ProjectError(f"{path}: operators: '{user}': 'groups' must be a list of group names; {usage}")
        out[user.strip()] = tuple(dict.fromkeys(g.strip() for g in groups))
    return out


def _hourly_cost(raw: Any, path: Path) -> dict[str, float]:
    """``hourly_cost: {LANE: NUMBER}``: the cost of one person-hour, a finite number >= 0."""
    usage = "map each lane name to the cost of one person-hour, a number >= 0, e.g. hourly_cost: {Call Centre: 32}"
    out: dict[str, float] = {}
    for lane, cost in _mapping(raw, "hourly_cost", usage, path).items():
        ok = isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < float("inf")
        if not ok:
            raise ProjectError(f"{path}: hourly_cost: '{lane}' is {cost!r}; {usage}")
        out[str(lane)] = float(cost)
    return out


def _key_patterns(raw: Any, path: Path) -> dict[str, str]:
    """``keys: {FAMILY: PATTERN}``: ``{n}`` numbers a family's cases, ``{FIELD}`` takes a start data field."""
    usage = (
        'map each process family to a key pattern, e.g. keys: {complaint: "C-{n:04d}"} or {complaint: "{customer_ref}"}'
    )
    out: dict[str, str] = {}
    for family, pattern in _mapping(raw, "keys", usage, path).items():
        where = f"{path}: keys: {family}"
        if not isinstance(pattern, str) or not pattern.strip():
            raise ProjectError(f"{where} is {pattern!r}; {usage}")
        try:
            names = key_fields(pattern)
            if "n" in names:
                pattern.format_map({**dict.fromkeys(names, ""), "n": 1})
        except ValueError as exc:
            raise ProjectError(f"{where}: the pattern {pattern!r} is not valid ({exc}); {usage}") from None
        if not names:
            raise ProjectError(
                f"{where}: the pattern {pattern!r} names no field, so every case would get one key; {usage}"
            )
        out[str(family)] = pattern.strip()
    return out


def key_fields(pattern: str) -> list[str]:
    """The fields a key pattern names (``n`` for the case number).

    Raises:
        ValueError: the pattern is not a format string of plain field names.
    """
    import string

    names: list[str] = []
    for _, name, _, conversion in string.Formatter().parse(pattern):
        if name is None:
            continue
        if not name.isidentifier() or conversion:
            raise ValueError(f"'{{{name}}}' is not a field name")
        names.append(name)
    return names


def _inbox_columns(raw: Any, path: Path) -> tuple[str, ...]:
    """``inbox: {columns: [FIELD, ...]}``: the case data fields the inbox shows."""
    usage = "e.g. inbox: {columns: [customer_name, amount_disputed]}"
    entry = _mapping(raw, "inbox", f"be a mapping with 'columns', {usage}", path)
    unknown = sorted(str(k) for k in set(entry) - {"columns"})
    if unknown:
        raise ProjectError(f"{path}: inbox: unknown settings {unknown}; the setting is columns, {usage}")
    columns = entry.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) and c.strip() for c in columns):
        raise ProjectError(f"{path}: inbox: 'columns' must list case data fields, {usage}")
    return tuple(dict.fromkeys(c.strip() for c in columns))


def _currency(raw: Any, path: Path) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 20:
        raise ProjectError(f"{path}: 'currency' must be a short text such as EUR, the unit of hourly_cost")
    return raw.strip()


def _pilots(raw: Any, path: Path) -> dict[str, FamilyPilot]:
    """``families: {FAMILY: {primary: KPI, resolution: [TASK_ID, ...], sla: DURATION}}``.

    A family need not be under ``processes:`` (an imported log's family has no diagrams);
    ``flowrun validate`` warns about one that is not.
    """
    usage = "e.g. families: {complaint: {primary: cycle_time, resolution: [Task_ReplyToCustomer], sla: 48h}}"
    out: dict[str, FamilyPilot] = {}
    entries = _mapping(raw, "families", f"map each process family to its pilot settings, {usage}", path)
    for family, entry in entries.items():
        where = f"{path}: families: {family}"
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise ProjectError(f"{where} must be a mapping of primary, resolution and sla, {usage}")
        unknown = sorted(str(k) for k in set(entry) - {"primary", "resolution", "sla"})
        if unknown:
            raise ProjectError(f"{where}: unknown settings {unknown}; the settings are primary, resolution, sla")
        primary = entry.get("primary")
        if primary is not None and (not isinstance(primary, str) or not primary.strip()):
            raise ProjectError(f"{where}: 'primary' must name one KPI, e.g. primary: cycle_time")
        resolution = entry.get("resolution") or []
        if isinstance(resolution, str):
            resolution = [resolution]
        if not isinstance(resolution, list) or not all(isinstance(t, str) and t.strip() for t in resolution):
            raise ProjectError(
                f"{where}: 'resolution' must list the milestone tasks' ids, e.g. resolution: [Task_ReplyToCustomer]"
            )
        sla = entry.get("sla")
        out[str(family)] = FamilyPilot(
            primary=primary.strip() if primary else None,
            resolution=tuple(dict.fromkeys(t.strip() for t in resolution)),
            sla_seconds=None if sla is None else _duration(sla, f"{where}: sla"),
        )
    return out


#: ``48h``, ``2d``, ``90m``, ``1.5 h``, ``30s``, ``1w``: a number and one unit.
_SHORT_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)", re.IGNORECASE)
#: ISO 8601 durations of weeks, days, hours, minutes and seconds (``PT48H``, ``P2DT4H``, ``P1W``).
_ISO_DURATION = re.compile(
    r"P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _duration(value: Any, where: str) -> float:
    """A positive duration in seconds: a number of seconds, ``48h``/``2d``/``90m``, or ISO 8601 ``PT48H``.

    Months and years are refused: their length varies, and a service level is a fixed time.

    Raises:
        ProjectError: anything else; the message names ``where`` and the forms accepted.
    """
    fix = "write a duration such as 48h, 2d, 90m, PT48H or a number of seconds"
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        short = _SHORT_DURATION.fullmatch(text)
        iso = _ISO_DURATION.fullmatch(text)
        if short:
            seconds = float(short.group(1)) * _UNIT_SECONDS[short.group(2).lower()]
        elif iso and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
            parts = [float(g) if g else 0.0 for g in iso.groups()]
            seconds = sum(p * u for p, u in zip(parts, (604800.0, 86400.0, 3600.0, 60.0, 1.0), strict=True))
    if seconds is None or not 0 < seconds < float("inf"):
        raise ProjectError(f"{where} is {value!r}; {fix} (more than 0)")
    return seconds
