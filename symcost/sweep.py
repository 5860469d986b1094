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
#: A grid held whole (a :class:`Sweep`, and every format but CSV, which print or plot every point at once) has at
#: most this many points: 2,000,000 points of ResNet-50 stay under 400 MB. Counted before any value is built.
MAX_POINTS = 2_000_000
#: A grid written as CSV (``-o FILE.csv``, ``--format csv``) is evaluated and written chunk by chunk, so its memory
#: does not grow with its size; what bounds it is time: 10**7 rows of ResNet-50 take ~3 s, so 10**9 points take
#: minutes. Counted before any value is built.
MAX_STREAMED_POINTS = 1_000_000_000
#: Points evaluated at once: each metric is an array of at most this many values, and the CSV text of at most
#: this many rows is held at a time (about 150 bytes a row).
CHUNK = 65_536
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
    values: Sequence[int]  # a tuple; a range for an arithmetic range longer than MAX_POINTS (never built)


_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(\*?)(\d+))?$")


def parse_axis(text: str, limit: int = MAX_POINTS) -> Axis:
    """``H=64:1024:32`` (start:stop:step, stop included), ``N=1,8,64``, ``B=1:1024:*2`` (doubling).

    ``limit`` is the most points the grid may have (:data:`MAX_STREAMED_POINTS` for streamed CSV);
    an arithmetic range longer than :data:`MAX_POINTS` (or, streamed, than :data:`CHUNK`) is kept as
    a ``range``, never built.

    >>> parse_axis("H=64:256:64").values
    (64, 128, 192, 256)
    >>> parse_axis("B=1:64:*4").values
    (1, 4, 16, 64)
    >>> parse_axis("N=1:10000000", limit=MAX_STREAMED_POINTS).values
    range(1, 10000001)
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
        if count > limit:  # counted before a single value is built
            raise UsageError(f"--over {name}: {count:,} values; {_too_many(limit)}")
        if not geometric and (count > MAX_POINTS or (limit > MAX_POINTS and count > CHUNK)):
            return Axis(name, range(start, stop + 1, step))  # streamed: its values are computed chunk by chunk
        values: list[int] = []
        value = start
        while value <= stop:
            values.append(value)
            if len(values) > limit:
                raise UsageError(f"--over {name}: more than {limit:,} values")
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


def _too_many(limit: int) -> str:
    """The end of the message for a grid past ``limit`` points."""
    if limit >= MAX_STREAMED_POINTS:
        return f"a grid has at most {limit:,} points"
    return (
        f"a grid has at most {limit:,} points here; write it as CSV with -o FILE.csv (streamed=True in Python), "
        f"chunk by chunk, for up to {MAX_STREAMED_POINTS:,}"
    )


def _extent(values: Sequence[int]) -> tuple[int, int]:
    """The lowest and highest value of an axis (a range's without walking it).

    >>> _extent(range(1, 10**9, 3)), _extent((8, 1, 64))
    ((1, 999999997), (1, 64))
    """
    if isinstance(values, range):
        return (values[0], values[-1]) if values.step > 0 else (values[-1], values[0])
    return min(values), max(values)


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


@dataclass
class Chunk:
    """Consecutive points ``start .. start + size - 1`` of a grid (row order), evaluated together."""

    start: int
    size: int
    columns: dict[str, Any]  # axis name -> 1-D array of the axis value at each point
    metrics: dict[str, Any]  # name -> 1-D array
    valid: Any  # 1-D bool array, or None when every point is valid
    failed: Any  # 1-D int array of why (a condition index or DIVISION_BY_ZERO), or None


class Plan:
    """A sweep ready to run: the closed forms derived and compiled once, the grid counted, nothing evaluated.

    :meth:`chunks` evaluates it chunk by chunk, in row order (first axis slowest), each chunk with the
    same compiled programs; the int64-or-Python-ints choice is made from the whole grid's ranges, so
    every chunk is computed as the whole grid would be. The last axes are kept as numpy dimensions
    while they fit in a chunk (a term that depends on them alone is computed once per value); the
    first ones are walked by flat index. :meth:`write_csv` writes the rows as they come.
    """

    def __init__(self, graph: Any, axes: Sequence[Axis], names: Sequence[str], values: Mapping[str, Any] | None,
                 setting: metrics_module.Setting | None, exact: bool, limit: int) -> None:  # fmt: skip
        from . import evaluation

        setting = setting or metrics_module.Setting()
        names = metrics_module.check_names(names, device=setting.roof is not None)
        variables = graph.arch.variables
        given = dict(values or {})
        seen: set[str] = set()
        for axis in axes:
            if axis.name not in variables:
                raise UsageError(
                    f"--over: '{graph.arch.name}' has no variable '{axis.name}'"
                    f"{did_you_mean(axis.name, variables)}; its variables: {', '.join(variables)}"
                )
            if axis.name in seen:
                raise UsageError(f"--over {axis.name} is given twice")
            seen.add(axis.name)
            given.pop(axis.name, None)  # a phase's value for a swept variable yields to the sweep
            low = variables[axis.name].minimum
            if _extent(axis.values)[0] < low:
                raise UsageError(f"--over {axis.name}: values must be at least {low}, got {_extent(axis.values)[0]}")
        size = 1
        for axis in axes:
            size *= len(axis.values)
        if size > limit:  # counted before any value is built
            raise UsageError(f"the grid has {size:,} points; {_too_many(limit)}")
        # a runtime other than the pure roofline times kernels point by point (its fusion and waves have no closed form)
        by_point = setting.runtime is not None and not setting.runtime.bound
        evaluated = [n for n in names if n in metrics_module.EVALUATED or (by_point and n in metrics_module.TIMED)]
        if evaluated and size > MAX_EVALUATED_POINTS:
            raise UsageError(
                f"{', '.join(evaluated)} is evaluated point by point (a liveness walk); "
                f"sweep at most {MAX_EVALUATED_POINTS:,} points with it, not {size:,}"
            )
        free = evaluation.keep_free(graph, given, seen)
        self.graph, self.axes, self.names, self.size = graph, tuple(axes), names, size
        self.setting, self.exact = setting, exact
        self.arch = graph.arch.name
        self.fixed = {k: v for k, v in free.items() if k not in seen}
        nodes = evaluation.symbolic_nodes(graph, free, setting.convention)
        subs = evaluation.resolve(graph, free, symbolic=True)
        symbols = [variables[a.name].symbol for a in axes]
        conditions, self._messages = metrics_module.validity(graph, subs)
        self.closed = [n for n in names if n in metrics_module.CLOSED]
        self.timed = [n for n in names if n in metrics_module.TIMED and not by_point]
        self.evaluated = evaluated
        forms = metrics_module.closed_forms(nodes, self.closed + self.timed, setting, graph, free)
        self._program = Program({n: forms[n] for n in self.closed}, symbols, conditions)
        self._timed_program = Program({n: forms[n] for n in self.timed}, symbols) if self.timed else None
        self._ranges = {a.name: _extent(a.values) for a in axes}
        self._dtypes = {a.name: object if max(map(abs, self._ranges[a.name])) >= 2**62 else "int64" for a in axes}
        approximate = tuple(self.closed) if not exact else ()
        approximate += tuple(self.timed)
        self.approximate = approximate + tuple(n for n in names if by_point and n in metrics_module.TIMED)
        self.mode = "float64"
        if exact:
            self.mode = "int64" if self._program.fits_int64(self._ranges) else "object"
        self.runtime_note = metrics_module.runtime_note(setting, names)
        self.reasons: dict[int, str] = {}  # point index -> why it is not valid (the first 20), filled as chunks run
        self._started: float | None = None
        self._arrays: dict[str, Any] = {}  # each listed axis's values as an array, built once

    def _column(self, index: int, positions: Any) -> Any:
        """The values of axis ``index`` at ``positions`` (an int64 array of positions along it)."""
        import numpy as np

        axis = self.axes[index]
        dtype = self._dtypes[axis.name]
        if isinstance(axis.values, range) and dtype == "int64":
            return axis.values.start + axis.values.step * positions.astype(np.int64)
        if isinstance(axis.values, range):
            return np.array([axis.values[i] for i in positions.tolist()], dtype=object)
        if axis.name not in self._arrays:
            self._arrays[axis.name] = np.array(axis.values, dtype=dtype)
        return self._arrays[axis.name][positions]

    def chunks(self, chunk: int = CHUNK) -> Iterator[Chunk]:
        """Every point, ``chunk`` points at most at a time (fewer where the last axes do not divide it)."""
        import numpy as np

        sizes = [len(a.values) for a in self.axes]
        lead, tail = len(sizes), 1  # the axes from ``lead`` on stay numpy dimensions, ``tail`` points in all
        while lead > 0 and tail * sizes[lead - 1] <= chunk:
            lead -= 1
            tail *= sizes[lead]
        prefixes = 1
        for n in sizes[:lead]:
            prefixes *= n
        group = max(1, chunk // tail)
        trailing = len(sizes) - lead
        for first in range(0, prefixes, group):
            last = min(prefixes, first + group)
            shape = (last - first, *sizes[lead:])
            positions = np.unravel_index(np.arange(first, last, dtype=np.int64), sizes[:lead]) if lead else ()
            columns = {}
            for i, axis in enumerate(self.axes):
                if i < lead:
                    columns[axis.name] = self._column(i, positions[i]).reshape((-1,) + (1,) * trailing)
                else:
                    dims = [1] * (1 + trailing)
                    dims[1 + i - lead] = sizes[i]
                    columns[axis.name] = self._column(i, np.arange(sizes[i])).reshape(dims)
            yield self._evaluate(first * tail, shape, columns)

    def _evaluate(self, start: int, shape: tuple[int, ...], columns: dict[str, Any]) -> Chunk:
        import itertools

        import numpy as np

        count = 1
        for n in shape:
            count *= n
        out: dict[str, Any] = {}
        run = self._program.run(columns, exact=self.exact, ranges=self._ranges)
        for name in self.closed:
            out[name] = np.broadcast_to(run.values[name], shape).ravel()
        if self._timed_program is not None:
            timed = self._timed_program.run(columns, exact=False)
            for name in self.timed:
                out[name] = np.broadcast_to(timed.values[name], shape).ravel()
        valid = failed = None
        if run.valid is not None:
            valid = np.broadcast_to(run.valid, shape).ravel()
            failed = np.broadcast_to(run.failed, shape).ravel()
            if len(self.reasons) < 20 and not valid.all():
                for index in np.flatnonzero(~valid)[: 20 - len(self.reasons)]:
                    code = int(failed[index])
                    why = "division by zero" if code == DIVISION_BY_ZERO else self._messages[code]
                    self.reasons[start + int(index)] = why
        flat = {a.name: np.broadcast_to(columns[a.name], shape).ravel() for a in self.axes}
        if self.evaluated:
            import time

            arrays = {n: np.zeros(count, dtype=object) for n in self.evaluated}
            names = [a.name for a in self.axes]
            points = zip(*(flat[n].tolist() for n in names)) if names else itertools.repeat((), count)
            for local, point in enumerate(points):
                index = start + local
                if index == 0:
                    self._started = time.perf_counter()
                if index == 8 and self.size > 8 and self._started is not None:
                    projected = (time.perf_counter() - self._started) / 8 * self.size
                    if projected > MAX_EVALUATED_SECONDS:
                        fits = max(1, int(self.size * MAX_EVALUATED_SECONDS / projected))
                        raise UsageError(
                            f"{', '.join(self.evaluated)} is evaluated point by point: {self.size:,} points of "
                            f"'{self.arch}' would take about {projected:,.0f} s; sweep at most about "
                            f"{fits:,} points of it (the budget is {MAX_EVALUATED_SECONDS:.0f} s)"
                        )
                if valid is not None and not valid[local]:
                    continue
                at = metrics_module.at_point(self.graph, {**self.fixed, **dict(zip(names, point))},
                                             self.evaluated, self.setting)  # fmt: skip
                for n in self.evaluated:
                    arrays[n][local] = at[n]
            for n in self.evaluated:
                if n in self.approximate:  # a runtime's per-point latency: float64 like every timed metric
                    arrays[n] = arrays[n].astype(np.float64)
            out.update(arrays)
        return Chunk(start, count, flat, {n: out[n] for n in self.names}, valid, failed)

    def collect(self, chunk: int = CHUNK) -> Sweep:
        """The whole grid as a :class:`Sweep` (the chunks joined; hold at most :data:`MAX_POINTS`)."""
        import numpy as np

        parts = list(self.chunks(chunk))
        metrics = {n: np.concatenate([p.metrics[n] for p in parts]) for n in self.names}
        valid = None
        if any(p.valid is not None for p in parts):
            valid = np.concatenate([np.ones(p.size, dtype=bool) if p.valid is None else p.valid for p in parts])
        return Sweep(self.arch, self.axes, metrics, valid, dict(self.reasons), self.mode, self.approximate,
                     self.fixed, self.runtime_note)  # fmt: skip

    def header(self) -> str:
        return ",".join([a.name for a in self.axes] + list(self.names))

    def csv_chunks(self, chunk: int = CHUNK) -> Iterator[str]:
        """The CSV text, header first, then each chunk's rows, every line ending with a newline: the same
        text as ``Sweep.render("csv") + "\\n"``, never more than one chunk of it held."""
        import numpy as np

        yield self.header() + "\n"
        width = len(self.axes) + len(self.names)
        for part in self.chunks(chunk):
            columns = [*part.columns.values(), *part.metrics.values()]
            whole = part.valid is None or bool(part.valid.all())
            if whole and all(
                c.dtype.kind == "i" or (c.dtype.kind == "O" and n not in self.evaluated)
                for n, c in part.metrics.items()
            ):
                line = ",".join(["%d"] * width) + "\n"
                yield (line * part.size) % tuple(np.column_stack(columns).ravel().tolist())
                continue
            lists = [c.tolist() for c in columns]
            ok = [True] * part.size if part.valid is None else part.valid.tolist()
            axes = len(self.axes)
            lines = []
            for i in range(part.size):
                cells = [str(lists[j][i]) for j in range(axes)]
                for j in range(axes, width):
                    v = lists[j][i] if ok[i] else None
                    cells.append("" if v is None else (repr(v) if isinstance(v, float) else str(v)))
                lines.append(",".join(cells) + "\n")
            yield "".join(lines)

    def write_csv(self, handle: Any, chunk: int = CHUNK) -> None:
        """Write the CSV to ``handle`` (a binary file, as :func:`symcost.files.write_atomic` gives)."""
        for text in self.csv_chunks(chunk):
            handle.write(text.encode("utf-8"))


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
    ``values`` or their defaults. The grid is held whole: at most :data:`MAX_POINTS` points
    (:func:`plan` with ``limit=MAX_STREAMED_POINTS`` writes larger ones as CSV)."""
    return Plan(graph, axes, names, values, setting, exact, MAX_POINTS).collect()


def plan(
    graph: Any,
    axes: Sequence[Axis],
    names: Sequence[str] = ("flops",),
    *,
    values: Mapping[str, Any] | None = None,
    setting: metrics_module.Setting | None = None,
    exact: bool = True,
    limit: int = MAX_POINTS,
) -> Plan:
    """The sweep of :func:`sweep`, derived and compiled but not evaluated: run it with ``Plan.chunks``,
    ``Plan.collect`` or ``Plan.write_csv`` (up to ``limit`` points)."""
    return Plan(graph, axes, names, values, setting, exact, limit)


# ---- the whole-network function: symcost.sweep(...) -------------------------------------


@speaks_api
def run(arch: Any, over: Mapping[str, Any] | Sequence[str], metrics: str | Sequence[str] = "flops", *,
        values: Mapping[str, Any] | None = None, exact: bool = True, options: inputs.Options | None = None,
        streamed: bool = False, **more: Any) -> Any:  # fmt: skip
    """Metrics over a grid (``symcost sweep``): ``over`` maps a variable to its values or a range
    text (``{"H": "64:1024:32", "N": [1, 8]}``), or is a list of ``NAME=RANGE`` texts.

    A :class:`Sweep` holds at most :data:`MAX_POINTS` points; ``streamed=True`` returns a :class:`Plan`
    instead (up to :data:`MAX_STREAMED_POINTS`), to write as CSV chunk by chunk with ``Plan.write_csv``.

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
    limit = MAX_STREAMED_POINTS if streamed else MAX_POINTS
    axes = [parse_axis(text, limit) for text in texts]
    setting = options.setting()
    made = plan(built, axes, inputs.metric_names(metrics), values=given, setting=setting, exact=exact, limit=limit)
    return made if streamed else made.collect()


inputs.callable_module(__name__, run)
