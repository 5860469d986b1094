"""Run a documentation page the way a reader would: every code block, top to bottom.

A page is read in order, one namespace and one working directory per page:

- a block with a file name, ```` ```yaml title="my_net.yaml" ````, is written to that file (the
  reader saving it), so the commands and code after it can use it;
- a ```` ```console ```` block is a terminal transcript: each ``$ symcost ...`` line runs (in
  process, through typer's runner) and the lines up to the next ``$`` are its expected output,
  compared as doctest does with ``...`` as a wildcard and whitespace runs equal. A transcript whose
  output starts with ``Error:`` expects exit status 1, any other exit status 0. A ``# comment``
  is cut; ``| head -N`` and ``| grep WORD`` filter the output; ``cat FILE`` and ``head -N FILE``
  show a file that an earlier command wrote;
- a ```` ```bash ```` block is a list of commands a reader may copy: each ``symcost ...`` command in
  it runs and must exit 0 (the part before a pipe; ``pip ...`` and other programs are skipped;
  a file pattern is expanded as a shell would);
- a ```` ```python ```` block with ``>>>`` prompts runs as a doctest; one without runs as a script
  (the reader pasting it), in the same namespace, so later examples can use what it defined (a
  python block with a title is also saved to its file first).

The working directory is a fresh temporary one in which ``archs``, ``formulas`` and ``devices``
point at the repository's, so ``symcost eval archs/resnet50.yaml`` works as from a checkout, and
files that a page writes (``-o roofline.png``) land in the temporary directory.
"""

from __future__ import annotations

import doctest
import glob
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import helpers

ROOT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Fences at the start of a line (blocks nested in lists or admonitions are not run).
FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
TITLE = re.compile(r'title="(?P<name>[^"]+)"')


@dataclass
class Block:
    lang: str
    title: str | None
    body: str
    line: int  # 1-based line of the opening fence


@dataclass
class Failure:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class PageRun:
    page: Path
    failures: list[Failure] = field(default_factory=list)
    commands: int = 0
    examples: int = 0
    scripts: int = 0
    files: int = 0


def blocks(text: str) -> list[Block]:
    out = []
    for m in FENCE.finditer(text):
        title = TITLE.search(m["attrs"])
        out.append(Block(m["lang"], title["name"] if title else None, m["body"], text.count("\n", 0, m.start()) + 1))
    return out


def transcript(body: str) -> list[tuple[str, str, int]]:
    """``(command, expected output, line offset)`` for each ``$`` line of a console block.

    A command may continue over lines ending in a backslash, as in a shell.
    """
    items: list[tuple[str, list[str], int]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command, start = line[2:], i
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            items.append((command, [], start))
        elif items:
            items[-1][1].append(line)
        i += 1
    return [(c, "\n".join(out).strip("\n"), start) for c, out, start in items]


def bash_commands(body: str) -> list[tuple[str, int]]:
    """The ``symcost`` commands of a bash block: comments and pipes cut, ``&&`` chains split."""
    joined: list[tuple[str, int]] = []
    pending = ""
    for offset, line in enumerate(body.splitlines()):
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1]
            continue
        joined.append((line, offset))
    out = []
    for line, offset in joined:
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if any(c in word for c in "*?[") and sorted(glob.glob(word)):
                command += sorted(glob.glob(word))  # the shell expands a pattern that matches
                continue
            if word in {"&&", "|", ";"}:
                if command and command[0] == "symcost":
                    out.append((shlex.join(command), offset))
                command = [] if word != "|" else ["<pipe>"]
            else:
                command.append(word)
    return out


def _checker_matches(want: str, got: str) -> bool:
    return doctest.OutputChecker().check_output(want.rstrip() + "\n", got.rstrip() + "\n", FLAGS)


