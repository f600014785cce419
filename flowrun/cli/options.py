"""Options shared by several commands and the parsing of ``--data``/``--data-file``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from flowrun.errors import FlowrunError, NotFoundError

F = TypeVar("F", bound=Callable[..., Any])


#: The largest id the database holds (a signed 64-bit integer, on SQLite and PostgreSQL alike).
MAX_ID = 2**63 - 1


class NumberRef(click.ParamType):  # type: ignore[type-arg]
    """A task ref or incident number: ASCII digits (a leading ``#`` allowed) from 1 to :data:`MAX_ID`.

    Checked when the command line is parsed, so a number no database can hold says
    there is no such task or incident instead of failing in the database driver. The
    refusal is a :class:`~flowrun.errors.NotFoundError` (exit 1, as for a number that
    fits but names nothing). The value stays text: the use cases take refs as typed.
    """

    name = "number"

    def __init__(self, what: str, none: str, listing: str, complete: str | None = None) -> None:
        self.what = what  # "a task ref"
        self.none = none  # "no task with ref"
        self.listing = listing
        self.complete = complete  # the name of the flowrun.cli.completion callback offering the numbers

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        """The numbers there are, from :mod:`flowrun.cli.completion` (imported only when completing)."""
        if self.complete is None:
            return []
        from flowrun.cli import completion

        found: list[Any] = getattr(completion, self.complete)(ctx, param, incomplete)
        return found

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lstrip("#")
        if not (text.isascii() and text.isdigit()):
            raise NotFoundError(f"'{value}' is not {self.what}; see '{self.listing}' for the numbers there are")
        if len(text) > 19 or not 0 < int(text) <= MAX_ID:
            shown = text if len(text) <= 30 else text[:20] + "..."
            raise NotFoundError(f"{self.none} {shown}; see '{self.listing}' for the ones there are")
        return str(value)


TASK_REF = NumberRef("a task ref", "no task with ref", "flowrun tasks", complete="task_refs")
INCIDENT = NumberRef("an incident number", "no incident", "flowrun incidents")


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def data_options(fn: F) -> F:
    fn = click.option(
        "--data-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A JSON or YAML file of field values (at most $FLOWRUN_MAX_DATA_MB, default 16 MB; no YAML aliases).",
    )(fn)
    return click.option(
        "--data",
        "-d",
        multiple=True,
        metavar="KEY=VALUE",
        help="A field value; repeat for several fields.",
    )(fn)


def parse_pairs(pairs: tuple[str, ...], option: str = "--data") -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a usage error of ``option``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint=option)
        out[key.strip()] = value
    return out


def read_data_file(path: Path | None) -> dict[str, Any]:
    """Values from a JSON or YAML file (a mapping at the top level), held to the data limits.

    The file is refused above ``FLOWRUN_MAX_DATA_MB`` before it is read whole, YAML
    aliases are refused (see :func:`flowrun.config.load_yaml`), and the values are held
    to :func:`flowrun.forms.data.check_limits` (nesting depth, digits).
    """
    if path is None:
        return {}
    from flowrun.config import load_yaml, max_data_bytes, read_limited
    from flowrun.forms.data import check_limits, parse_json

    hint = "--data-file"
    try:
        raw = read_limited(path, max_data_bytes(), "the data file")
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.BadParameter(
            f"{path} is not UTF-8 text; save it as a UTF-8 JSON or YAML file", param_hint=hint
        ) from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=hint) from None
    except FlowrunError as exc:  # too large
        raise click.BadParameter(exc.message, param_hint=hint) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            value = load_yaml(text, str(path))
            check_limits(value, str(path))
        else:
            value = parse_json(text, str(path))
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file (a .yaml or .yml file is read as YAML)",
            param_hint=hint,
        ) from None
    except FlowrunError as exc:
        raise click.BadParameter(exc.message, param_hint=hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{path} must hold an object of field values", param_hint=hint)
    return value
