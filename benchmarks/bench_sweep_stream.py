"""Streamed CSV sweeps: rows per second and peak memory, against the grid's size. Prints; asserts nothing.

Each run is a fresh process: `symcost sweep resnet50 --over N=1:K --over H=224,256 -o FILE.csv`
(2K points of ResNet-50's FLOPs), timed from start to exit, its peak resident memory read from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` as it ends. The grid is evaluated and written
chunk by chunk (``symcost.sweep.CHUNK`` points at a time), so the peak should not grow with the
grid; 2*10**6 points held whole (before chunks) peaked near 400 MB.

Run: python benchmarks/bench_sweep_stream.py [--points 10000000] [--points 2000000 ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import resource, sys
from symcost.cli import main
sys.argv = ["symcost", "sweep", "resnet50", "--over", "N=1:{half}", "--over", "H=224,256", "-o", sys.argv[1]]
try:
    main()
except SystemExit as stop:
    assert not stop.code, stop.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(points: int, folder: Path) -> tuple[float, int, int]:
    """Seconds, peak RSS in KiB, and bytes written for a grid of ``points`` (even) points."""
    out = folder / "sweep.csv"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(half=points // 2), str(out)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    seconds = time.perf_counter() - started
    size = out.stat().st_size
    out.unlink()
    return seconds, int(done.stdout.split()[-1]), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, action="append", help="grid sizes (default 2*10**6 and 10**7)")
    sizes = parser.parse_args().points or [2_000_000, 10_000_000]
    with tempfile.TemporaryDirectory() as folder:
        for points in sizes:
            seconds, peak, size = run(points, Path(folder))
            print(f"{points:>13,} points: {seconds:6.1f} s, {points / seconds:>11,.0f} points/s, "
                  f"peak RSS {peak / 1024:6.1f} MiB, {size / 1e6:8.1f} MB of CSV")  # fmt: skip


if __name__ == "__main__":
    main()
