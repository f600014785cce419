"""Options shared by several commands and the parsing of ``--data``/``--data-file``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def data_options(fn: F) -> F:
    fn = click.option(
        "--data-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A JSON or YAML file of field values.",
    )(fn)
    return click.option(
        "--data",
        "-d",
        multiple=True,
        metavar="KEY=VALUE",
        help="A field value; repeat for several fields.",
    )(fn)


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--data")
        out[key.strip()] = value
    return out


def read_data_file(path: Path | None) -> dict[str, Any]:
    """Values from a JSON or YAML file (a mapping at the top level)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter(
            f"{path} is not UTF-8 text; save it as a UTF-8 JSON or YAML file", param_hint="--data-file"
        ) from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--data-file") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            value = yaml.safe_load(text)
        else:
            value = json.loads(text)
    except (ValueError, Exception) as exc:  # noqa: BLE001 - yaml and json errors alike
        raise click.BadParameter(f"{path} is not valid JSON or YAML: {exc}", param_hint="--data-file") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{path} must hold an object of field values", param_hint="--data-file")
    return value
