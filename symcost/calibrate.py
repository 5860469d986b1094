"""``symcost calibrate``: fit a runtime's constants to measured latencies.

The measurements are a CSV with a header; the columns (those of ``benchmarks/latency/dataset.csv``):

- ``model``: a bundled architecture or an architecture file;
- ``set``: its variable values, ``N=1 H=224 W=224`` (space- or comma-separated; may be empty);
- ``phase``: ``inference`` (or empty, or ``-``), ``prefill``, ``decode``, ``train``;
- ``dtype``: the dtype the pass computes in (whose peak applies); ``measured_ms``: the measured latency
  of one pass, in milliseconds;
- optional ``weight_dtype`` and ``kv_dtype``: the formats the weights and the KV cache are stored in,
  when they differ from ``dtype`` (blank: ``dtype``); any format ``--weight-dtype`` takes, GGUF's
  included. A weight-only int4 Llama-2-7B that computes in bf16 is ``dtype=bf16, weight_dtype=int4``:
  its 6,738,415,616 weights are 6,738,415,616 × 4 / 8 = 3,369,207,808 bytes instead of 13,476,831,232;
- optional ``device`` and ``runtime`` (a row names its own device; ``--device`` fills the rows that do
  not; rows of another runtime than ``--runtime`` are skipped), ``split`` (``--split calibration``
  keeps only those rows), ``id``.

For each row symcost splits the network into kernels by the runtime's fusion rules and keeps each
kernel's terms at full efficiency (:func:`symcost.latency.kernel_terms`). The fit then chooses the
compute and memory efficiencies and the per-kernel (and per-op) overheads that minimise the sum of
squared log residuals, ``sum (ln measured - ln predicted)^2``, by coordinate descent with a
golden-section search per constant (no scipy). A log residual treats 2x too slow and 2x too fast
alike, so a few batch-1 rows cannot outweigh many large-batch ones by their size.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import UsageError
from .files import write_atomic
from .precision import Precision, check
from .runtimes import Runtime

#: The constants ``--fit`` may name, and their ranges.
PARAMETERS = {
    "compute": (0.02, 1.0),  # compute efficiency
    "memory": (0.02, 1.0),  # memory efficiency
    "kernel": (0.0, 200e-6),  # seconds per kernel
    "op": (0.0, 200e-6),  # seconds per dispatched op
}
REQUIRED = ("model", "dtype", "measured_ms")


@dataclass(frozen=True)
class Row:
    """One measurement and its kernels' terms at full efficiency."""

    label: str
    measured_s: float
    compute: tuple[float, ...]
    memory: tuple[float, ...]
    kernels: int
    ops: int
    where: str
    regime: str = ""  # the CSV's optional 'regime' column
    cast: tuple[float, ...] = ()  # each kernel's autocast weight casts, seconds at full bandwidth
    ops_each: tuple[int, ...] = ()  # each kernel's dispatched ops (with the runtime's overlap)
    overlap: bool = False  # the runtime's dispatch overlaps the GPU's work (see latency.kernel_time)


