"""Fit each bundled runtime's constants on the calibration half of benchmarks/latency/dataset.csv and measure
its error on the held-out half; with --write, store both in runtimes/*.yaml.

    PYTHONPATH=$PWD python scripts/fit_runtimes.py [--dataset PATH] [--write | --check]

--check exits 1 when a runtime file's constants or validation figures differ from a fresh fit (the tests run it,
so no runtime prints an error figure its constants no longer have).

The split is by source (the dataset's `split` column): no held-out row's source is used to fit. A runtime with
no calibration rows of its own borrows the rows of the runtimes named in BORROW (its own fusion rules are
applied to them); the held-out figures are always its own rows'.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symcost import calibrate, runtimes  # noqa: E402

#: Calibration rows a runtime borrows when it has none of its own (all its rows are held out).
#: TensorRT's engines and TensorRT-LLM's share their kernels and fusions; ONNX Runtime (CUDA EP) and vLLM
#: are priced like them; llama.cpp's only calibration-half neighbour is gpt-fast (compiled) decode; XLA's
#: nearest is the other fusing compiler, torch.compile (Inductor).
BORROW = {"tensorrt": ("tensorrt-llm",), "onnxruntime": ("tensorrt", "tensorrt-llm"), "vllm": ("tensorrt-llm",),
          "llama.cpp": ("compiled",), "xla": ("compiled",)}  # fmt: skip
#: A runtime with fewer calibration rows of its own than this also borrows (3 constants need more rows).
ENOUGH = 6


def rows_for(path: str, runtime: runtimes.Runtime, split: str, names: tuple[str, ...]) -> list:
    rows = []
    for name in names:
        borrowed = runtime if name == runtime.name else runtime.__class__(**{**runtime.__dict__, "name": name})
        found, _ = calibrate.read_rows(path, device=None, runtime=borrowed, split=split)
        rows += found
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(ROOT / "benchmarks" / "latency" / "dataset.csv"))
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 if a runtime file differs from a fresh fit")
    parser.add_argument("--rows", action="store_true", help="print each held-out row's residual")
    args = parser.parse_args(argv)
    ratios: list = []
    stale: list[str] = []
    for runtime in runtimes.bundled():
        if runtime.bound:
            continue
        own = rows_for(args.dataset, runtime, "calibration", (runtime.name,))
        names = (runtime.name,) * bool(own)
        if len(own) < ENOUGH:
            names += BORROW.get(runtime.name, ())
        train = own + rows_for(args.dataset, runtime, "calibration", names[bool(own) :])
        held = rows_for(args.dataset, runtime, "heldout", (runtime.name,))
        if not train:
            print(f"{runtime.name}: no calibration rows")
            continue
        free = ("compute", "memory", "op" if runtime.op_s else "kernel")
        # a fixed start, so the fit does not depend on the constants already in the file
        start = {"compute": 0.5, "memory": 0.7, "kernel": 5e-6 if "kernel" in free else 0.0,
                 "op": 10e-6 if "op" in free else 0.0}  # fmt: skip
        constants = calibrate.fit(train, start, free, rounds=30)
        fitted = calibrate.fitted_runtime(runtime, constants)
        fit_stats = calibrate.summary(train, constants)
        exact = calibrate.constants_of(fitted)
        held_stats = calibrate.summary(held, exact) if held else None
        print(
            f"{runtime.name}: fitted on {len(train)} rows of {', '.join(names)}: compute {fitted.compute_efficiency}"
            f" memory {fitted.memory_efficiency} kernel {float(fitted.kernel_s) * 1e6:.3g}us op "
            f"{float(fitted.op_s) * 1e6:.3g}us; fit {fit_stats}; held out {held_stats}"
        )
        path = ROOT / "runtimes" / f"{runtime.name}.yaml"
        text = path.read_text(encoding="utf-8")
        fresh = rendered(text, fitted, held_stats, names)
        if args.write:
            path.write_text(fresh, encoding="utf-8")
        elif fresh != text:
            stale.append(runtime.name)
        if args.rows and held:
            print(calibrate.residual_table(held, exact))
        ratios += [(r, exact) for r in held]
    print(f"all held-out rows, each under its own runtime: {overall(ratios)}")
    regimes = sorted({r.regime for r, _ in ratios})
    for regime in regimes:
        chosen = [(r, c) for r, c in ratios if r.regime == regime]
        print(f"  {regime}: {overall(chosen)}")
    if stale and not args.write:
        print(f"differ from a fresh fit: {', '.join(stale)} (run with --write)")
        return 1 if args.check else 0
    return 0


def overall(pairs: list) -> dict:
    """calibrate.summary over rows that each have their own runtime's constants."""
    import math
    import statistics

    ratios = sorted(r.measured_s / calibrate.predict(r, c) for r, c in pairs)
    logs = sorted(abs(math.log(x)) for x in ratios)
    q68 = logs[min(len(logs) - 1, math.ceil(0.68 * len(logs)) - 1)]
    return {"measurements": len(ratios), "median_ratio": round(statistics.median(ratios), 3),
            "within_25_pct": round(100 * sum(0.8 <= x <= 1.25 for x in ratios) / len(ratios)),
            "within_2x_pct": round(100 * sum(0.5 <= x <= 2 for x in ratios) / len(ratios)),
            "error_pct": round(100 * (math.exp(q68) - 1))}  # fmt: skip


def rendered(text: str, fitted: runtimes.Runtime, held: dict | None, names: tuple[str, ...]) -> str:
    """A runtime file's text with the fitted constants and the held-out figures put in."""

    def put(section: str, key: str, value: str) -> None:
        nonlocal text
        pattern = re.compile(rf"(^{section}:\n(?:  .*\n)*?  {key}: )[^\n#]*", re.M)
        if pattern.search(text):
            text = pattern.sub(lambda m: m.group(1) + value + " ", text, count=1)
        else:
            text = re.sub(rf"^{section}:\n", f"{section}:\n  {key}: {value}\n", text, count=1, flags=re.M)

    put("compute", "efficiency", str(float(fitted.compute_efficiency)))
    put("memory", "efficiency", str(float(fitted.memory_efficiency)))
    put("overhead", "kernel_us", f"{float(fitted.kernel_s) * 1e6:.3g}")
    put("overhead", "op_us", f"{float(fitted.op_s) * 1e6:.3g}")
    text = re.sub(r"^validation:\n(?:  .*\n)*", "", text, flags=re.M)
    if held:
        how = (
            f"fitted by scripts/fit_runtimes.py on the calibration rows of {', '.join(names)}; "
            f"measured on the {held['measurements']} held-out rows of {fitted.name}"
        )
        block = (
            f"validation:\n  error_pct: {held['error_pct']}\n  measurements: {held['measurements']}\n"
            f"  median_ratio: {held['median_ratio']}\n  within_25_pct: {held['within_25_pct']}\n"
            f'  within_2x_pct: {held["within_2x_pct"]}\n  how: "{how}"\n'
        )
        text = re.sub(r"^sources:", block + "sources:", text, count=1, flags=re.M)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


if __name__ == "__main__":
    sys.exit(main())
