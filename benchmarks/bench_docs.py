"""Speed figures for the documentation (issue: docs site). Prints; asserts nothing.

1. cold `symcost derive conv2d` and a cold `import symcost` + `formulas.conv2d`: the notebook
   display methods must not slow the start (budget for derive: 0.6 s, as before);
2. `python scripts/gen_docs.py --check`: regenerate both references and compare (cold process);
3. `mkdocs build --strict`, what the docs tests run once per CI run (cold process);
4. every page run as the docs tests run it, in this process: the time per page and in all, with
   the number of commands, doctest examples and scripts each ran.

Run: python benchmarks/bench_docs.py [--runs 5]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import ROOT, cold, setup, show  # noqa: E402  (one way of timing cold runs for every benchmark)


def pages() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.docs_runner import run_page

    paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    total = 0.0
    counts = [0, 0, 0]
    for page in paths:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            run = run_page(page, Path(tmp))
            seconds = time.perf_counter() - start
        total += seconds
        counts = [counts[0] + run.commands, counts[1] + run.examples, counts[2] + run.scripts]
        status = "ok" if not run.failures else f"{len(run.failures)} FAILED"
        name = str(page.relative_to(ROOT))
        print(
            f"  {name:<44} {seconds:6.2f} s  {run.commands:3} commands {run.examples:3} examples {run.scripts:2} scripts  {status}"
        )
    print(
        f"{'every page, in process':<52} {total:.2f} s  ({counts[0]} commands, {counts[1]} examples, {counts[2]} scripts)"
    )


def main() -> None:
    runs, base = setup(__doc__)
    show("cold symcost derive conv2d", cold([*base, "derive", "conv2d"], runs)[0], target=0.6)
    show(
        "cold import symcost; formulas.conv2d",
        cold([sys.executable, "-c", "from symcost import formulas; formulas.conv2d"], runs)[0],
    )
    show("gen_docs.py --check (both references)", cold([sys.executable, "scripts/gen_docs.py", "--check"], runs)[0])
    os.environ["NO_MKDOCS_2_WARNING"] = "1"
    with tempfile.TemporaryDirectory() as site:
        build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site]
        show("mkdocs build --strict", cold(build, max(1, runs // 2))[0])
    pages()


if __name__ == "__main__":
    main()
