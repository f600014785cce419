"""Event logs for process mining: export flowrun's task records, import logs recorded elsewhere.

Writers take plain task rows (see ``flowrun.eventlog._rows``) grouped by case and stream
them to a text file: :func:`write_csv`, :func:`write_xes` (IEEE 1849) and
:func:`write_ocel` (OCEL 2.0 JSON). :func:`read_cases` reads a CSV task log
(flowrun's own export, or any file described by a :class:`ColumnMapping`) and
checks every row. Nothing here touches the database; ``flowrun.app`` connects
these to the store.
"""

from flowrun.eventlog._rows import LogStats
from flowrun.eventlog.casedata import CaseData, case_data
from flowrun.eventlog.csvlog import spreadsheet_text, write_csv
from flowrun.eventlog.importer import ColumnMapping, ImportedCase, ImportedTask, ScannedLog, read_cases, scan_log
from flowrun.eventlog.ocel import write_ocel
from flowrun.eventlog.xes import write_xes

__all__ = [
    "CaseData",
    "ColumnMapping",
    "ImportedCase",
    "ImportedTask",
    "LogStats",
    "ScannedLog",
    "case_data",
    "read_cases",
    "scan_log",
    "spreadsheet_text",
    "write_csv",
    "write_ocel",
    "write_xes",
]
