"""Speed figures for the formula catalog (issue: foundation). Prints; asserts nothing.

- cold wall time of `symcost derive conv2d` (a fresh process each run; target <= 0.6 s);
- whether `import symcost` pulls torch, numpy or matplotlib (it must not);
- time to load and validate the whole catalog in a fresh process;
- time of one warm exact evaluation.

Run: python benchmarks/bench_derive.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def cold(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return times


def show(label: str, times: list[float], target: float | None = None) -> None:
    med = statistics.median(times)
    verdict = "" if target is None else ("  ok" if med <= target else f"  OVER the {target} s target")
    print(f"{label:<44} median {med:.3f} s  (min {min(times):.3f}, max {max(times):.3f}, n={len(times)}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    exe = shutil.which("symcost")
    derive = [exe, "derive", "conv2d"] if exe else [sys.executable, "-m", "symcost.cli", "derive", "conv2d"]
    show("cold `symcost derive conv2d`", cold(derive, args.runs), target=0.6)
    show("cold `python -c 'import sympy'` (floor)", cold([sys.executable, "-c", "import sympy"], args.runs))

    probe = (
        "import sys, time; t = time.perf_counter()\n"
        "from symcost import registry\n"
        "fs = registry.all_formulas()\n"
        "print(len(fs), time.perf_counter() - t)\n"
        "print(','.join(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules) or 'none')\n"
    )
    loads = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
        count, seconds, heavy = int(out[0]), float(out[1]), out[2]
        loads.append(seconds)
    show(f"load + validate the catalog ({count} formulas)", loads)
    print(f"{'heavy modules after import symcost':<44} {heavy}")

    from symcost import formulas

    conv = formulas.conv2d
    conv.evaluate(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1)
    n = 2000
    start = time.perf_counter()
    for i in range(n):
        conv.evaluate(N=1 + i % 8, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1)
    per = (time.perf_counter() - start) / n
    print(f"{'warm conv2d.evaluate (exact ints)':<44} {per * 1e6:.0f} us per point")


if __name__ == "__main__":
    main()
