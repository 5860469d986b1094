"""Speed and memory figures for `symcost eval` (issue: architectures). Prints; asserts nothing.

1. cold `symcost eval archs/resnet50.yaml` (a fresh process per run; target <= 1.0 s), side by side
   with a fresh process that builds the same ResNet-50 in torch.nn on the meta device and counts it
   with FlopCounterMode (the torch reference from the tests) — symcost must be faster;
2. cold `symcost eval llama` with 80 layers (Llama-2-70B's shape; target <= 1.5 s);
3. derive time (parse + shape propagation + costing, in-process) of 80 layers against 1 layer
   (target: ratio <= 1.5, since identical repeats are costed once);
4. peak resident memory of the cold ResNet-50 and Llama runs (target <= 200 MB).

Run: python benchmarks/bench_eval.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA_70B = ["--set", "d_model=8192", "n_layer=80", "n_head=64", "n_kv_head=8", "d_ff=28672"]

TORCH_RESNET50 = """
import sys, time
sys.path.insert(0, {root!r})
import torch
from torch.utils.flop_counter import FlopCounterMode
from tests.test_archs_cnn import reference
model = reference("resnet50")          # the test suite's torch.nn ResNet-50, built on meta
x = torch.empty(1, 3, 224, 224, device="meta")
with FlopCounterMode(display=False) as counter:
    model(x)
print(counter.get_total_flops(), sum(p.numel() for p in model.parameters()))
"""


# Runs one command as its only child, then reports that child's wall time and peak RSS: its
# RUSAGE_CHILDREN is then exactly the child's (the benchmark's own would mix every child so far).
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "done = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)\n"
    "t = time.perf_counter() - t\n"
    "sys.stdout.write(done.stdout)\n"
    "sys.stderr.write(done.stderr)\n"
    "print(json.dumps([done.returncode, t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]), file=sys.stderr)\n"
)


def cold(command: list[str], runs: int) -> tuple[list[float], int, str]:
    """Wall times of ``runs`` fresh processes, their largest peak RSS (kB) and the last stdout."""
    import json

    times, peak, out = [], 0, ""
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, json.dumps(command)], capture_output=True, text=True, cwd=ROOT
        )
        *messages, last = done.stderr.rstrip("\n").split("\n")
        code, seconds, rss = json.loads(last)
        if code != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n" + "\n".join(messages))
        times.append(seconds)
        peak = max(peak, rss)
        out = done.stdout
    return times, peak, out


def show(label: str, times: list[float], target: float | None = None, note: str = "") -> float:
    med = statistics.median(times)
    verdict = "" if target is None else ("  ok" if med <= target else f"  OVER the {target} s target")
    print(f"{label:<52} median {med:.3f} s  (min {min(times):.3f}, n={len(times)}){verdict}{note}")
    return med


def derive_seconds(n_layer: int, literal: bool, repeats: int = 5) -> float:
    """In-process time to parse, propagate shapes and cost llama with ``n_layer`` layers.

    ``literal`` writes the count into the file (``repeat: 80``) instead of setting the symbolic
    ``n_layer`` variable, so the engine sees a plain number of copies.
    """
    from symcost import registry
    from symcost.arch import load_text
    from symcost.compile import evaluate
    from symcost.shapes import build

    registry.all_formulas()  # formula files are read once per process in either case
    text = (ROOT / "archs" / "llama.yaml").read_text()
    if literal:
        assert "repeat: n_layer" in text
        text = text.replace("repeat: n_layer", f"repeat: {n_layer}")
    values = {} if literal else {"n_layer": n_layer}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(build(load_text(text, "llama.yaml")), values)
        best = min(best, time.perf_counter() - start)
    return best


def setup(doc: str) -> tuple[int, list[str]]:
    """Parse ``--runs``, find the ``symcost`` command and print the machine: (runs, command)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("symcost")
    base = [exe] if exe else [sys.executable, "-m", "symcost.cli"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    return args.runs, base


def main() -> None:
    runs, base = setup(__doc__)

    times, rss, _ = cold([*base, "eval", "archs/resnet50.yaml"], runs)
    ours = show("cold `symcost eval archs/resnet50.yaml`", times, 1.0, f"  peak RSS {rss / 1024:.0f} MB")
    script = TORCH_RESNET50.format(root=str(ROOT))
    times, trss, out = cold([sys.executable, "-c", script], runs)
    theirs = show("cold torch.nn ResNet-50 + FlopCounterMode (meta)", times, None, f"  peak RSS {trss / 1024:.0f} MB")
    print(f"{'':<52} torch counted FLOPs, params = {out.strip()}")
    print(f"{'':<52} symcost is {theirs / ours:.1f}x faster")

    times, lrss, _ = cold([*base, "eval", "llama", *LLAMA_70B], runs)
    show("cold `symcost eval llama` at 80 layers (70B shape)", times, 1.5, f"  peak RSS {lrss / 1024:.0f} MB")

    for literal, how in ((True, "repeat: 80 vs repeat: 1"), (False, "n_layer=80 vs n_layer=1")):
        one, eighty = derive_seconds(1, literal), derive_seconds(80, literal)
        ratio = eighty / one
        verdict = "ok" if ratio <= 1.5 else "OVER the 1.5x target"
        label = f"derive+evaluate llama, {how}"
        print(f"{label:<52} {eighty * 1e3:.1f} ms vs {one * 1e3:.1f} ms: {ratio:.2f}x  {verdict}")
    peak = max(rss, lrss) / 1024
    print(f"{'peak RSS of the symcost runs':<52} {peak:.0f} MB  {'ok' if peak <= 200 else 'OVER the 200 MB target'}")


if __name__ == "__main__":
    main()
