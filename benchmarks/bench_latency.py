"""How close is symcost's latency to published measurements? Measured ÷ predicted on benchmarks/latency/dataset.csv.

Every row of the dataset (a model, its shape, dtype, device and runtime, and the milliseconds a vendor or project
published) is predicted with :func:`symcost.api.estimate`; the ratio measured ÷ predicted is 1 for a perfect
prediction, above 1 where the real run is slower than symcost says. The held-out half and the calibration half are
reported apart (runtimes are tuned on the calibration half only), overall and by regime:

    python benchmarks/bench_latency.py                     # both halves, by regime
    python benchmarks/bench_latency.py --plot scatter.png  # and the predicted-vs-measured scatter
    python benchmarks/bench_latency.py --rows              # and every row's prediction

When ``estimate`` takes a ``runtime`` argument, each row is predicted under its own runtime (a runtime symcost
does not know falls back to the default, and the output counts those rows); otherwise every row is priced with
the plain roofline, and the output says so. Rows whose device or model symcost lacked when they were written (the
``pending`` column) are tried all the same, and skipped and counted while symcost still lacks it.

A row may store its weights or its KV cache at another format than it computes in: the optional ``weight_dtype``
and ``kv_dtype`` columns (blank: the row's ``dtype``) go to ``estimate(weight_dtype=..., kv_dtype=...)``. gpt-fast's
int4 Llama-2-7B computes in bf16 (``dtype=bf16``, ``weight_dtype=int4``): bf16's peak applies, and every weight it
reads is half a byte instead of two.
"""

from __future__ import annotations

import argparse
import csv
import functools
import inspect
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATASET = ROOT / "benchmarks" / "latency" / "dataset.csv"
REGIMES = ("cnn-b1", "cnn-large-batch", "transformer-prefill", "llm-decode-b1", "llm-decode-large-batch", "edge")
SPLITS = ("heldout", "calibration")
TARGET = "held-out target: median 0.9-1.1, >= 60% within 0.8-1.25x, >= 95% within 0.5-2x"


@dataclass
class Result:
    row: dict[str, str]
    predicted_ms: float | None  # None: not predicted (see why)
    why: str = ""  # why not predicted, or which runtime was assumed
    runtime: str = "roofline"

    @property
    def ratio(self) -> float:
        assert self.predicted_ms is not None
        return float(self.row["measured_ms"]) / self.predicted_ms


