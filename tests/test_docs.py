"""The docs, the README and the docstrings run, and print what they say they print.

Every page is run top to bottom by :mod:`tests.docs_runner`: its commands, transcripts, files
and Python blocks, the generated CLI reference too (the examples of every ``--help``).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from tests.docs_runner import ROOT, run_page

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
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


def test_pages_have_examples():
    """The pages show their work: counted from the blocks (each page's test above runs them)."""
    from tests.docs_runner import bash_commands, blocks, transcript

    found = [b for page in PAGES for b in blocks(page.read_text(encoding="utf-8"))]
    commands = sum(len(transcript(b.body)) for b in found if b.lang == "console")
    commands += sum(len(bash_commands(b.body)) for b in found if b.lang == "bash")
    examples = sum(b.body.count("\n>>> ") + b.body.startswith(">>> ") for b in found if b.lang == "python")
    assert len(PAGES) >= 16 and commands >= 150 and examples >= 200


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"symcost.{name}" if name != "__init__" else "symcost")
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_quick_start_is_what_ci_runs():
    """The README's two commands: the first installs and costs ResNet-50 (run above, in the page),
    the second is exactly what .ci/run runs on a clean clone."""
    from tests.docs_runner import blocks

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = [b.body.strip() for b in blocks(_section(readme, "Quick start").lstrip("\n")) if b.lang == "bash"]
    assert len(quick) == 2
    assert quick[0] == "pip install . && symcost eval archs/resnet50.yaml"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == quick[1] == 'pip install -e ".[test]" && python -m pytest'


def test_readme_links_resolve():
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 10
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
