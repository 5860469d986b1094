"""Speed figures for the device work (issue: devices and latency), and the latencies it predicts.
Prints; asserts nothing.

1. cold `symcost eval resnet50 --device a100 --dtype bf16` against the same without a device
   (target: the roofline adds <= 0.2 s; the whole run <= 1.0 s, as plain eval);
2. cold `symcost eval llama --phase decode --device a100` (target <= 1.0 s) and with `--free B`
   (closed-form latency and each layer's compute-bound batch size; target <= 2.0 s);
3. cold `symcost roofline resnet50 --device a100 -o FILE.png` (matplotlib's import dominates);
4. in-process: the roofline of an already evaluated ResNet-50 (µs), and a closed-form latency
   evaluated at one batch size;
5. the predictions the latency model makes for a few bundled archs and devices: the figures
   that measurements on real hardware are to be compared with.

Run: python benchmarks/bench_roofline.py [--runs 5]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import cold, setup, show  # noqa: E402  (one way of timing cold runs for every benchmark)

PREDICTIONS = [
    # arch, --set, phase, device, dtype
    ("resnet50", [], "inference", "a100", "bf16"),
    ("resnet50", ["N=64"], "inference", "a100", "bf16"),
    ("resnet50", ["N=64"], "inference", "h100_sxm", "bf16"),
    ("resnet50", [], "inference", "t4", "fp16"),
    ("mobilenet_v2", ["N=64"], "inference", "a100", "bf16"),
    ("vit_b_16", ["N=64"], "inference", "a100", "bf16"),
    ("gpt2", ["S=1024"], "prefill", "a100", "bf16"),
    ("llama", ["S=2048"], "prefill", "h100_sxm", "bf16"),
    ("llama", ["ctx=2047"], "decode", "a100", "bf16"),
    ("llama", ["ctx=2047"], "decode", "h100_sxm", "bf16"),
    ("llama", ["ctx=2047"], "decode", "h200", "bf16"),
    ("llama", ["ctx=2047", "B=64"], "decode", "h100_sxm", "bf16"),
]


def in_process() -> None:
    from symcost import arch, compile, devices, roofline, shapes

    graph = shapes.build(arch.load_path("archs/resnet50.yaml"))
    result = compile.evaluate(graph)
    a100 = devices.find("a100")
    roof = roofline.roof_for(a100, "bf16")
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        roofline.estimate(result, a100, roof, "bf16")
    each = (time.perf_counter() - start) / runs
    print(f"{'roofline of an evaluated ResNet-50 (95 layers)':<52} {each * 1e6:.0f} µs per estimate")

    llama = shapes.build(arch.load_path("archs/llama.yaml"))
    fixed = {v.name: v.default for v in llama.arch.variables.values() if v.name != "B"}
    fixed.update({"S": 1, "ctx": 2047})
    start = time.perf_counter()
    closed, _ = roofline.symbolic_estimate(compile.symbolic_nodes(llama, fixed), roof, "bf16")
    derive = time.perf_counter() - start
    B = llama.arch.variables["B"].symbol
    start = time.perf_counter()
    for batch in range(1, 101):
        closed["latency_s"].xreplace({B: batch})
    point = (time.perf_counter() - start) / 100
    print(f"{'closed-form llama decode latency in B':<52} derived in {derive * 1e3:.0f} ms, "
          f"{point * 1e6:.0f} µs per batch size")  # fmt: skip


def predictions(base: list[str]) -> None:
    import json
    import subprocess

    print("\nPredicted latencies (roofline, efficiency 1: lower bounds; no measurement to compare yet)")
    print(
        f"  {'arch':<14} {'set':<18} {'phase':<10} {'device':<9} {'dtype':<5} {'latency':>10} {'per second':>16}  bound"
    )
    for name, values, phase, device, dtype in PREDICTIONS:
        args = [*base, "eval", name, "--device", device, "--dtype", dtype, "--phase", phase, "--format", "json"]
        if values:
            args += ["--set", *values]
        data = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
        p = data["performance"]
        rate = f"{p['tokens_per_s']:.4g} tok/s" if p["tokens_per_s"] else f"{p['samples_per_s']:.4g} img/s"
        share = p["memory_bound_s"] / p["latency_s"]
        print(f"  {name:<14} {' '.join(values) or '-':<18} {phase:<10} {device:<9} {dtype:<5} "
              f"{p['latency_s'] * 1e3:>8.3f} ms {rate:>16}  {100 * share:.0f}% of the time memory-bound")  # fmt: skip


def main() -> None:
    runs, base = setup(__doc__)

    times, _, _ = cold([*base, "eval", "resnet50"], runs)
    plain = show("cold `symcost eval resnet50`", times)
    times, rss, _ = cold([*base, "eval", "resnet50", "--device", "a100", "--dtype", "bf16"], runs)
    device = show("cold `... --device a100 --dtype bf16`", times, 1.0, f"  peak RSS {rss / 1024:.0f} MB")
    verdict = "ok" if device - plain <= 0.2 else "OVER the 0.2 s target"
    print(f"{'':<52} the roofline adds {1e3 * (device - plain):.0f} ms  {verdict}")
    decode = ["eval", "llama", "--device", "a100", "--dtype", "bf16", "--phase", "decode"]
    times, _, _ = cold([*base, *decode], runs)
    show("cold `symcost eval llama --phase decode --device a100`", times, 1.0)
    times, _, _ = cold([*base, *decode, "--free", "B"], runs)
    show("cold `... --free B` (closed form + crossovers)", times, 2.0)
    with tempfile.TemporaryDirectory() as folder:
        png = str(Path(folder) / "roofline.png")
        times, prss, _ = cold([*base, "roofline", "resnet50", "--device", "a100", "--dtype", "bf16", "-o", png], runs)
        show("cold `symcost roofline resnet50 -o roofline.png`", times, None, f"  peak RSS {prss / 1024:.0f} MB")
    in_process()
    predictions(base)


if __name__ == "__main__":
    main()
