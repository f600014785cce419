"""Output piped into a reader that stops early (``flowrun export -o - | head``) ends quietly."""

from __future__ import annotations

import os
import subprocess

import pytest

from flowrun import app
from tests.helpers import flowrun_executable

#: 128 + SIGPIPE: what a shell tool whose reader went away exits with.
PIPE_CLOSED = 141


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}


def test_export_into_head_ends_quietly(project, project_dir):
    """A reader taking the first line of a large export and closing: no traceback, no internal error."""
    for _ in range(80):  # an XES log well past the 64 KiB a pipe buffers, so flowrun is still writing
        app.start(project, "complaint:baseline")
    with subprocess.Popen(
        [str(flowrun_executable()), "export", "--format", "xes", "-o", "-"],
        cwd=project_dir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        error = proc.stderr.read().decode()
        code = proc.wait(timeout=60)

    assert first.startswith(b"<?xml")
    assert error == ""
    assert code == PIPE_CLOSED


@pytest.mark.parametrize(
    "args",
    [
        ("export", "--format", "csv", "-o", "-"),
        ("tasks",),
        ("tasks", "--json"),
        ("instances",),
    ],
)
def test_a_closed_pipe_is_no_internal_error(project, project_dir, args):
    """Every command writing to a pipe its reader already closed exits 141 and prints nothing."""
    app.start(project, "complaint:baseline")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before flowrun writes a byte
    try:
        proc = subprocess.run(
            [str(flowrun_executable()), *args],
            cwd=project_dir,
            env=_env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)

    assert proc.stderr == ""
    assert proc.returncode == PIPE_CLOSED
