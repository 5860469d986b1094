"""Sweep a design space: derive the closed forms once, compile them once, evaluate every point at once.

The grid is the product of each ``--over`` axis; each axis is its own numpy dimension, so a term
that depends on H alone is computed once per H, not once per point. Counts are exact integers
(int64 where interval bounds prove no overflow, Python ints otherwise, see :mod:`symcost.program`);
the timed metrics (``latency``) are float64 and are marked approximate.

>>> from symcost.arch import load_text
>>> from symcost.shapes import build
>>> g = build(load_text('''
... name: fc
... summary: one linear layer
... variables: {N: 1, D: 100}
... inputs: {x: [N, D]}
... layers: [{op: linear, out_features: 50}]
... ''', "fc.yaml"))
>>> s = sweep(g, [parse_axis("N=1,8"), parse_axis("D=100:300:100")], ["flops", "params"])
>>> [row for row in s.rows()]
[(1, 100, 10000, 5050), (1, 200, 20000, 10050), (1, 300, 30000, 15050), (8, 100, 80000, 5050), (8, 200, 160000, 10050), (8, 300, 240000, 15050)]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import inputs
from . import metrics as metrics_module
from .errors import UsageError, did_you_mean, speaks_api
from .program import DIVISION_BY_ZERO, Program

#: Points beyond which a metric that needs a per-point evaluation (``memory``) is refused.
MAX_EVALUATED_POINTS = 20_000
#: A grid is evaluated whole (every metric a numpy array of every point) and written whole, so its size is
#: what bounds memory: 2,000,000 points of ResNet-50 written as CSV stay under 400 MB (a CSV row is about
#: 150 bytes while it is built). Counted before any value is built.
MAX_POINTS = 2_000_000
#: A sweep prints (or writes) every point; the text formats other than CSV hold this many at most
#: (JSON of a million points takes over a gigabyte to build).
MAX_RENDERED_POINTS = 200_000
#: ``memory`` walks the graph once per point; a sweep that would take longer than this is refused
#: after timing its first points (DenseNet-201 takes ~80 ms a point, ResNet-50 ~4 ms).
MAX_EVALUATED_SECONDS = 30.0
MAX_VALUE_DIGITS = 30


@dataclass(frozen=True)
class Axis:
    """One swept variable and its values, in order."""

    name: str
    values: tuple[int, ...]


_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(\*?)(\d+))?$")


def parse_axis(text: str) -> Axis:
    """``H=64:1024:32`` (start:stop:step, stop included), ``N=1,8,64``, ``B=1:1024:*2`` (doubling).

    >>> parse_axis("H=64:256:64").values
    (64, 128, 192, 256)
    >>> parse_axis("B=1:64:*4").values
    (1, 4, 16, 64)
    """
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or not spec:
        raise UsageError(f"--over: expected NAME=START:STOP[:STEP] or NAME=V1,V2,..., got {text!r}")
    match = _RANGE.match(spec)
    if match:
        start, stop = int(match.group(1)), int(match.group(2))
        geometric, step = match.group(3) == "*", int(match.group(4) or 1)
        if step < 1 or (geometric and (step < 2 or start < 1)):
            raise UsageError(f"--over {name}: the step must be at least 1 (at least *2, from a positive start)")
        if stop < start:
            raise UsageError(f"--over {name}: the range {start}:{stop} is empty")
        count = _range_count(start, stop, step, geometric)
        if count > MAX_POINTS:  # counted before a single value is built
            raise UsageError(f"--over {name}: {count:,} values; a grid has at most {MAX_POINTS:,} points")
        values: list[int] = []
        value = start
        while value <= stop:
            values.append(value)
            if len(values) > MAX_POINTS:
                raise UsageError(f"--over {name}: more than {MAX_POINTS:,} values")
            value = value * step if geometric else value + step
        return Axis(name, tuple(values))
    if spec.count(",") >= MAX_POINTS:
        raise UsageError(f"--over {name}: more than {MAX_POINTS:,} values")
    if any(len(v.strip().lstrip("+-")) > MAX_VALUE_DIGITS for v in spec.split(",")):
        raise UsageError(f"--over {name}: values have at most {MAX_VALUE_DIGITS} digits")
    try:
        listed = tuple(int(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--over {name}: values must be whole numbers, got {spec!r}") from None
    if not listed:
        raise UsageError(f"--over {name}: no values")
    return Axis(name, listed)


def _range_count(start: int, stop: int, step: int, geometric: bool) -> int:
    """How many values ``start:stop:step`` (or ``:*step``) holds, without building them.

    >>> _range_count(64, 1024, 32, False), _range_count(1, 1024, 2, True), _range_count(1, 10**15, 1, False)
    (31, 11, 1000000000000000)
    """
    if not geometric:
        return (stop - start) // step + 1
    count, value = 0, start
    while value <= stop:  # at most log2(stop) steps
        count, value = count + 1, value * step
    return count


@dataclass
class Sweep:
    """A swept grid: the axes, each metric as a flat array in row order (first axis slowest)."""

    arch: str
    axes: tuple[Axis, ...]
    metrics: dict[str, Any]  # name -> 1-D numpy array
    valid: Any  # 1-D bool array, or None when every point is valid
    reasons: dict[int, str]  # point index -> why it is not valid (first invalid points only)
    mode: str  # how the exact metrics were computed: int64 or object
    approximate: tuple[str, ...] = ()  # metrics computed in float64
    fixed: Mapping[str, Any] = field(default_factory=dict)  # the other variables' values
    runtime_note: str = ""  # the runtime the timed metrics assume, and its expected error

    @property
    def size(self) -> int:
        count = 1
        for axis in self.axes:
            count *= len(axis.values)
        return count

    def _repr_html_(self) -> str:  # Jupyter: what --format html prints
        return self.render("html")

    def render(self, fmt: str = "table") -> str:
        """What the command prints in ``fmt`` (any of :data:`symcost.formats.FORMATS`)."""
        from . import formats
        from .report_analysis import render_sweep

        if formats.check(fmt) != "csv" and self.size > MAX_RENDERED_POINTS:
            raise UsageError(
                f"{self.size:,} points are too many to print as {fmt} (at most {MAX_RENDERED_POINTS:,}); "
                "write CSV (-o sweep.csv or --format csv)"
            )
        return render_sweep(self, fmt)

    def to_dict(self) -> Any:
        """What ``--format json`` prints, as Python data."""
        import json

        return json.loads(self.render("json"))

    def columns(self) -> dict[str, Any]:
        """Each axis as a flat array aligned with the metrics."""
        import numpy as np

        grids = np.meshgrid(*(np.array(a.values, dtype=object) for a in self.axes), indexing="ij")
        return {a.name: g.ravel() for a, g in zip(self.axes, grids)}

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """(axis values..., metric values...) per point; ``None`` for a metric at an invalid point."""
        import itertools

        names = list(self.metrics)
        arrays = [self.metrics[n] for n in names]
        for index, point in enumerate(itertools.product(*(a.values for a in self.axes))):
            ok = self.valid is None or bool(self.valid[index])
            yield (*point, *((_plain(arr[index]) if ok else None) for arr in arrays))


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (int stays int, float stays float)."""
    return value.item() if hasattr(value, "item") else value


