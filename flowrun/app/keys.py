"""Business keys: the name a case goes by (``C-1042``), unique within its process family.

A key is given at start (``flowrun start ... --key C-1042``) or made from the family's
pattern under ``keys:`` in ``flowrun.yaml``: ``{n}`` is the case's number in its family
(``C-{n:04d}`` -> ``C-0001``, ``C-0002``, ...), any other ``{FIELD}`` the value of that field
of the case's data at start (``{customer_ref}``). :func:`flowrun.app.views.resolve_instance`
accepts a key wherever an instance id is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowrun.config import key_fields
from flowrun.errors import ConflictError, DataError

if TYPE_CHECKING:
    from flowrun.store import Tx

#: The longest key the database holds (``instances.business_key`` is ``String(255)``).
MAX_KEY_LENGTH = 255


def check_key(key: str) -> str:
    """``key`` as given with ``--key``, stripped.

    Raises:
        DataError: the key is empty, too long, or holds a control character.
    """
    text = key.strip()
    if not text or len(text) > MAX_KEY_LENGTH or not text.isprintable():
        raise DataError(
            f"the key {key[:40]!r} is not a usable business key; give up to {MAX_KEY_LENGTH} printable "
            "characters, e.g. --key C-1042"
        )
    return text


def refuse_taken(tx: Tx, family: str, key: str) -> None:
    """Refuse ``key`` when a case of ``family`` already has it.

    Raises:
        ConflictError: naming the case that has the key.
    """
    taken = tx.instance_ids_with_key(key, family)
    if taken:
        raise ConflictError(
            f"the key {key} is already the key of {family} case {taken[0][:8]}; give another --key, "
            f"or work on that case with 'flowrun show {key}'"
        )


def generated_key(tx: Tx, family: str, pattern: str, data: Mapping[str, Any]) -> str:
    """The key ``pattern`` gives a new case of ``family`` with start ``data``: the first one not taken.

    Raises:
        DataError: the pattern names a field the data lacks (or the value makes no key).
    """
    names = key_fields(pattern)
    missing = [n for n in names if n != "n" and data.get(n) in (None, "")]
    if missing:
        raise DataError(
            f"the key pattern {pattern!r} of {family} (keys: in flowrun.yaml) needs the field "
            f"{', '.join(missing)}, which the start data lacks; give it with --data {missing[0]}=..., "
            "or give the key with --key"
        )
    values = {n: data.get(n) for n in names if n != "n"}
    number = tx.count_family(family) + 1
    for _ in range(1000):  # each taken number moves on by one; a pattern without {n} is tried once
        try:
            key = check_key(pattern.format_map({**values, "n": number}))
        except (ValueError, TypeError) as exc:
            raise DataError(f"the key pattern {pattern!r} of {family} does not fit the start data: {exc}") from None
        if not tx.instance_ids_with_key(key, family):
            return key
        if "n" not in names:
            refuse_taken(tx, family, key)
        number += 1
    raise ConflictError(f"no free key for {family} from {pattern!r} after 1000 tries; give one with --key")
