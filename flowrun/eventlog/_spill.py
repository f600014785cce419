"""Reading a log file of any size with bounded memory: its text by lines, its checked tasks in temporary files.

:class:`TextLines` turns the bytes of a file into text lines for the CSV reader, a
chunk at a time, hashing the bytes as they pass and naming the byte where the
file stops being UTF-8. :class:`SpilledCases` keeps the checked tasks of a log on
disk, spread over files by a hash of the case id, so all tasks of one case are in
one file and reading one file back holds only its share of the log.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import tempfile
import zlib
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from flowrun.errors import DataError

if TYPE_CHECKING:
    from flowrun.eventlog.importer import ImportedTask

#: Bytes read at a time.
CHUNK = 1 << 20
#: About how much of the file goes into one temporary file (what reading back holds at once).
SHARE = 2 << 20
#: At most this many temporary files are open (a larger log makes each one hold more).
MAX_FILES = 512

_LINE_END = re.compile(r"\r\n|\r|\n")

#: A spilled task: case id, pilot, and the task.
Spilled = tuple[str, "str | None", "ImportedTask"]


class TextLines:
    """The lines of a UTF-8 file (a BOM allowed), with their line ends, as the CSV reader wants them.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only (as ``open(newline="")`` reads them).
    """

    def __init__(self, stream: BinaryIO, source: str, progress: Callable[[int], None] | None = None) -> None:
        self._stream = stream
        self._source = source
        self._progress = progress
        self._hash = hashlib.sha256()

    def sha256(self) -> str:
        """The hex sha256 of the bytes read so far (all of them, once :meth:`lines` is exhausted)."""
        return self._hash.hexdigest()

    def lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        done = 0
        rest = ""
        while True:
            chunk = self._stream.read(CHUNK)
            self._hash.update(chunk)
            held = len(decoder.getstate()[0])  # bytes of a character cut at the end of the last chunk
            try:
                text = rest + decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = done - held + exc.start
                raise DataError(
                    f"{self._source} is not UTF-8 text (byte {at}); save it as UTF-8 (in Excel: 'CSV UTF-8')"
                ) from None
            done += len(chunk)
            if self._progress is not None:
                self._progress(done)
            if not chunk:
                if text:
                    yield text
                return
            rest = yield from _whole_lines(text)


def _whole_lines(text: str) -> Generator[str, None, str]:
    """Yield the complete lines of ``text``; return the incomplete rest (a lone ``\\r`` may be half a ``\\r\\n``)."""
    start = 0
    for match in _LINE_END.finditer(text):
        if match.group() == "\r" and match.end() == len(text):
            break
        yield text[start : match.end()]
        start = match.end()
    return text[start:]


class SpilledCases:
    """Checked tasks in temporary files, one file per share of the cases.

    Args:
        size: the log's size in bytes, to choose how many files (0: one).
    """

    def __init__(self, size: int) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="flowrun-import-")
        count = min(MAX_FILES, max(1, -(-size // SHARE)))
        self._paths = [Path(self._dir.name) / f"{i}.jsonl" for i in range(count)]
        self._files: list[TextIO] = [p.open("w", encoding="utf-8") for p in self._paths]

    def add(self, case_id: str, pilot: str | None, task: ImportedTask) -> None:
        """Keep one checked task of case ``case_id``."""
        index = zlib.crc32(case_id.encode("utf-8")) % len(self._files) if len(self._files) > 1 else 0
        times = [None if t is None else t.isoformat() for t in (task.enable, task.start, task.end)]
        fields = [case_id, pilot, task.line, task.activity, task.activity_id, task.type, task.lane, task.resource]
        row = [*fields, task.status, *times, task.data]
        self._files[index].write(json.dumps(row, ensure_ascii=False) + "\n")

    def groups(self) -> Iterator[list[Spilled]]:
        """The kept tasks, one file's share at a time (every task of a case is in the same share)."""
        from flowrun.eventlog.importer import ImportedTask

        for stream in self._files:
            stream.close()
        for path in self._paths:
            group: list[Spilled] = []
            with path.open(encoding="utf-8") as stream:
                for text in stream:
                    c, pilot, line, activity, activity_id, kind, lane, resource, status, *times, data = json.loads(text)
                    enable, start, end = (_time(t) for t in times)
                    task = ImportedTask(
                        line, activity, activity_id, kind, lane, resource, status, enable, start, end, data
                    )
                    group.append((c, pilot, task))
            yield group
            path.unlink()

    def close(self) -> None:
        """Remove the temporary files."""
        for stream in self._files:
            stream.close()
        self._dir.cleanup()


def _time(text: Any) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
