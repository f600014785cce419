"""Kept connections: a process re-uses its database connections, and survives the server dropping them.

These run in both test runs: the PostgreSQL ones start the session's server even when the
rest of the suite runs on SQLite.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy.engine import make_url

from flowrun.store import SqlStore
from flowrun.store import connect as store_connect
from tests.pgserver import PgServer


def _backend_pids(server: PgServer, database: str) -> list[int]:
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchall()
    return [r[0] for r in rows]


def test_postgres_transactions_reuse_one_connection(pg_server):
    url = pg_server.create_database()
    database = make_url(url).database
    assert database is not None
    store = SqlStore(url)
    try:
        for _ in range(20):
            with store.read() as tx:
                tx.next_due()
            with store.write() as tx:
                tx.release("no-such-instance", "nobody")
        assert len(_backend_pids(pg_server, database)) == 1
    finally:
        store.close()
    assert _backend_pids(pg_server, database) == []


def test_a_connection_the_server_dropped_is_replaced_without_an_error(pg_server, monkeypatch):
    url = pg_server.create_database()
    database = make_url(url).database
    assert database is not None
    store = SqlStore(url)
    try:
        with store.read() as tx:
            tx.next_due()
        (pid,) = _backend_pids(pg_server, database)
        with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as admin:  # a restart, a failover, a DBA
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(store_connect, "_PING_AFTER_IDLE_S", 0.0)  # as if it had sat idle for a while
        with store.read() as tx:
            assert tx.next_due() is None
        assert _backend_pids(pg_server, database) not in ([], [pid])
    finally:
        store.close()


def test_a_forked_child_opens_its_own_connections(pg_server):
    url = pg_server.create_database()
    store = SqlStore(url)
    try:
        with store.read() as tx:
            tx.next_due()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                with store.write() as tx:
                    tx.release("no-such-instance", "nobody")
                os.write(write, b"ok")
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                os.write(write, repr(exc).encode()[:500])
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 1000)
        os.waitpid(child, 0)
        os.close(read)
        assert answer == b"ok"
        with store.read() as tx:  # the parent's connection was not disturbed by the child
            assert tx.next_due() is None
    finally:
        store.close()


@pytest.mark.sqlite
def test_sqlite_keeps_its_write_ahead_log_between_transactions(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'flowrun.db'}")
    try:
        with store.write() as tx:
            tx.release("no-such-instance", "nobody")
        assert (tmp_path / "flowrun.db-wal").exists()  # the connection stayed open: no checkpoint-and-delete
    finally:
        store.close()
    assert not (tmp_path / "flowrun.db-wal").exists()
