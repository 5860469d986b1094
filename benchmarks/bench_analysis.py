"""Speed figures for sweeps and solving (issue: symbolic analysis). Prints; asserts nothing.

1. in-process `sweep` of ResNet-50's FLOPs over 10**6 (N, H, W) points: derive the closed form,
   compile it, evaluate every point (target <= 1 s), and the same counted per point with the test
   suite's torch.nn ResNet-50 under FlopCounterMode on the meta device, in the same script
   (target: the sweep is >= 10**5 x faster per point);
2. cold `symcost sweep` of the same grid writing a CSV file (a fresh process: imports, derivation,
   evaluation and a million formatted rows);
3. cold `symcost solve resnet50 "flops <= 10**10" --for H` (target <= 1 s), and with --set W=H;
4. cold `symcost compare resnet50 mobilenet_v2` and a solve that evaluates exactly (Llama decode
   memory on an A100), for reference.

Run: python benchmarks/bench_analysis.py [--runs 5]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import ROOT, cold, setup, show  # noqa: E402  (one way of timing cold runs for every benchmark)

GRID = ["N=1:10", "H=32:1022:10", "W=32:1031"]  # 10 x 100 x 1000 = 10**6 points


def sweep_seconds(repeats: int) -> tuple[float, float, int, str]:
    """Best in-process time of (derive + compile + evaluate) and of the whole call from a parsed
    graph, the number of points, and the exact-arithmetic mode used."""
    from symcost import arch, registry, shapes
    from symcost.sweep import parse_axis, sweep

    graph = shapes.build(arch.load_path(registry.data_dir("archs") / "resnet50.yaml"))
    axes = [parse_axis(text) for text in GRID]
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = sweep(graph, axes, ["flops"])
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, best / result.size, result.size, result.mode


def torch_seconds_per_point(points: list[tuple[int, int, int]]) -> tuple[float, list[int]]:
    """Median time to count the torch.nn ResNet-50 under FlopCounterMode on meta, per point."""
    sys.path.insert(0, str(ROOT))
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tests.test_archs_cnn import reference

    model = reference("resnet50")
    times, flops = [], []
    for n, h, w in points:
        start = time.perf_counter()
        x = torch.empty(n, 3, h, w, device="meta")
        with FlopCounterMode(display=False) as counter:
            model(x)
        times.append(time.perf_counter() - start)
        flops.append(counter.get_total_flops())
    return statistics.median(times), flops


def main() -> None:
    runs, base = setup(__doc__)

    whole, per_point, size, mode = sweep_seconds(max(runs, 3))
    verdict = "ok" if whole <= 1.0 else "OVER the 1 s target"
    print(f"{'sweep ResNet-50 FLOPs, in-process (derive+compile+run)':<52} {whole:.3f} s for {size:,} points "
          f"({mode}), {per_point * 1e9:.0f} ns per point  {verdict}")  # fmt: skip
    points = [(1, 224, 224), (2, 160, 192), (4, 320, 320), (8, 512, 384), (1, 1021, 1031)]
    torch_point, torch_flops = torch_seconds_per_point(points)
    from symcost import arch, compile, registry, shapes

    graph = shapes.build(arch.load_path(registry.data_dir("archs") / "resnet50.yaml"))
    ours = [compile.evaluate(graph, {"N": n, "H": h, "W": w}).totals["flops"] for n, h, w in points]
    agree = "the same FLOPs at all 5 points" if ours == torch_flops else f"DISAGREE: {ours} vs {torch_flops}"
    speedup = torch_point / per_point
    verdict = "ok" if speedup >= 1e5 else "UNDER the 10^5x target"
    print(f"{'torch.nn ResNet-50 + FlopCounterMode (meta), per point':<52} {torch_point * 1e3:.1f} ms ({agree})")
    print(f"{'':<52} the sweep is {speedup:,.0f}x faster per point  {verdict}")

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "sweep.csv")
        overs = [arg for text in GRID for arg in ("--over", text)]
        times, rss, _ = cold([*base, "sweep", "resnet50", *overs, "-o", out], runs)
        show("cold `symcost sweep resnet50` 10^6 points to CSV", times, None, f"  peak RSS {rss / 1024:.0f} MB")
        rows = sum(1 for _ in open(out)) - 1
        print(f"{'':<52} wrote {rows:,} rows")

    times, rss, out = cold([*base, "solve", "resnet50", "flops <= 10**10", "--for", "H"], runs)
    show("cold `symcost solve resnet50 'flops <= 10**10' --for H`", times, 1.0, f"  peak RSS {rss / 1024:.0f} MB")
    print(f"{'':<52} {out.splitlines()[0]}")
    times, _, out = cold([*base, "solve", "resnet50", "flops <= 10**10", "--for", "H", "--set", "W=H"], runs)
    show("cold ... with --set W=H", times, 1.0)
    print(f"{'':<52} {out.splitlines()[0]}")
    times, _, out = cold([*base, "solve", "llama", "memory <= 80*GB", "--for", "B", "--phase", "decode",
                          "--device", "a100", "--dtype", "bf16"], runs)  # fmt: skip
    show("cold solve llama decode 'memory <= 80*GB' --for B", times)
    print(f"{'':<52} {out.splitlines()[0]}")
    times, _, _ = cold([*base, "compare", "resnet50", "mobilenet_v2"], runs)
    show("cold `symcost compare resnet50 mobilenet_v2`", times)


if __name__ == "__main__":
    main()
