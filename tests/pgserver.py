"""A throwaway PostgreSQL server for the tests, started from the machine's PostgreSQL binaries.

``PgServer.start()`` runs ``initdb`` and ``pg_ctl`` in a temporary folder (as the
``postgres`` user when the tests run as root, since PostgreSQL refuses root),
listening on a Unix socket only. Each test gets a database of its own, cloned
from a template that already has flowrun's schema, so a test costs one
``CREATE DATABASE``. Nothing here is mocked: it is the real server.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)")


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PgServer:
    """One PostgreSQL server on a Unix socket in a temporary folder."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="flowrun-pg-"))
        self.port = 5432 + (os.getpid() % 1000) + 20000
        self._names = itertools.count(1)
        self.template: str | None = None

    def start(self) -> PgServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        run = _as_postgres()
        subprocess.run(
            [*run, _bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )
        options = " ".join(
            [
                f"-k {self.dir} -p {self.port} -c listen_addresses=''",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            ]
        )
        subprocess.run(
            [*run, _bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True):
                    return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def dsn(self, database: str) -> str:
        return f"host={self.dir} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL flowrun takes for ``database``."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.dir}&port={self.port}"

    def create_database(self) -> str:
        """A new database (cloned from the template when there is one); returns its URL."""
        return self.url(self._create())

    def _create(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        template = f" TEMPLATE {self.template}" if self.template else ""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{template}")
        return name

    def make_template(self) -> None:
        """Create a database with flowrun's schema that later databases are cloned from."""
        from flowrun.store import SqlStore

        name = self._create()
        SqlStore(self.url(name)).close()
        self.template = name

    def stop(self) -> None:
        data = self.dir / "data"
        if data.exists():
            subprocess.run(
                [*_as_postgres(), _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
            )
        shutil.rmtree(self.dir, ignore_errors=True)
