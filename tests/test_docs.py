"""The worked examples in the docs, the README and the docstrings run, and give those numbers."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODULES = sorted(p.stem for p in (ROOT / "symcost").glob("*.py") if p.stem not in {"__main__"})
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _run_page(page: Path) -> doctest.TestResults:
    """Run the ``>>>`` examples of a page's ```python blocks, in order, in one namespace."""
    text = "\n".join(FENCE.findall(page.read_text(encoding="utf-8")))
    test = doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples(page):
    assert _run_page(page).failed == 0


def test_pages_have_examples():
    assert sum(_run_page(p).attempted for p in PAGES) >= 10


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"symcost.{name}" if name != "__init__" else "symcost")
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
