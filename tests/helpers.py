"""Helpers the tests share: example data, stepping tasks on a manual clock, reading the database."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from click.testing import Result

from flowrun import app
from flowrun.clock import ManualClock

#: When every test's clock starts (a Monday, 08:00 UTC).
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)

#: Data that completes each user task of the shipped example (by task name).
RECORD = {
    "customer_name": "Ann Smith",
    "category": "billing",
    "description": "Charged twice for March",
    "amount_disputed": 40,
}
ANALYSE_NO_SPECIALIST = {"severity": "low", "needs_specialist": False}
ANALYSE_SPECIALIST = {"severity": "high", "needs_specialist": True, "notes": "looks like a meter fault"}
SPECIALIST = {"finding": "double billing confirmed", "proposed_remedy": "refund"}
REPLY = {"reply_channel": "email", "message": "We refunded you."}
SURVEY = {"satisfaction": 4, "nps": 9, "resolved_first_contact": False, "comment": "ok"}


def intake(**overrides: Any) -> dict[str, Any]:
    """Data for the re-engineered 'Record and assess complaint' form."""
    data: dict[str, Any] = {
        "customer_name": "Ann Smith",
        "category": "billing",
        "description": "Charged twice for March",
        "amount_disputed": 40,
        "severity": "medium",
        "can_resolve_now": True,
    }
    data.update(overrides)
    return data


def draft(amount: float) -> dict[str, Any]:
    return {"remedy": "refund", "remedy_amount": amount, "summary": f"refund of {amount}"}


def cli_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def ready_ref(project: app.Project, instance: str, name: str) -> str:
    """The ref of the one ready task called ``name`` in ``instance``."""
    refs = [i.ref for i in app.inbox(project, instance) if i.name == name]
    assert len(refs) == 1, f"expected one ready '{name}', inbox has {app.inbox(project, instance)}"
    return str(refs[0])


def work(
    project: app.Project,
    instance: str,
    name: str,
    data: Mapping[str, Any],
    actor: str = "alice",
    wait: float = 300,
    touch: float = 420,
) -> app.StepResult:
    """Let task ``name`` wait ``wait`` s, claim it, work ``touch`` s on it, complete it."""
    ref = ready_ref(project, instance, name)
    clock = project.clock
    assert isinstance(clock, ManualClock)
    clock.advance(wait)
    app.claim(project, ref, actor)
    clock.advance(touch)
    return app.complete(project, ref, data, actor)


def db_path(project_dir: Path) -> Path:
    return project_dir / ".flowrun" / "flowrun.db"


def query(project_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the project's database: SQLite through plain sqlite3, PostgreSQL through psycopg.

    ``?`` placeholders work for both.
    """
    url = _database_url(project_dir)
    if url is None:
        conn = sqlite3.connect(db_path(project_dir))
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = f"host={parsed.query['host']} port={parsed.query['port']} user={parsed.username} dbname={parsed.database}"
    with psycopg.connect(dsn) as pg:
        rows = pg.execute(sql.replace("?", "%s"), params).fetchall()
    return [tuple(_sqlite_like(v) for v in row) for row in rows]


def _database_url(project_dir: Path) -> str | None:
    import yaml

    raw = yaml.safe_load((project_dir / "flowrun.yaml").read_text()) or {}
    url = raw.get("database")
    return url if isinstance(url, str) and url.startswith("postgresql") else None


def _sqlite_like(value: Any) -> Any:
    """PostgreSQL timestamps as SQLite stores them (naive UTC text), so assertions hold on both."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    return value


def flowrun_executable() -> Path:
    """The installed ``flowrun`` console script of this virtualenv."""
    import shutil

    found = shutil.which("flowrun", path=str(Path(sys.executable).parent))
    assert found, f"no flowrun console script next to {sys.executable}; pip install -e ."
    return Path(found)


def local_hm(iso_time: str) -> str:
    """The local clock time (HH:MM) of an ISO time, as messages for people show it."""
    from flowrun.clock import parse_time

    return parse_time(iso_time).astimezone().strftime("%H:%M")


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    """The machine's time zone is ``name`` (``TZ``) inside the block, so local times can be asserted."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