def sweep(
    graph: Any,
    axes: Sequence[Axis],
    names: Sequence[str] = ("flops",),
    *,
    values: Mapping[str, Any] | None = None,
    setting: metrics_module.Setting | None = None,
    exact: bool = True,
) -> Sweep:
    """Every metric in ``names`` at every point of the grid of ``axes``; other variables at
    ``values`` or their defaults."""
    import numpy as np

    from . import evaluation

    setting = setting or metrics_module.Setting()
    names = metrics_module.check_names(names, device=setting.roof is not None)
    variables = graph.arch.variables
    given = dict(values or {})
    seen: set[str] = set()
    for axis in axes:
        if axis.name not in variables:
            raise UsageError(
                f"--over: '{graph.arch.name}' has no variable '{axis.name}'{did_you_mean(axis.name, variables)}; "
                f"its variables: {', '.join(variables)}"
            )
        if axis.name in seen:
            raise UsageError(f"--over {axis.name} is given twice")
        seen.add(axis.name)
        given.pop(axis.name, None)  # a phase's value for a swept variable yields to the sweep
        low = variables[axis.name].minimum
        if min(axis.values) < low:
            raise UsageError(f"--over {axis.name}: values must be at least {low}, got {min(axis.values)}")
    size = 1
    for axis in axes:
        size *= len(axis.values)
    if size > MAX_POINTS:
        raise UsageError(f"the grid has {size:,} points; at most {MAX_POINTS:,}")
    free = evaluation.keep_free(graph, given, seen)
    fixed = {k: v for k, v in free.items() if k not in seen}
    nodes = evaluation.symbolic_nodes(graph, free, setting.convention)
    subs = evaluation.resolve(graph, free, symbolic=True)
    symbols = [variables[a.name].symbol for a in axes]
    conditions, messages = metrics_module.validity(graph, subs)
    closed_names = [n for n in names if n in metrics_module.CLOSED]
    # a runtime other than the pure roofline times kernels point by point (its fusion and waves have no closed form)
    by_point = setting.runtime is not None and not setting.runtime.bound
    timed_names = [n for n in names if n in metrics_module.TIMED and not by_point]
    forms = metrics_module.closed_forms(nodes, closed_names + timed_names, setting, graph, free)
    shape = [len(a.values) for a in axes]
    columns = {}
    for i, axis in enumerate(axes):
        dims = [1] * len(axes)
        dims[i] = len(axis.values)
        columns[axis.name] = np.array(
            axis.values, dtype=object if max(map(abs, axis.values)) >= 2**62 else np.int64
        ).reshape(dims)
    out: dict[str, Any] = {}
    program = Program({n: forms[n] for n in closed_names}, symbols, conditions)
    run = program.run(columns, exact=exact)
    for name in closed_names:
        out[name] = np.broadcast_to(run.values[name], shape).ravel()
    approximate = tuple(closed_names) if not exact else ()
    if timed_names:
        timed = Program({n: forms[n] for n in timed_names}, symbols).run(columns, exact=False)
        for name in timed_names:
            out[name] = np.broadcast_to(timed.values[name], shape).ravel()
        approximate += tuple(timed_names)
    valid = None if run.valid is None else np.broadcast_to(run.valid, shape).ravel()
    reasons: dict[int, str] = {}
    if valid is not None and not valid.all():
        failed = np.broadcast_to(run.failed, shape).ravel()
        for index in np.flatnonzero(~valid)[:20]:
            code = int(failed[index])
            reasons[int(index)] = "division by zero" if code == DIVISION_BY_ZERO else messages[code]
    evaluated = [n for n in names if n in metrics_module.EVALUATED or (by_point and n in metrics_module.TIMED)]
    approximate += tuple(n for n in names if by_point and n in metrics_module.TIMED)  # printed as floats
    if evaluated:
        if size > MAX_EVALUATED_POINTS:
            raise UsageError(
                f"{', '.join(evaluated)} is evaluated point by point (a liveness walk); "
                f"sweep at most {MAX_EVALUATED_POINTS:,} points with it, not {size:,}"
            )
        import itertools
        import time

        arrays = {n: np.zeros(size, dtype=object) for n in evaluated}
        started = time.perf_counter()
        for index, point in enumerate(itertools.product(*(a.values for a in axes))):
            if index == 8 and size > 8:
                projected = (time.perf_counter() - started) / 8 * size
                if projected > MAX_EVALUATED_SECONDS:
                    fits = max(1, int(size * MAX_EVALUATED_SECONDS / projected))
                    raise UsageError(
                        f"{', '.join(evaluated)} is evaluated point by point: {size:,} points of "
                        f"'{graph.arch.name}' would take about {projected:,.0f} s; sweep at most about "
                        f"{fits:,} points of it (the budget is {MAX_EVALUATED_SECONDS:.0f} s)"
                    )
            if valid is not None and not valid[index]:
                continue
            at = metrics_module.at_point(
                graph, {**fixed, **dict(zip([a.name for a in axes], point))}, evaluated, setting
            )
            for n in evaluated:
                arrays[n][index] = at[n]
        out.update(arrays)
    ordered = {n: out[n] for n in names}
    return Sweep(graph.arch.name, tuple(axes), ordered, valid, reasons, run.mode if exact else "float64",
                 approximate, fixed, metrics_module.runtime_note(setting, names))  # fmt: skip


