"""Persistence: the only package that imports SQLAlchemy and Alembic.

Public names: :class:`SqlStore` and its transaction :class:`Tx`.
"""

from flowrun.store.sql import SqlStore, Tx

__all__ = ["SqlStore", "Tx"]
