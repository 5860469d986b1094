"""The documentation site builds with ``mkdocs build --strict``, and its generated pages are current.

A broken link, a missing anchor, a page left out of the nav or a nav entry without a page fails the
strict build. The formula and CLI references are written by ``scripts/gen_docs.py`` from the catalog
and the commands' help; a change to either without regenerating fails here, naming the page.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from symcost import registry
from tests.docs_runner import ROOT
from tests.helpers import commands


@pytest.fixture(scope="module")
def gen():
    """scripts/gen_docs.py, each page's text generated once for this module (the zoo page takes ~40 s)."""
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PAGES = {relative: functools.cache(generate) for relative, generate in module.PAGES.items()}
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    return proc, out


def test_mkdocs_build_strict(site):
    proc, out = site
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "index.html").exists()


def test_every_page_is_built(site):
    _, out = site
    pages = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md"))
    assert len(pages) >= 14
    for page in pages:
        html = out / page.with_suffix("") / "index.html" if page.name != "index.md" else out / "index.html"
        assert html.exists(), f"{page} was not built"


def test_formula_reference_has_every_formula(site):
    _, out = site
    html = (out / "reference" / "formulas" / "index.html").read_text(encoding="utf-8")
    for name in registry.names():
        assert f'id="{name}"' in html, name
    # the costs are typeset at build time (scripts/mkdocs_mathml.py): conv2d's MACs as MathML, no LaTeX left
    conv2d = html[html.index('id="conv2d"') : html.index('id="conv_transpose2d"')]
    assert '<div class="math-display"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in conv2d
    assert '<mi mathvariant="normal">M</mi><mi mathvariant="normal">A</mi><mi mathvariant="normal">C</mi>' in conv2d
    assert '<msub><mi>C</mi><mrow><mrow><mi mathvariant="normal">i</mi><mi mathvariant="normal">n</mi>' in conv2d
    for latex in (r"\mathrm", r"\mathit", r"\begin{aligned}", r"\(", r"\[", "arithmatex"):
        assert latex not in html, latex


# <script src=...>, <link href=...> (stylesheets, preconnects, fonts), <img src=...>, <iframe src=...>, CSS @import/url()
EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//"
    r"|@import\s+(?:url\()?[\"']?(?:https?:)?//|url\(\s*[\"']?(?:https?:)?//",
    re.I,
)


def test_site_loads_nothing_from_the_network(site):
    """Math, fonts, scripts and styles are all in the built site: a reader offline sees every page whole."""
    _, out = site
    files = [p for p in out.rglob("*") if p.suffix in (".html", ".css", ".js")]
    assert len(files) > 20
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".js":  # bundled scripts mention URLs in strings; what matters is what they import
            found += [
                f"{path.relative_to(out)}: {m}" for m in re.findall(r"\bimport\s*\(?\s*[\"']https?://[^\"']+", text)
            ]
        else:
            found += [f"{path.relative_to(out)}: {m[0]}" for m in EXTERNAL.finditer(text)]
    assert found == []
    assert EXTERNAL.search('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>')
    assert EXTERNAL.search('<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">')


def test_generated_pages_are_current(gen):
    assert gen.stale() == [], "run: python scripts/gen_docs.py"


def test_staleness_is_detected(gen, tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    (tmp_path / "docs" / "reference").mkdir(parents=True)
    assert sorted(gen.stale()) == sorted(gen.PAGES)  # missing
    assert gen.main([]) == 0
    assert gen.stale() == []
    page = tmp_path / "docs" / "reference" / "cli.md"
    page.write_text(page.read_text(encoding="utf-8").replace("symcost solve", "symcost solv"), encoding="utf-8")
    assert gen.stale() == ["docs/reference/cli.md"]
    assert gen.main(["--check"]) == 1


def test_cli_reference_covers_every_command():
    text = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    for command in (
        "derive",
        "eval",
        "roofline",
        "sweep",
        "solve",
        "compare",
        "check",
        "list formulas",
        "list devices",
    ):
        assert f"## `symcost {command}`" in text, command
    # and the reference has a section for every command the CLI itself declares, and no other
    declared = {" ".join(path) for path, _ in commands() if path}
    documented = set(re.findall(r"^#{2,} `symcost ([a-z ]+)`$", text, re.M))
    assert documented == declared


def test_docs_extra_installs_the_site_tools():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is 3.11+; we support 3.10
    docs = re.search(r"^docs = \[(.*)\]$", text, re.M)
    assert docs and '"mkdocs==' in docs[1] and '"mkdocs-material==' in docs[1]
    assert '"latex2mathml==' in docs[1]  # scripts/mkdocs_mathml.py, the math hook in mkdocs.yml
    # CI runs the test extra only, so it must pull the docs extra in for the build above
    test = text[text.index("test = [") : text.index("\n]", text.index("test = ["))]
    assert '"symcost[docs]"' in test
