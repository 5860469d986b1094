"""Cold `symcost eval` and `eval --symbolic` of every bundled architecture. Prints; asserts nothing.

Targets: cold `symcost eval NAME` <= 1 s on the 2-core machine and <= 2x a fresh `python -c "import sympy"`
measured in the same run; `symcost eval NAME --symbolic` <= 5 s; the zoo page (every model's closed form in its
input size, docs/reference/zoo.md) generated in <= 60 s.
Each figure is the median of `--runs` fresh processes (default 3); the slowest models are listed first.

Run: python benchmarks/bench_cold_eval.py [--runs 3] [--only resnet50 googlenet]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold(args: list[str], runs: int) -> float:
    """Median wall time of ``runs`` fresh processes running ``args``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="architecture names (default: every file in archs/)")
    options = parser.parse_args()
    names = options.only or sorted(p.stem for p in (ROOT / "archs").glob("*.yaml"))
    sympy_import = cold([sys.executable, "-c", "import sympy"], options.runs)
    symcost = [sys.executable, "-m", "symcost.cli"]
    rows = []
    for name in names:
        path = f"archs/{name}.yaml"
        rows.append(
            (name, cold([*symcost, "eval", path], options.runs), cold([*symcost, "eval", path, "--symbolic"], 1))
        )
    rows.sort(key=lambda r: -r[1])
    print(f"python -c 'import sympy': {sympy_import:.2f} s (median of {options.runs}); 2x = {2 * sympy_import:.2f} s")
    print(f"{'architecture':<28} {'cold eval s':>11} {'x sympy':>8} {'--symbolic s':>13}")
    for name, seconds, symbolic in rows:
        print(f"{name:<28} {seconds:>11.2f} {seconds / sympy_import:>8.2f} {symbolic:>13.2f}")
    print("five slowest cold evals: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds, _ in rows[:5]))
    within = sum(1 for _, seconds, _ in rows if seconds <= 2 * sympy_import)
    print(f"{within} of {len(rows)} within 2x the sympy import; all within 1 s: {all(r[1] <= 1.0 for r in rows)}")
    if not options.only:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from symcost import zoo; zoo.table()"], cwd=ROOT, check=True)
        print(f"zoo page rows (every model's closed form), cold, on every core: {time.perf_counter() - start:.1f} s")
    worst, worst_symbolic = max(r[1] for r in rows), max(r[2] for r in rows)
    print(f"slowest cold eval {worst:.2f} s (target <= 1.0 s and <= {2 * sympy_import:.2f} s); ", end="")
    print(f"slowest --symbolic {worst_symbolic:.2f} s (target <= 5 s)")


if __name__ == "__main__":
    main()
