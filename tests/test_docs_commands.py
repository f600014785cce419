"""Every command in the README and docs/ works when typed as written.

The ``console`` blocks of README.md and docs/*.md are run as a new user would type them: in a
shell, one block after another, in a fresh folder holding only the project's ``.venv`` (what the
README's setup command makes). A command must exit as its documented output says (an ``error:``
line means a non-zero exit, ``exit N`` echoed means that code), and every ``error:`` line shown
must be what the user gets, up to ids, digits and times. Instance ids differ in each run: the
id a documented ``flowrun start`` prints stands for the one the real command printed.

A block that cannot run here says so in an HTML comment right above it,
``<!-- doc-test: skip REASON -->``, and the reason is shown as the test's skip reason.
Interactive ``flowrun do`` prompts are answered with the answers the documentation shows, at a
real pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow

_BLOCK = re.compile(r"(?:<!--\s*doc-test:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?```console\n(?P<body>.*?)```", re.S)
_PROMPT_ANSWER = re.compile(r"(?:\)|\])(?: \[[^\]]*\])?: (?P<answer>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ID = re.compile(r"\b[0-9a-f]{8}(?:[0-9a-f]{24})?\b")


@dataclass
class Command:
    """One ``$ ...`` line of a console block and the output the documentation shows for it."""

    line: str
    shown: list[str] = field(default_factory=list)

    @property
    def interactive_answers(self) -> list[str]:
        """The answers typed at the prompts shown, for a ``flowrun do`` without data."""
        words = self.line.split()
        if "do" not in words or any(w in words for w in ("-d", "--data", "--data-file")):
            return []
        return [m["answer"] for text in self.shown if (m := _PROMPT_ANSWER.search(text))]

    @property
    def expected_exit(self) -> int | None:
        """0, a documented code (``exit N``), or None for 'some error' (an ``error:`` line is shown)."""
        for text in self.shown:
            if m := re.fullmatch(r"exit (\d+)", text.strip()):
                return int(m[1]) if "echo" not in self.line else 0
        return None if any(t.startswith("error:") for t in self.shown) else 0


@dataclass
class Block:
    source: str
    commands: list[Command]
    skip: str | None


def blocks(path: Path) -> list[Block]:
    """The console blocks of one Markdown file, in order."""
    out = []
    for match in _BLOCK.finditer(path.read_text(encoding="utf-8")):
        directive = (match["directive"] or "").strip()
        commands: list[Command] = []
        for text in match["body"].splitlines():
            if text.startswith("$ "):
                commands.append(Command(text[2:]))
            elif commands:
                commands[-1].shown.append(text)
        line = path.read_text(encoding="utf-8")[: match.start("body")].count("\n")
        skip = directive[len("skip") :].strip() if directive.startswith("skip") else None
        out.append(Block(f"{path.relative_to(ROOT)}:{line}", commands, skip))
    return out


def _normal(text: str) -> str:
    text = _ID.sub("ID", _ANSI.sub("", text))
    return re.sub(r"\d", "#", text).strip()


def _stand_in(shown: str, real: str) -> Callable[[re.Match[str]], str]:
    """A replacement that puts the real id where a prefix of the documented id stands."""
    return lambda m: real if shown.startswith(m[0]) else m[0]


class Shell:
    """A bash at a pseudo-terminal, in a fresh folder with the project's ``.venv``."""

    def __init__(self, folder: Path) -> None:
        (folder / ".venv").symlink_to(BIN.parent)
        self.folder = folder
        self.ids: dict[str, str] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWRUN_", "VIRTUAL_ENV"))}
        env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), COLUMNS="160", TERM="dumb", PS1="")
        self.env = env

    def run(self, command: Command) -> tuple[int, str]:
        """Run one command line; returns its exit code and its output (stdout and stderr)."""
        line = command.line
        for shown, real in self.ids.items():
            line = re.sub(rf"\b{shown[:3]}[0-9a-f]*\b", _stand_in(shown, real), line)
        state = self.folder / ".state"
        script = (
            f"cd {self._cwd()!s}; [ -f {state}.env ] && source {state}.env\n"
            f"{line}\nrc=$?\n"
            f'pwd > {state}.cwd; declare -px | grep -v "^declare -x \\(PWD\\|OLDPWD\\|SHLVL\\)=" > {state}.env\n'
            "exit $rc\n"
        )
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-c", script],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env,
            close_fds=True,
        )
        os.close(slave)
        for answer in command.interactive_answers:
            os.write(master, answer.encode() + b"\n")
        output = self._read(master, proc)
        return proc.returncode, _ANSI.sub("", output.replace("\r\n", "\n"))

    def _cwd(self) -> Path:
        saved = self.folder / ".state.cwd"
        return Path(saved.read_text().strip()) if saved.exists() else self.folder

    @staticmethod
    def _read(master: int, proc: subprocess.Popen[bytes]) -> str:
        chunks: list[bytes] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if data:
                    chunks.append(data)
                    continue
            if proc.poll() is not None:
                break  # exited, and everything it wrote is read (the terminal says EIO or nothing)
        else:
            proc.kill()
            raise AssertionError("the command did not finish within 120 s")
        proc.wait()
        os.close(master)
        return b"".join(chunks).decode("utf-8", "replace")


def _check(shell: Shell, block: Block) -> None:
    for command in block.commands:
        code, output = shell.run(command)
        where = f"{block.source}: $ {command.line}\n{output}"
        expected = command.expected_exit
        if expected is None:
            assert code != 0, f"documented as an error, but it exited 0: {where}"
        else:
            assert code == expected, f"exit {code}, documented {expected}: {where}"
        errors = [_normal(t) for t in command.shown if t.startswith("error:")]
        got = _normal(output)
        for error in errors:
            assert error in got, f"documented {error!r}, got: {where}"
        words = command.line.split()
        if len(words) > 1 and words[0] == "flowrun" and words[1] == "start" and command.shown:
            shown_id, real_id = command.shown[0].strip(), output.strip().splitlines()[0].strip()
            if _ID.fullmatch(shown_id) and _ID.fullmatch(real_id):
                shell.ids[shown_id] = real_id


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_walkthrough(tmp_path: Path) -> None:
    """The README's console blocks, run one after another as a new user types them, all work."""
    shell = Shell(tmp_path)
    ran = 0
    for block in blocks(ROOT / "README.md"):
        if block.skip is None:
            _check(shell, block)
            ran += len(block.commands)
    assert ran >= 10, "the README's walkthrough has fewer commands than expected; is the parser broken?"


@pytest.mark.parametrize(
    "block",
    [b for path in DOCS[1:] for b in blocks(path)],
    ids=lambda b: b.source,
)
def test_docs_block(block: Block, tmp_path: Path) -> None:
    """A console block of docs/ works in a project made with ``flowrun init``."""
    if block.skip is not None:
        pytest.skip(block.skip)
    subprocess.run([str(BIN / "flowrun"), "init", str(tmp_path / "project")], check=True, capture_output=True)
    shell = Shell(tmp_path)
    # The docs assume the README's set-up: .venv activated, flowrun on PATH.
    shell.env["PATH"] = f"{BIN}{os.pathsep}{shell.env['PATH']}"
    (tmp_path / ".state.cwd").write_text(str(tmp_path / "project"))
    _check(shell, block)
