"""Shared fixtures: a fresh example project per test, a manual clock, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowrun import app
from flowrun.clock import ManualClock
from flowrun.config import find_project
from tests.helpers import T0, db_path, local_zone
from tests.pgserver import PgServer


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep the developer's FLOWRUN_* settings and project modules out of every test."""
    for name in ("FLOWRUN_NOW", "FLOWRUN_PROJECT", "FLOWRUN_DATABASE_URL", "FLOWRUN_USER", "FLOWRUN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if name == "complaint_services" or module_file.startswith(str(tmp_path)):
            del sys.modules[name]


#: ``FLOWRUN_TEST_DB=postgres`` runs every test's project on a real PostgreSQL server.
ON_POSTGRES = os.environ.get("FLOWRUN_TEST_DB", "sqlite") == "postgres"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session, with flowrun's schema in a template database."""
    server = PgServer().start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database when running on PostgreSQL; None means the SQLite default."""
    if not ON_POSTGRES or request.node.get_closest_marker("sqlite"):
        return None
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database at the newest schema, migrated once per session for projects to copy.

    Running Alembic costs about 65 ms; a copy of an empty migrated file costs well under one.
    """
    from flowrun.store import SqlStore

    path = tmp_path_factory.mktemp("migrated") / "flowrun.db"
    SqlStore(f"sqlite:///{path}").close()  # close() checkpoints the WAL, so the one file is complete
    return path


@pytest.fixture
def project_dir(tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest) -> Path:
    """A fresh copy of the shipped example project (on its own database).

    On SQLite the project starts with a copy of :func:`migrated_sqlite` at ``.flowrun/flowrun.db``,
    unless the test is marked ``fresh_database`` (then no database file exists until flowrun makes one).
    """
    path = tmp_path / "proj"
    app.init_project(path)
    if database_url:
        with (path / "flowrun.yaml").open("a", encoding="utf-8") as f:
            f.write(f"database: {database_url}\n")
    elif not request.node.get_closest_marker("fresh_database"):
        target = db_path(path)
        target.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
    return path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def project(project_dir: Path, clock: ManualClock) -> Iterator[app.Project]:
    """The example project, with a manual clock starting at :data:`T0`."""
    proj = app.Project(settings=find_project(explicit=project_dir), clock=clock)
    yield proj
    proj.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


CliCall = Callable[..., Result]


@pytest.fixture
def cli(runner: CliRunner) -> CliCall:
    """``cli(project_dir, *args, now=None, input=None)`` runs ``flowrun --project DIR ARGS``."""
    from flowrun.cli.main import cli as root

    def invoke(project_dir: Path, *args: str, now: str | None = None, input: str | None = None) -> Result:
        env = {"FLOWRUN_NOW": now} if now is not None else {}
        return runner.invoke(root, ["--project", str(project_dir), *map(str, args)], env=env, input=input)

    return invoke


@pytest.fixture
def berlin_time() -> Iterator[None]:
    """The machine's time zone is Europe/Berlin (CET in winter) for this test, so local times can be asserted."""
    with local_zone("Europe/Berlin"):
        yield
