"""Which waiting cases a message is for: by id, by business key, or by their data (``flowrun send``).

A message goes to exactly one case. The sender names it (``--instance``, ``--key``)
or describes it by its process variables (``--correlate VAR=VALUE``, Camunda's
correlation by variables); a message that still fits several waiting cases is
refused with the list, unless the sender asks for all of them. A signal is a
broadcast: it reaches every case the sender's filters leave.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowrun.app.views import resolve_instance
from flowrun.errors import AmbiguousIdError, AmbiguousTargetError, NotFoundError
from flowrun.models import CaseRef

if TYPE_CHECKING:
    from flowrun.store import Tx

#: How many cases an error message lists before it says how many more there are.
_LISTED = 20


@dataclass(frozen=True)
class Target:
    """How the sender picked the case(s): each None or empty when not given.

    Attributes:
        instance: an instance id or prefix.
        key: a business key (``instances.business_key``), in any family.
        correlate: process variables the case must have, each value as typed
            (``"1042"`` matches the number 1042, ``"true"`` the boolean).
        every: deliver to every case that matches instead of refusing several.
    """

    instance: str | None = None
    key: str | None = None
    correlate: Mapping[str, str] | None = None
    every: bool = False

    @property
    def named(self) -> bool:
        """Whether the sender said which case(s) they mean."""
        return bool(self.instance or self.key or self.correlate)


def pick_cases(tx: Tx, kind: str, name: str, target: Target) -> list[CaseRef]:
    """The waiting cases the message or signal ``name`` goes to.

    Returns an empty list when nothing waits and the sender named no case (a message
    may then start a process instead).

    Raises:
        NotFoundError: the named instance or key does not exist, or no waiting case
            fits; the message lists the cases that wait for ``name``.
        AmbiguousTargetError: a message fits several cases and ``every`` is not set.
    """
    waiting = tx.cases_waiting_for(f"{kind}:{name}")
    found = waiting
    wanted: list[str] = []
    if target.instance:
        iid = resolve_instance(tx, target.instance)
        found = [c for c in found if c.id == iid]
        wanted.append(f"instance {target.instance}")
    if target.key:
        ids = {iid for iid, _ in tx.instances_by_key(target.key)}
        if not ids:
            raise NotFoundError(f"no case has the key '{target.key}'; see 'flowrun instances' for the cases")
        found = [c for c in found if c.id in ids]
        wanted.append(f"key '{target.key}'")
    for var, text in (target.correlate or {}).items():
        found = [c for c in found if matches(c.data, var, text)]
        wanted.append(f"{var}={text}")
    if target.named and not found:
        raise NotFoundError(f"no case waiting for the {kind} '{name}' matches {', '.join(wanted)}; {_waiting(waiting)}")
    if kind == "message" and len(found) > 1 and not target.every:
        raise AmbiguousTargetError(
            f"the message '{name}' fits {len(found)} waiting cases; name one with --instance ID, --key KEY or "
            f"--correlate VAR=VALUE, or deliver it to all with --all:\n{listing(found)}"
        )
    return found


def instance_for_key(tx: Tx, key: str) -> str:
    """The id of the one case with business key ``key``.

    Raises:
        NotFoundError / AmbiguousIdError: no case has it / cases of several families do.
    """
    found = tx.instances_by_key(key)
    if not found:
        raise NotFoundError(f"no case has the key '{key}'; see 'flowrun instances' for the cases")
    if len(found) > 1:
        raise AmbiguousIdError("case key", key, [f"{iid[:8]} ({family})" for iid, family in found])
    return found[0][0]


def matches(data: Mapping[str, Any], var: str, text: str) -> bool:
    """Whether process variable ``var`` (``a.b`` reaches into an object) equals ``text`` as typed.

    A number matches the same number written any way (``"1042"``, ``"1042.0"``), a
    boolean ``true``/``false``, a null value ``null``; text matches exactly. A case without ``var`` never matches.
    """
    value: Any = data
    for part in var.split(".") if var not in data else [var]:
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    text = text.strip()
    if value is None:
        return text.lower() in ("null", "none", "")
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            number = float(text)
        except ValueError:
            return False
        return math.isfinite(number) and number == value
    if isinstance(value, str):
        return value == text
    return json.dumps(value, sort_keys=True) == _json_text(text)


def _json_text(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return None


def listing(cases: Sequence[CaseRef]) -> str:
    """The cases one per line: short id, business key, family:variant."""
    lines = [f"  {c.id[:8]}  {c.key or '-'}  {c.family}:{c.variant}" for c in cases[:_LISTED]]
    if len(cases) > _LISTED:
        lines.append(f"  (and {len(cases) - _LISTED} more)")
    return "\n".join(lines)


def _waiting(cases: Sequence[CaseRef]) -> str:
    if not cases:
        return "no case waits for it now"
    return f"the cases waiting for it:\n{listing(cases)}"
