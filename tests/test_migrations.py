"""The schema is managed with Alembic: an older database is refused until `flowrun db upgrade` migrates it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

import flowrun.store.sql as store_sql
from flowrun import app
from flowrun.store.schema import HEAD_REVISION
from tests.helpers import RECORD, cli_json, db_path, query, work


def _migrate_to(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_sql.__file__).parent / "migrations"))
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_old_database_is_refused_then_upgraded_with_its_cases(cli, project, project_dir):
    """A database at the first revision keeps its cases through `flowrun db upgrade`."""
    path = db_path(project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    _migrate_to(f"sqlite:///{path}", "0001_initial")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO models VALUES ('abc', 'p', 'processes/x.bpmn', '{}', '2026-03-02 08:00:00')")

    refused = cli(project_dir, "tasks")
    assert refused.exit_code == 1
    assert "flowrun db upgrade" in refused.stderr
    assert "0001_initial" in refused.stderr

    upgraded = cli(project_dir, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert HEAD_REVISION in upgraded.stdout
    assert query(project_dir, "SELECT sha256 FROM models") == [("abc",)]

    iid = app.start(project, "complaint:baseline").instance
    work(project, iid, "Record complaint", RECORD)
    assert [i["name"] for i in cli_json(cli(project_dir, "tasks", "--json"))] == ["Analyse needs"]


def test_upgrade_of_a_current_database_changes_nothing(cli, project, project_dir):
    """Running `db upgrade` twice is harmless (on SQLite and PostgreSQL alike)."""
    iid = app.start(project, "complaint:baseline").instance
    for _ in range(2):
        result = cli(project_dir, "db", "upgrade")
        assert result.exit_code == 0, result.stderr
    assert app.show(project, iid).status == "running"


def test_the_known_revisions_are_the_migration_files():
    """``schema.REVISIONS`` (checked on open without Alembic) lists every migration, in order."""
    from flowrun.store.schema import REVISIONS

    folder = Path(store_sql.__file__).parent / "migrations" / "versions"
    assert tuple(sorted(p.stem for p in folder.glob("0*.py"))) == REVISIONS


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_an_upgraded_database_remembers_the_flowrun_that_migrated_it(cli, project_dir):
    """A database from before ``flowrun_meta`` gets the table and this flowrun's version on upgrade."""
    from flowrun import __version__

    path = db_path(project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    _migrate_to(f"sqlite:///{path}", "0003_jobs")
    assert cli(project_dir, "db", "upgrade").exit_code == 0
    assert query(project_dir, "SELECT key, value FROM flowrun_meta") == [("migrated_by", __version__)]


@pytest.mark.sqlite
def test_sqlite_times_move_from_text_to_microseconds_and_back_exactly(cli, project, project_dir):
    """0005_epoch_times: a database whose times are SQLAlchemy's ISO text keeps every time to the microsecond.

    The case's history (ready, started, completed) reads the same after a downgrade to text and
    the upgrade back; the stored values are integers again.
    """
    iid = app.start(project, "complaint:baseline").instance
    work(project, iid, "Record complaint", RECORD)
    before = cli_json(cli(project_dir, "history", iid, "--json"))
    stored = query(project_dir, "SELECT ready_at, typeof(ready_at) FROM tasks ORDER BY id")
    assert {kind for _, kind in stored} == {"integer"}

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_sql.__file__).parent / "migrations"))
    engine = create_engine(f"sqlite:///{db_path(project_dir)}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004_meta")
    engine.dispose()
    texts = query(project_dir, "SELECT ready_at, typeof(ready_at) FROM tasks ORDER BY id")
    assert {kind for _, kind in texts} == {"text"}
    assert texts[0][0][:19] == before[0]["ready_at"][:19].replace("T", " ")

    assert cli(project_dir, "db", "upgrade").exit_code == 0
    assert query(project_dir, "SELECT ready_at, typeof(ready_at) FROM tasks ORDER BY id") == stored
    after = cli_json(cli(project_dir, "history", iid, "--json"))
    # (the downgrade past 0006_operators drops the due dates; the times are what 0005 converts)
    times = ("ready_at", "started_at", "completed_at")
    assert [[row[k] for k in times] for row in after] == [[row[k] for k in times] for row in before]