class Runner:
    def __init__(self, page: Path, workdir: Path) -> None:
        self.run = PageRun(page)
        self.workdir = workdir
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        for name in ("archs", "formulas", "devices"):
            (workdir / name).symlink_to(ROOT / name, target_is_directory=True)
        (workdir / "docs" / "img").mkdir(parents=True)  # pages regenerate their own figures here

    def fail(self, line: int, message: str) -> None:
        self.run.failures.append(Failure(f"{self.run.page.name}:{line}", message))

    def symcost(self, command: str) -> tuple[int, str]:
        from symcost import cli

        args = shlex.split(command)
        assert args[0] == "symcost"
        result = helpers.invoke(*args[1:], env={"COLUMNS": "100", "NO_COLOR": "1"})
        cli._state["debug"] = False  # a --debug run must not leak into the next command
        return result.exit_code, result.output

    def shell(self, command: str) -> tuple[int, str] | None:
        """Run one transcript line: ``symcost ...``, optionally piped into ``head -N`` or
        ``grep WORD``, or ``cat FILE`` / ``head -N FILE`` to show a file a command wrote."""
        stages = [shlex.split(part, comments=True) for part in command.split(" | ")]
        first, filters = stages[0], stages[1:]
        if first[0] == "symcost":
            code, out = self.symcost(shlex.join(first))
        elif first[0] in {"cat", "head"} and len(first) in {2, 3}:
            code, out = 0, (self.workdir / first[-1]).read_text(encoding="utf-8")
            filters.insert(0, first[:-1])
        else:
            return None
        for stage in filters:
            lines = out.splitlines()
            if stage[0] == "head":
                count = int(stage[1].lstrip("-n")) if len(stage) > 1 else 10
                lines = lines[:count]
            elif stage[0] == "grep" and len(stage) == 2:
                lines = [line for line in lines if stage[1] in line]
            else:
                return None
            out = "\n".join(lines) + "\n"
        return code, out

    def console(self, block: Block) -> None:
        for command, want, offset in transcript(block.body):
            line = block.line + 1 + offset
            self.run.commands += 1
            ran = self.shell(command)
            if ran is None:
                self.fail(line, f"a transcript runs symcost (piped into head or grep), cat or head: not {command!r}")
                continue
            code, got = ran
            expected_code = 1 if want.startswith("Error:") else 0
            if code != expected_code:
                self.fail(line, f"$ {command}\nexit status {code}, expected {expected_code}\n{got}")
            elif want and not _checker_matches(want, got):
                self.fail(line, f"$ {command}\n--- expected\n{want}\n--- got\n{got}")

    def bash(self, block: Block) -> None:
        for command, offset in bash_commands(block.body):
            self.run.commands += 1
            code, got = self.symcost(command)
            if code != 0:
                self.fail(block.line + 1 + offset, f"$ {command}\nexit status {code}\n{got}")

    def python(self, block: Block) -> None:
        name = f"{self.run.page.name}:{block.line}"
        if ">>>" in block.body:
            test = doctest.DocTestParser().get_doctest(block.body, {}, name, str(self.run.page), block.line)
            test.globs = self.namespace  # DocTest copies its globals; the page shares one namespace
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            report: list[str] = []
            runner.run(test, out=report.append, clear_globs=False)
            self.run.examples += len(test.examples)
            if runner.failures:
                self.fail(block.line, "".join(report))
        else:
            self.run.scripts += 1
            try:
                # The page's own code, run as a reader pasting it would (doctest execs examples alike).
                exec(compile(block.body, name, "exec"), self.namespace)  # noqa: S102
            except Exception as exc:  # noqa: BLE001 - reported as a failure of the page
                self.fail(block.line, f"{type(exc).__name__}: {exc}")

    def page(self) -> PageRun:
        for block in blocks(self.run.page.read_text(encoding="utf-8")):
            if block.title and block.lang != "console":
                target = self.workdir / block.title
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.body, encoding="utf-8")
                self.run.files += 1
            if block.lang == "console":
                self.console(block)
            elif block.lang == "bash":
                self.bash(block)
            elif block.lang == "python":
                self.python(block)
        return self.run


def run_page(page: Path, workdir: Path) -> PageRun:
    """Run every block of ``page`` in ``workdir`` (made the current directory meanwhile)."""
    before = Path.cwd()
    os.chdir(workdir)
    try:
        return Runner(page, workdir).page()
    finally:
        os.chdir(before)
