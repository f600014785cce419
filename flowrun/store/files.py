"""An SQLite database file, looked at before SQLite opens it: what it is and how it may be opened.

SQLite opens almost anything without a word: an empty file is a new empty
database, a path it cannot use is "unable to open database file", and a file it
may only read fails at the first statement. :func:`inspect_file` says up front,
in flowrun's words and with the fix, what is wrong with a database path:

* a name too long for the file system (with room for SQLite's ``-journal``,
  ``-wal`` and ``-shm`` files next to it);
* a folder, an unreadable file, an empty (zero-byte) file, a file that is not
  an SQLite database;
* a database flowrun may only read (the file, or the folder its ``-wal`` and
  ``-shm`` files must be created in, is read-only): :class:`DbFile` then says how
  to open it for reading and why writes are refused.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flowrun.errors import StoreError

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"

#: The files SQLite creates next to a database ``X``: ``X-journal``, ``X-wal``, ``X-shm``.
COMPANIONS = ("-journal", "-wal", "-shm")

#: Where a user changes the database path, for messages.
_SETTING = "'database:' in flowrun.yaml (or FLOWRUN_DATABASE_URL)"


@dataclass(frozen=True)
class DbFile:
    """What :func:`inspect_file` found.

    Attributes:
        path: the database file.
        exists: False for a database flowrun is to create.
        read_only: None when flowrun may write; else why not and the fix (the whole message of a refused write).
        immutable: open with ``immutable=1``: no ``-shm`` exists (no process has the database open) and
            flowrun may not create one; SQLite reads the file as it is (there is no ``-wal`` to miss).
    """

    path: Path
    exists: bool
    read_only: str | None = None
    immutable: bool = False

    def uri(self) -> str:
        """The ``file:`` URI SQLite opens a read-only database with."""
        flag = "immutable=1" if self.immutable else "mode=ro"
        return f"file:{quote(str(self.path.absolute()))}?{flag}"


def inspect_file(path: Path) -> DbFile:
    """What the database file at ``path`` is, refusing one flowrun cannot use.

    Raises:
        StoreError: the path is too long, or names a folder, an unreadable, empty or non-SQLite file;
            the message names the file and the fix.
    """
    _check_name_length(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return DbFile(path, exists=False)
    except OSError as exc:
        raise _unusable(path, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"the database {path} is a folder, not a file; name a file in {_SETTING}")
    if not stat.S_ISREG(st.st_mode):  # reading a pipe or a device could wait for ever
        raise StoreError(
            f"the database {path} is not a regular file (a device, pipe or socket); name a file in {_SETTING}"
        )
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(
            f"cannot read the database {path}: {exc.strerror}; give this user read access (chmod u+r), "
            f"or name another file in {_SETTING}"
        ) from None
    wal = path.with_name(path.name + "-wal")
    if st.st_size == 0 and wal.is_file() and wal.stat().st_size > 0:
        raise StoreError(
            f"the database file {path} is empty (0 bytes) but {wal.name} next to it holds "
            f"{wal.stat().st_size} bytes of changes: do not remove either; copy both somewhere safe and restore "
            "the database from a backup"
        )
    if st.st_size == 0:
        raise StoreError(
            f"the database file {path} is empty (0 bytes), so it is not a flowrun database (flowrun never leaves "
            "an empty one; a copy or a full disk may have cut it short): restore it from a backup, or remove it "
            "and flowrun creates a new empty database"
        )
    if head != SQLITE_HEADER:
        raise StoreError(
            f"the file {path} is not a database (it does not start with SQLite's header, so it is some other "
            "file): "
            f"name flowrun's database in {_SETTING}, or move this file away and flowrun creates a new one"
        )
    return _access(path)


def _check_name_length(path: Path) -> None:
    """Refuse a name the file system cannot hold, SQLite's companion files included."""
    longest = max(len(s) for s in COMPANIONS)
    try:
        limit = os.pathconf(_existing_ancestor(path), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise _too_long(path, f"the name {part[:40]}... is {len(os.fsencode(part))} bytes long")
    if len(os.fsencode(path.name)) + longest > limit:
        raise _too_long(
            path,
            f"the file name is {len(os.fsencode(path.name))} bytes long and SQLite adds up to {longest} more "
            f"for the files it keeps next to it ({', '.join(COMPANIONS)}); "
            f"at most {limit - longest} bytes fit",
        )


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path.parent, *path.parent.parents):
        try:
            if candidate.is_dir():
                return candidate
        except OSError:
            continue
    return Path(".")


def _too_long(path: Path, why: str) -> StoreError:
    shown = str(path) if len(str(path)) <= 120 else f"{str(path)[:60]}...{str(path)[-40:]}"
    return StoreError(
        f"the database path {shown} is too long for the file system ({why}); use a shorter one in {_SETTING}"
    )


def _unusable(path: Path, exc: OSError) -> StoreError:
    if exc.errno == errno.ENAMETOOLONG:
        return _too_long(path, exc.strerror or "name too long")
    if exc.errno == errno.ENOTDIR:
        return StoreError(f"cannot use the database {path}: a part of its folder path is a file; fix {_SETTING}")
    if exc.errno == errno.EACCES:
        return StoreError(
            f"cannot reach the database {path}: permission denied on its folder; give this user access "
            f"to the folder, or name another file in {_SETTING}"
        )
    return StoreError(f"cannot use the database {path}: {exc.strerror}; fix {_SETTING}")


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` (for its effective user; a read-only mount counts)."""
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _access(path: Path) -> DbFile:
    """A database that exists: may flowrun write it, and if not, how does SQLite read it."""
    folder = path.parent
    wal, shm = (path.with_name(path.name + s) for s in ("-wal", "-shm"))
    folder_ok = _writable(folder)
    if _writable(path) and (folder_ok or (_writable(wal) and _writable(shm))):
        return DbFile(path, exists=True)
    if _read_only_mount(path):
        why = f"the database {path} is on a file system mounted read-only"
        fix = "remount it read-write, or copy the database to a writable place and name that in " + _SETTING
    elif not _writable(path):
        why = f"the database file {path} is read-only"
        fix = f"make it writable for this user (chmod u+w {path})"
    else:
        why = f"the folder {folder} is read-only, and SQLite writes its {path.name}-wal and -shm files there"
        fix = f"make the folder writable for this user (chmod u+w {folder})"
    message = f"{why}: flowrun can read it but not save anything; {fix}"
    # Never create files next to a database flowrun may not write: a -wal and -shm left by this user
    # could keep the database's owner from writing. A -shm exists while some process has the database
    # open: share it (mode=ro). Without one nobody has it open, and the file alone is the database.
    if shm.exists():
        return DbFile(path, exists=True, read_only=message)
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"{why}, and {wal.name} holds changes that were not yet written into the database, which SQLite "
            f"cannot read without creating {shm.name}: {fix} (the next flowrun command then completes it)"
        )
    return DbFile(path, exists=True, read_only=message, immutable=True)
