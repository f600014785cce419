"""Opening the database: SQLAlchemy engines that keep their connections, for SQLite and PostgreSQL.

A process keeps a few connections open (a new one costs a PostgreSQL backend
fork, or on SQLite a new WAL). So this module also looks after what kept
connections need: a forked child drops the parent's connections instead of
sharing them, a PostgreSQL connection that sat idle is checked before use, and
every SQLite connection gets the pragmas flowrun relies on (WAL, busy timeout,
foreign keys) and a ``BEGIN IMMEDIATE`` for write transactions.
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool, QueuePool

#: How long an SQLite writer waits for the database before giving up.
BUSY_TIMEOUT_MS = 30_000

#: A pooled PostgreSQL connection idle longer than this is checked before use.
_PING_AFTER_IDLE_S = 10.0

#: Engines of this process, so that a forked child never shares their connections.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def make_engine(url: str, is_sqlite: bool, read_only_uri: str | None = None) -> Engine:
    """An engine that keeps a few connections open for the transactions of one process.

    A new PostgreSQL connection costs about 5 ms of server CPU (a backend is forked
    and authenticated) against 0.03 ms for a query on an open one, and a step is
    two or three transactions; on SQLite, closing the last connection checkpoints
    and deletes the WAL, which the next one creates again. So a process keeps its
    connections (one that sat idle is checked first, see :func:`_ping_when_idle`).

    Connections carry two execution options, read on SQLite when a transaction
    begins: ``flowrun_write`` (``BEGIN IMMEDIATE``) and ``flowrun_snapshot``
    (``BEGIN``; without it each statement runs on its own).

    ``read_only_uri`` (SQLite): open every connection with this ``file:`` URI
    (``mode=ro`` or ``immutable=1``, see :class:`flowrun.store.files.DbFile`);
    such connections leave the journal mode as it is.
    """
    if not is_sqlite:
        engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=8, pool_recycle=1800)
        _ping_when_idle(engine)
        _ENGINES.add(engine)
        return engine
    if sqlite_path(url) is None:  # in memory: one connection is the whole database
        poolclass: Any = NullPool
    else:
        poolclass = QueuePool
    connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000, "isolation_level": None, "check_same_thread": False}
    extra: dict[str, Any] = {"pool_size": 1, "max_overflow": 8} if poolclass is QueuePool else {}
    if read_only_uri is not None:
        uri = read_only_uri
        extra["creator"] = lambda: sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    engine = create_engine(url, poolclass=poolclass, connect_args=connect_args, **extra)
    _ENGINES.add(engine)
    _sqlite_setup(engine, read_only=read_only_uri is not None)
    return engine


def _sqlite_setup(engine: Engine, read_only: bool) -> None:
    """Pragmas on every new SQLite connection; the BEGIN each transaction asks for."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not read_only:  # a read-only connection cannot change the journal mode
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("flowrun_write", True):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif options.get("flowrun_snapshot", True):
            conn.exec_driver_sql("BEGIN")
        # else: statements run on their own (autocommit)


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection that sat idle before handing it out; replace it if the server dropped it.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip per
    transaction, which cost a third of the throughput with 16 operators on 2 cores
    (every round trip is two context switches). A connection in steady use is not
    pinged; one that sat idle (a worker between passes, the server restarted
    meanwhile) is, and a dead one is replaced transparently.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["flowrun_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("flowrun_idle_since")
        if since is None or time.monotonic() - since < _PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure means: use another connection
            raise DisconnectionError(f"pooled connection is gone: {exc}") from None


def _forget_inherited_connections() -> None:
    """In a forked child: drop the parent's pooled connections without closing them.

    Closing would end the parent's sessions (PostgreSQL) or disturb its file locks
    (SQLite); the child opens its own connections on first use instead.
    """
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for an in-memory database."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