def load(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def bindings(text: str) -> dict[str, int]:
    """``"B=1 S=128 ctx=0"`` → ``{"B": 1, "S": 128, "ctx": 0}`` (whole numbers only, as the dataset has)."""
    values: dict[str, int] = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep or not name or not value.lstrip("-").isdigit():
            raise ValueError(f"bad binding '{item}' in '{text}': expected NAME=INTEGER")
        values[name] = int(value)
    return values


@functools.cache
def _runtime_names() -> frozenset[str]:
    from symcost import runtimes

    return frozenset(r.name for r in runtimes.bundled())


def takes_runtime() -> bool:
    from symcost import api

    return "runtime" in inspect.signature(api.estimate).parameters


def predict(row: dict[str, str], with_runtime: bool, device_files: tuple[str, ...] = (), roofline: bool = False
            ) -> Result:  # fmt: skip
    """One row's prediction, or the reason there is none.

    A row marked ``pending`` (a device, model or runtime symcost did not ship when the row was written) is still
    tried: once symcost has it, the row is predicted like any other.
    """
    from symcost import api
    from symcost.errors import SymcostError

    if "runtime" in row.get("pending", "").split() and row["runtime"] not in _runtime_names():
        # what the row measures (a Triton client's time, transfers included) no runtime models yet: under the
        # roofline too it would compare unlike with unlike
        return Result(row, None, f"pending: {row['pending'].strip()}")
    phase = row["phase"] if row["phase"] in ("prefill", "decode") else "inference"
    kwargs = {"dtype": row["dtype"], "phase": phase, "values": bindings(row["set"]), "device_files": device_files,
              "weight_dtype": row.get("weight_dtype") or None, "kv_dtype": row.get("kv_dtype") or None}  # fmt: skip
    runtime = "roofline"
    try:
        if with_runtime:
            wanted = "roofline" if roofline else row["runtime"]
            try:
                est = api.estimate(row["model"], row["device"], runtime=wanted, **kwargs)
                runtime = wanted
            except SymcostError as exc:
                if f"runtime '{wanted}'" not in str(exc):
                    raise
                est = api.estimate(row["model"], row["device"], **kwargs)
                runtime = "default"
        else:
            est = api.estimate(row["model"], row["device"], **kwargs)
    except SymcostError as exc:
        pending = row.get("pending", "").strip()
        if pending:
            return Result(row, None, f"pending: {pending}")
        return Result(row, None, f"error: {str(exc).splitlines()[0]}")
    return Result(row, float(est.performance["latency_s"]) * 1000, runtime=runtime)


def summary(results: list[Result]) -> dict[str, float]:
    ratios = [r.ratio for r in results]
    n = len(ratios)
    return {
        "n": n,
        "median": statistics.median(ratios),
        "within_25": 100 * sum(0.8 <= x <= 1.25 for x in ratios) / n,
        "within_2x": 100 * sum(0.5 <= x <= 2 for x in ratios) / n,
    }


def table(results: list[Result]) -> list[str]:
    lines = [f"{'':26} {'rows':>5} {'median meas/pred':>17} {'0.8-1.25x':>10} {'0.5-2x':>8}"]
    groups = [("all", results)] + [(g, [r for r in results if r.row["regime"] == g]) for g in REGIMES]
    groups += [(g, [r for r in results if r.row["regime"] == g]) for g in sorted({r.row["regime"] for r in results})
               if g not in REGIMES]  # fmt: skip
    for name, members in groups:
        if not members:
            continue
        s = summary(members)
        lines.append(f"{name:26} {s['n']:5d} {s['median']:17.2f} {s['within_25']:9.0f}% {s['within_2x']:7.0f}%")
    return lines


def precision(row: dict[str, str]) -> str:
    """The row's dtype and any storage format that differs: ``bf16``, ``bf16 (weights int4)``."""
    parts = [f"{what} {row[column]}" for what, column in (("weights", "weight_dtype"), ("KV", "kv_dtype"))
             if row.get(column) and row[column] != row["dtype"]]  # fmt: skip
    return row["dtype"] + (f" ({', '.join(parts)})" if parts else "")


def markdown(rows: list[dict[str, str]]) -> str:
    """The dataset as a Markdown table (docs/latency-validation.md shows it; the CSV has the notes)."""
    lines = ["| id | model | set | phase | device | dtype | runtime | measured ms | regime | split | source |",
             "| --- | --- | --- | --- | --- | --- | --- | ---: | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        url = r["source"].split()[0]
        device = r["device"] + (" (pending)" if "device" in r["pending"] else "")
        model = r["model"] + (" (pending)" if "model" in r["pending"] else "")
        runtime = r["runtime"] + (" (pending)" if "runtime" in r["pending"] else "")
        lines.append(f"| {r['id']} | {model} | `{r['set']}` | {r['phase']} | {device} | {precision(r)} | "
                     f"{runtime} | {r['measured_ms']} | {r['regime']} | {r['split']} | [{r['source_group']}]({url}) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def scatter(results: list[Result], path: str, title: str) -> None:
    """Predicted vs measured, log-log, the y = x line, regimes in colour, held-out filled, calibration hollow."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 7), dpi=120)
    ax = fig.add_subplot()
    colours = dict(zip(REGIMES, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")))
    for regime in REGIMES:
        for split, filled in (("heldout", True), ("calibration", False)):
            pts = [r for r in results if r.row["regime"] == regime and r.row["split"] == split]
            if not pts:
                continue
            c = colours[regime]
            ax.scatter([r.predicted_ms for r in pts], [float(r.row["measured_ms"]) for r in pts], s=36,
                       facecolors=c if filled else "none", edgecolors=c, label=f"{regime} ({split})")  # fmt: skip
    values = [v for r in results for v in (r.predicted_ms, float(r.row["measured_ms"]))]
    lo, hi = 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="measured = predicted")
    for factor, style in ((2, ":"), (1.25, "--")):
        for f in (factor, 1 / factor):
            ax.plot([lo, hi], [lo * f, hi * f], color="grey", linewidth=0.8, linestyle=style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("predicted by symcost (ms)")
    ax.set_ylabel("published measurement (ms)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="major", linewidth=0.3)
    fig.savefig(path, metadata={"Software": None})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DATASET), help="the dataset CSV (default: benchmarks/latency/dataset.csv)")
    p.add_argument("--plot", metavar="PNG", help="write the predicted-vs-measured scatter plot")
    p.add_argument("--rows", action="store_true", help="print every row's prediction")
    p.add_argument("--roofline", action="store_true", help="price every row with the plain roofline")
    p.add_argument("--markdown", action="store_true", help="print the dataset as a Markdown table and stop")
    p.add_argument("--device-file", action="append", default=[], metavar="YAML", help="a device file the rows name")
    args = p.parse_args(argv)

    rows = load(Path(args.data))
    if args.markdown:
        print(markdown(rows), end="")
        return 0
    with_runtime = takes_runtime()
    results = [predict(row, with_runtime, tuple(args.device_file), args.roofline) for row in rows]
    done = [r for r in results if r.predicted_ms is not None]
    skipped = [r for r in results if r.predicted_ms is None]

    if with_runtime and not args.roofline:
        fallback = sum(r.runtime == "default" for r in done)
        print(f"runtimes: each row's own runtime ({fallback} rows with a runtime symcost lacks use the default)")
    else:
        why = "--roofline" if args.roofline else "this symcost's estimate() takes no runtime argument"
        print(f"runtimes: none ({why}); every row is priced with the roofline (max of compute and memory time)")
    shown = Path(args.data).resolve()
    shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    print(f"rows: {len(rows)} in {shown}; predicted {len(done)}; skipped {len(skipped)}")
    for reason in sorted({r.why for r in skipped}):
        ids = [r.row["id"] for r in skipped if r.why == reason]
        print(f"  skipped {len(ids)} ({reason}): {' '.join(ids)}")
    print("ratio = measured / predicted (1 = exact; > 1: slower than predicted)")
    for split in SPLITS + tuple(sorted({r.row["split"] for r in done} - set(SPLITS))):
        members = [r for r in done if r.row["split"] == split]
        if members:
            print(f"\n{split}:")
            print("\n".join(table(members)))
    print(f"\n{TARGET}")
    if args.rows:
        print(f"\n{'id':6} {'model':18} {'device':16} {'dtype':20} {'runtime':13} {'measured':>10} {'predicted':>10} "
              f"{'ratio':>7}")  # fmt: skip
        for r in done:
            row = r.row
            print(f"{row['id']:6} {row['model']:18} {row['device']:16} {precision(row):20} {row['runtime']:13} "
                  f"{float(row['measured_ms']):10.4g} {r.predicted_ms:10.4g} {r.ratio:7.2f}")  # fmt: skip
    if args.plot and done:
        held = [r for r in done if r.row["split"] == "heldout"]
        s = summary(held) if held else summary(done)
        label = "held out" if held else "all"
        runtime = "per-row runtimes" if with_runtime and not args.roofline else "roofline"
        title = (
            f"symcost ({runtime}) vs {len(done)} published measurements\n{label}: median measured/predicted "
            f"{s['median']:.2f}, {s['within_25']:.0f}% within 0.8-1.25x, {s['within_2x']:.0f}% within 0.5-2x"
        )
        scatter(done, args.plot, title)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