def read_rows(path: str, *, device: str | None, runtime: Runtime, split: str | None = None,
              device_files: tuple[str, ...] = ()) -> tuple[list[Row], list[str]]:  # fmt: skip
    """The CSV's usable rows under ``runtime``, and a note for each row left out (and why)."""
    from . import devices, latency
    from .files import read_limited
    from .inputs import graph, parse_assignments
    from .inputs import load as load_arch

    try:  # a regular file of at most MAX_READ_BYTES: never a FIFO that blocks, never /dev/zero
        text = read_limited(path, what="CSV file").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise UsageError(f"{path}: the header lacks {', '.join(missing)} (columns: model, set, phase, dtype, "
                         "measured_ms, and optionally weight_dtype, kv_dtype, device, runtime, split, id)")  # fmt: skip
    rows, skipped = [], []
    for number, raw in enumerate(reader, start=2):
        where = f"{path}:{number}"
        label = raw.get("id") or f"line {number}"
        if split and raw.get("split", "") != split:
            continue
        if raw.get("runtime") and raw["runtime"] != runtime.name:
            continue
        device_name = raw.get("device") or device
        if not device_name:
            raise UsageError(f"{where}: no device (give --device, or a 'device' column)")
        try:
            measured = float(raw["measured_ms"]) / 1000
        except ValueError:
            raise UsageError(f"{where}: measured_ms must be a number, got '{raw['measured_ms']}'") from None
        if not measured > 0:
            raise UsageError(f"{where}: measured_ms must be positive")
        formats = {}
        for column in ("weight_dtype", "kv_dtype"):
            name = (raw.get(column) or "").strip()
            if name:
                try:
                    check(name, f"{column} format")
                except UsageError as exc:
                    raise UsageError(f"{where}: {exc.message}") from None
                formats[column] = name
        phase = (raw.get("phase") or "").strip()
        phase = "inference" if phase in ("", "-") else phase
        try:
            arch = load_arch(raw["model"])
            names = {v.name: v.symbol for v in arch.variables.values()}
            assignments = [p for p in (raw.get("set") or "").replace(",", " ").split() if p]
            values = parse_assignments(assignments, names)
            built, given = graph(arch, values, phase=phase, numeric=True)
            from .evaluation import evaluate

            result = evaluate(built, given)
            chosen = devices.find(device_name, device_files)
            mixed = Precision.of(raw["dtype"], weight=formats.get("weight_dtype"), kv=formats.get("kv_dtype"))
            terms = latency.kernel_terms(result, chosen, raw["dtype"], runtime, training=phase == "train",
                                         precision=mixed)  # fmt: skip
        except Exception as exc:  # a row symcost cannot price: said, not fitted
            from .errors import SymcostError

            if not isinstance(exc, SymcostError):
                raise
            skipped.append(f"{where} ({label}): {exc.message if hasattr(exc, 'message') else exc}")
            continue
        stored = "".join(f" {what}={formats[c]}" for what, c in (("weights", "weight_dtype"), ("kv", "kv_dtype"))
                         if c in formats)  # fmt: skip
        rows.append(Row(
            label=f"{label} {raw['model']} {' '.join(assignments)} {raw['dtype']}{stored} {device_name}".strip(),
            measured_s=measured,
            compute=tuple(float(t["compute"]) for _, t in terms),
            memory=tuple(float(t["memory"]) for _, t in terms),
            kernels=sum(t["kernels"] for _, t in terms),
            ops=sum(t["ops"] for _, t in terms),
            where=where,
            regime=raw.get("regime") or "",
            cast=tuple(float(t["cast"]) for _, t in terms),
            ops_each=tuple(t["ops"] for _, t in terms),
            overlap=runtime.overlap,
        ))  # fmt: skip
    return rows, skipped


def predict(row: Row, constants: dict[str, float]) -> float:
    """Seconds for one row: the kernels' ``max(compute / e_c, memory / e_m)`` plus the overheads
    (as :func:`symcost.latency.kernel_time`: with overlap, each kernel's dispatch or its work)."""
    ec, em, op = constants["compute"], constants["memory"], constants["op"]
    casts = row.cast or (0.0,) * len(row.compute)
    work = [max(c / ec, m / em) + k / em for c, m, k in zip(row.compute, row.memory, casts)]
    if row.overlap and row.ops_each:
        return sum(max(w, n * op) for w, n in zip(work, row.ops_each)) + row.kernels * constants["kernel"]
    return sum(work) + row.kernels * constants["kernel"] + row.ops * op


def loss(rows: list[Row], constants: dict[str, float]) -> float:
    return sum((math.log(r.measured_s) - math.log(predict(r, constants))) ** 2 for r in rows)


