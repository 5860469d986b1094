"""Fit each bundled runtime's constants on the calibration half of benchmarks/latency/dataset.csv and measure
its error on the held-out half; with --write, store both in runtimes/*.yaml.

    PYTHONPATH=$PWD python scripts/fit_runtimes.py [--dataset PATH] [--write]

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
BORROW = {"tensorrt": ("compiled", "tensorrt-llm"), "onnxruntime": ("compiled", "tensorrt-llm"),
          "vllm": ("tensorrt-llm",), "llama.cpp": ("compiled",)}  # fmt: skip


def rows_for(path: str, runtime: runtimes.Runtime, split: str, names: tuple[str, ...]) -> list:
    rows = []
    for name in names:
        borrowed = runtime if name == runtime.name else runtime.__class__(**{**runtime.__dict__, "name": name})
        found, _ = calibrate.read_rows(path, device=None, runtime=borrowed, split=split)
        rows += found
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(ROOT / "benchmarks" / "latency" / "dataset.csv"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    for runtime in runtimes.bundled():
        if runtime.bound:
            continue
        own = rows_for(args.dataset, runtime, "calibration", (runtime.name,))
        names = (runtime.name,) if own else BORROW.get(runtime.name, ())
        train = own or rows_for(args.dataset, runtime, "calibration", names)
        held = rows_for(args.dataset, runtime, "heldout", (runtime.name,))
        if not train:
            print(f"{runtime.name}: no calibration rows")
            continue
        free = ("compute", "memory", "op" if runtime.op_s else "kernel")
        constants = calibrate.fit(train, calibrate.constants_of(runtime), free)
        fitted = calibrate.fitted_runtime(runtime, constants)
        fit_stats = calibrate.summary(train, constants)
        exact = calibrate.constants_of(fitted)
        held_stats = calibrate.summary(held, exact) if held else None
        print(
            f"{runtime.name}: fitted on {len(train)} rows of {', '.join(names)}: compute {fitted.compute_efficiency}"
            f" memory {fitted.memory_efficiency} kernel {float(fitted.kernel_s) * 1e6:.3g}us op "
            f"{float(fitted.op_s) * 1e6:.3g}us; fit {fit_stats}; held out {held_stats}"
        )
        if args.write:
            write(runtime, fitted, held_stats, names)


def write(runtime: runtimes.Runtime, fitted: runtimes.Runtime, held: dict | None, names: tuple[str, ...]) -> None:
    path = ROOT / "runtimes" / f"{runtime.name}.yaml"
    text = path.read_text(encoding="utf-8")

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
            f"measured on the {held['measurements']} held-out rows of {runtime.name}"
        )
        block = (
            f"validation:\n  error_pct: {held['error_pct']}\n  measurements: {held['measurements']}\n"
            f"  median_ratio: {held['median_ratio']}\n  within_25_pct: {held['within_25_pct']}\n"
            f'  within_2x_pct: {held["within_2x_pct"]}\n  how: "{how}"\n'
        )
        text = re.sub(r"^sources:", block + "sources:", text, count=1, flags=re.M)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
