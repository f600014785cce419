"""Persistence: the only package that imports SQLAlchemy and Alembic.

Public names: :class:`SqlStore` and its transaction :class:`Tx`.
"""

from flowrun.store.logs import case_data_rows, count_imported, insert_imported, instance_families, task_log_rows
from flowrun.store.sql import SqlStore, Tx

__all__ = [
    "SqlStore",
    "Tx",
    "case_data_rows",
    "count_imported",
    "insert_imported",
    "instance_families",
    "task_log_rows",
]
