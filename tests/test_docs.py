"""The docs, the README and the docstrings run, and print what they say they print.

Every page is run top to bottom by :mod:`tests.docs_runner`: its commands, transcripts, files
and Python blocks. The generated reference pages (``docs/reference/``) are checked for staleness
by ``tests/test_docs_site.py`` instead; their usage lines are not commands.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from tests.docs_runner import ROOT, run_page

PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "reference" not in p.parts)]
MODULES = sorted(p.stem for p in (ROOT / "symcost").glob("*.py") if p.stem not in {"__main__"})
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_page_runs(page, tmp_path):
    run = run_page(page, tmp_path)
    assert not run.failures, "\n\n".join(map(str, run.failures))
    # a page that shows a command or an example must have had it run: the runner found them
    text = page.read_text(encoding="utf-8")
    if "```console" in text or "```bash" in text:
        assert run.commands > 0
    if ">>>" in text:
        assert run.examples > 0


def test_pages_have_examples(tmp_path_factory):
    runs = [run_page(p, tmp_path_factory.mktemp(p.stem)) for p in PAGES]
    assert sum(r.examples for r in runs) >= 10
    assert sum(r.commands for r in runs) >= 50


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"symcost.{name}" if name != "__init__" else "symcost")
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