# ---- the whole-network function: symcost.sweep(...) -------------------------------------


@speaks_api
def run(arch: Any, over: Mapping[str, Any] | Sequence[str], metrics: str | Sequence[str] = "flops", *,
        values: Mapping[str, Any] | None = None, exact: bool = True, options: inputs.Options | None = None,
        **more: Any) -> Any:  # fmt: skip
    """Metrics over a grid (``symcost sweep``): ``over`` maps a variable to its values or a range
    text (``{"H": "64:1024:32", "N": [1, 8]}``), or is a list of ``NAME=RANGE`` texts.

    >>> s = run("resnet50", {"H": [224, 448]}, "flops", W="H")
    >>> [int(x) for x in s.metrics["flops"]]
    [8178368512, 32701186048]
    """

    options = options or inputs.Options()
    built, given = inputs.graph(arch, {**(values or {}), **more}, phase=options.phase)
    if isinstance(over, Mapping):
        for k, v in over.items():
            if not isinstance(v, str) and not (
                isinstance(v, Sequence) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            ):
                raise UsageError(f"--over {k}: give a range text ('1:64') or a list of whole numbers, not {v!r:.60}")
        texts = [f"{k}={v}" if isinstance(v, str) else f"{k}={','.join(str(int(x)) for x in v)}"
                 for k, v in over.items()]  # fmt: skip
    else:
        texts = list(over)
    axes = [parse_axis(text) for text in texts]
    setting = options.setting()
    return sweep(built, axes, inputs.metric_names(metrics), values=given, setting=setting, exact=exact)


inputs.callable_module(__name__, run)