def _golden(f: Any, low: float, high: float, steps: int = 40) -> float:
    """The minimum of a one-dimensional function on [low, high] (golden-section search)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    best = min((f(a), a), (fc, c), (fd, d), (f(b), b))
    return best[1]


def fit(rows: list[Row], start: dict[str, float], free: tuple[str, ...], rounds: int = 8) -> dict[str, float]:
    """The constants in ``free`` that minimise :func:`loss`, from ``start`` (coordinate descent)."""
    if not rows:
        raise UsageError("no measurements to fit (check the runtime and split columns)")
    constants = dict(start)
    for _ in range(rounds):
        before = loss(rows, constants)
        for name in free:
            low, high = PARAMETERS[name]

            def at(value: float, name: str = name) -> float:
                return loss(rows, {**constants, name: value})

            if name in ("compute", "memory"):  # search the efficiencies on a log scale
                best = math.exp(_golden(lambda x: at(math.exp(x)), math.log(low), math.log(high)))
            else:
                best = _golden(at, low, high)
            if at(best) < at(constants[name]):
                constants[name] = best
        if before - loss(rows, constants) < 1e-12:
            break
    return constants


def summary(rows: list[Row], constants: dict[str, float]) -> dict[str, Any]:
    """Median measured ÷ predicted, the shares within 0.8–1.25x and 0.5–2x, and the error figure:
    ``error_pct`` is the 68th percentile of ``|ln(measured / predicted)|`` as a percentage
    (``exp(q) - 1``): about two in three measurements lie within ±error_pct of the estimate."""
    ratios = sorted(r.measured_s / predict(r, constants) for r in rows)
    logs = sorted(abs(math.log(x)) for x in ratios)
    q68 = logs[min(len(logs) - 1, math.ceil(0.68 * len(logs)) - 1)] if logs else 0.0
    return {
        "measurements": len(ratios),
        "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
        "within_25_pct": round(100 * sum(0.8 <= x <= 1.25 for x in ratios) / len(ratios)) if ratios else None,
        "within_2x_pct": round(100 * sum(0.5 <= x <= 2 for x in ratios) / len(ratios)) if ratios else None,
        "error_pct": round(100 * (math.exp(q68) - 1)),
    }


def constants_of(runtime: Runtime) -> dict[str, float]:
    return {"compute": float(runtime.compute_efficiency), "memory": float(runtime.memory_efficiency),
            "kernel": float(runtime.kernel_s), "op": float(runtime.op_s)}  # fmt: skip


def fitted_runtime(runtime: Runtime, constants: dict[str, float]) -> Runtime:
    """``runtime`` with the fitted constants, rounded to 3 significant digits (kept exact from there)."""

    def exact(value: float) -> Fraction:
        return Fraction(f"{value:.3g}")

    return replace(runtime, compute_efficiency=min(exact(constants["compute"]), Fraction(1)),
                   memory_efficiency=min(exact(constants["memory"]), Fraction(1)),
                   kernel_s=exact(constants["kernel"] * 1e6) / 10**6, op_s=exact(constants["op"] * 1e6) / 10**6)  # fmt: skip


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else repr(float(value))


def to_yaml(runtime: Runtime, fitted: dict[str, Any] | None = None) -> str:
    """A runtime file that :func:`symcost.runtimes.load_text` reads back to ``runtime``."""
    from .yamlwrite import scalar

    lines = [f"name: {scalar(runtime.name)}", f"summary: {scalar(runtime.summary)}"]
    if runtime.bound:
        lines.append("bound: true")
    lines.append(f"fuse: [{', '.join(runtime.fuse)}]")
    lines += [
        "overhead:",
        f"  kernel_us: {_number(runtime.kernel_s * 10**6)}",
        f"  op_us: {_number(runtime.op_s * 10**6)}",
    ]
    if runtime.overlap:
        lines.append("  overlap: true")
    if runtime.autocast:
        lines.insert(lines.index("overhead:"), "autocast: true")
    lines += ["compute:", f"  efficiency: {_number(runtime.compute_efficiency)}",
              f"  half_flops: {_number(runtime.half_flops)}", f"  waves: {'true' if runtime.waves else 'false'}"]  # fmt: skip
    if runtime.tiles:
        lines.append(f"  tiles: [{', '.join(f'[{r}, {c}]' for r, c in runtime.tiles)}]")
    lines += ["memory:", f"  efficiency: {_number(runtime.memory_efficiency)}"]
    lines += ["l2:", f"  fraction: {_number(runtime.l2_fraction)}"]
    if runtime.validation:
        lines.append("validation:")
        lines += [f"  {k}: {scalar(v) if isinstance(v, str) else v}" for k, v in runtime.validation.items()]
    if fitted:
        lines.append("fitted:")
        lines += [f"  {k}: {scalar(v) if isinstance(v, str) else v}" for k, v in fitted.items()]
    for key, items in (("sources", runtime.sources), ("notes", runtime.notes)):
        if items:
            lines.append(f"{key}:")
            lines += [f"  - {scalar(item)}" for item in items]
    return "\n".join(lines) + "\n"


def residual_table(rows: list[Row], constants: dict[str, float]) -> str:
    lines = [f"{'measurement':<58} {'measured':>10} {'predicted':>10} {'meas/pred':>9}"]
    for r in rows:
        predicted = predict(r, constants)
        lines.append(f"{r.label[:58]:<58} {1000 * r.measured_s:>8.3f}ms {1000 * predicted:>8.3f}ms "
                     f"{r.measured_s / predicted:>9.2f}")  # fmt: skip
    return "\n".join(lines)


def run(path: str, *, runtime: Runtime, device: str | None = None, output: str | None = None,
        free: tuple[str, ...] | None = None, split: str | None = None,
        device_files: tuple[str, ...] = ()) -> tuple[Runtime, str]:  # fmt: skip
    """Fit ``runtime``'s constants to the measurements in ``path``; write the fitted runtime file to
    ``output``. Returns the fitted runtime and the printed report."""
    if runtime.bound:
        raise UsageError("the roofline runtime has no constants to fit: calibrate eager, compiled, tensorrt, ...")
    if free is None:
        # a per-op cost (eager) and a per-kernel one are nearly collinear: fit the one the runtime uses
        free = ("compute", "memory", "op" if runtime.op_s else "kernel")
    for name in free:
        if name not in PARAMETERS:
            raise UsageError(f"--fit: unknown constant '{name}'; choose from {', '.join(PARAMETERS)}")
    rows, skipped = read_rows(path, device=device, runtime=runtime, split=split, device_files=device_files)
    start = constants_of(runtime)
    constants = fit(rows, start, free)
    stats = summary(rows, constants)
    fitted = fitted_runtime(runtime, constants)
    report = [residual_table(rows, constants), ""]
    report.append(f"fitted {', '.join(free)} of '{runtime.name}' on {len(rows)} measurements: "
                  f"compute efficiency {float(fitted.compute_efficiency):.3g}, memory efficiency "
                  f"{float(fitted.memory_efficiency):.3g}, {float(fitted.kernel_s) * 1e6:.3g} µs per kernel, "
                  f"{float(fitted.op_s) * 1e6:.3g} µs per op")  # fmt: skip
    report.append(f"measured ÷ predicted: median {stats['median_ratio']}, {stats['within_25_pct']}% within "
                  f"0.8–1.25x, {stats['within_2x_pct']}% within 0.5–2x (on the fitted rows: not a validation)")  # fmt: skip
    for note in skipped:
        report.append(f"skipped {note}")
    if output:
        write_atomic(output, inputs=[path], data=to_yaml(fitted, {"measurements": len(rows), "from": Path(path).name,
                                              "median_ratio": stats["median_ratio"]}))  # fmt: skip
        report.append(f"wrote {output}: use it with --runtime-file {output}")
    return fitted, "\n".join(report)
