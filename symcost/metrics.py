"""The numbers ``sweep``, ``solve`` and ``compare`` speak of, by name, each two ways: a closed form
over the free variables (compiled for sweeps) and its exact value at one point (the reference).

>>> sorted(CLOSED)[:4]
['buffers', 'cache', 'elementwise', 'flops']
>>> METRICS["memory"]
'bytes a device must hold: weights, KV cache and the activations alive at once (training: gradients, optimizer state, every output)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy

from . import cost
from .errors import UsageError, did_you_mean
from .keys import CLOSED as CLOSED
from .keys import EVALUATED as EVALUATED
from .keys import METRICS as METRICS
from .keys import TIMED as TIMED

#: Units a condition may use (``memory <= 80*GB``, ``latency <= 5*ms``): exact rationals.
UNITS: dict[str, sympy.Rational] = {
    **{name: sympy.Integer(10**power) for name, power in (("K", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15))},
    **{name: sympy.Integer(10**power) for name, power in (("KB", 3), ("MB", 6), ("GB", 9), ("TB", 12))},
    **{name: sympy.Integer(2**power) for name, power in (("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40))},
    "s": sympy.Integer(1),
    "ms": sympy.Rational(1, 10**3),
    "us": sympy.Rational(1, 10**6),
    "ns": sympy.Rational(1, 10**9),
}


def check_names(names: Sequence[str], *, device: bool) -> list[str]:
    """The metric names, checked: known, and given a device where they need one."""
    for name in names:
        if name not in METRICS:
            raise UsageError(f"unknown metric '{name}'{did_you_mean(name, METRICS)}; known: {', '.join(METRICS)}")
        if name in TIMED and not device:
            raise UsageError(f"metric '{name}' needs --device")
    return list(names)


@dataclass(frozen=True)
class Setting:
    """Everything besides the variables that fixes a metric's value: how to count and where."""

    convention: cost.Convention = cost.TORCH
    dtype: str = "fp32"
    roof: Any = None  # roofline.Roof, for the timed metrics
    device: Any = None  # devices.Device
    training: bool = False
    optimizer: str = "adam"
    waves: bool = False
    precision: Any = None  # symcost.precision.Precision; None or uniform: everything at dtype
    runtime: Any = None  # runtimes.Runtime; None or a bound runtime: the pure roofline

    @property
    def mixed(self) -> bool:
        """Weights, activations or the KV cache stored apart from the compute dtype."""
        return self.precision is not None and not self.precision.uniform


def closed_forms(nodes: list[tuple[str, dict[str, sympy.Expr]]], names: Sequence[str], setting: Setting,
                 graph: Any = None, values: Mapping[str, Any] | None = None) -> dict[str, sympy.Expr]:  # fmt: skip
    """Closed forms of the closed and timed metrics in ``names``, from :func:`evaluation.symbolic_nodes`
    (of ``graph`` at ``values``, which mixed precision needs to tell weights, activations and cache apart)."""
    from .evaluation import sum_nodes

    totals = sum_nodes(nodes)
    bits = cost.dtype_bits(setting.dtype)

    def in_bytes(elements: sympy.Expr) -> sympy.Expr:
        return sympy.ceiling(elements * bits / 8) if bits % 8 else elements * (bits // 8)

    factor = cost.TRAINING_FACTOR if setting.training else 1
    out: dict[str, sympy.Expr] = _from_totals(totals, names, in_bytes, factor)
    parts = None
    if setting.mixed:
        from . import precision as precision_module

        if graph is None:
            raise UsageError("mixed precision closed forms need the graph")
        p = setting.precision
        from .evaluation import resolve

        parts = precision_module.split_symbolic(graph, nodes, resolve(graph, values or {}, symbolic=True))
        summed = {k: sympy.Add(*(part[k] for part in parts)) for k in precision_module.PARTS}
        for name in names:
            if name == "traffic_bytes":
                out[name] = precision_module.symbolic_bytes(summed, p) * factor
            elif name == "model_bytes":
                out[name] = precision_module.symbolic_class_bytes(totals["params"] + totals["buffers"], p.weight)
            elif name == "kv_cache_bytes":
                out[name] = precision_module.symbolic_class_bytes(totals["cache"], p.kv)
    timed = [n for n in names if n in TIMED]
    if timed:
        from .roofline import symbolic_time

        per_byte = sympy.Rational(bits, 8)
        terms: dict[str, list[sympy.Expr]] = {"latency": [], "compute": [], "memory": []}
        for i, (_, per) in enumerate(nodes):
            nbytes = (per["read"] + per["write"]) * per_byte if parts is None else _exact_bytes(parts[i], setting)
            times = symbolic_time(per["flops"] * factor, nbytes * factor, setting.roof)
            for key in terms:
                terms[key].append(times[key])
        for name in timed:
            out[name] = sympy.Add(*terms[name.removesuffix("_s")])
    return out


def layer_bytes(graph: Any, nodes: list[tuple[str, dict[str, sympy.Expr]]], values: Mapping[str, Any],
                setting: Setting) -> list[sympy.Expr] | None:  # fmt: skip
    """Each layer's bytes in closed form at mixed precision (None when everything is at the dtype)."""
    if not setting.mixed:
        return None
    from .evaluation import resolve
    from .precision import split_symbolic

    subs = resolve(graph, values, symbolic=True)
    return [_exact_bytes(part, setting) for part in split_symbolic(graph, nodes, subs)]


def _exact_bytes(part: Mapping[str, sympy.Expr], setting: Setting) -> sympy.Expr:
    """A layer's bytes at mixed precision, exactly (a closed form does not round up)."""
    from .precision import bits

    p = setting.precision

    def r(name: str) -> sympy.Expr:
        b = bits(name)
        return sympy.Rational(b.numerator, 8 * b.denominator)

    return (
        part["weight_read"] * r(p.weight)
        + (part["act_read"] + part["act_write"]) * r(p.act)
        + (part["kv_read"] + part["kv_write"]) * r(p.kv)
    )


def _from_totals(totals: Mapping[str, Any], names: Sequence[str], in_bytes: Any, factor: int) -> dict[str, Any]:
    """The closed metrics among ``names`` from a network's totals, closed forms or numbers alike:
    ``in_bytes`` turns elements into bytes at the dtype, ``factor`` is 3 for a training step."""
    out: dict[str, Any] = {}
    for name in names:
        if name in ("flops", "macs", "params", "buffers", "elementwise", "read", "write", "cache"):
            out[name] = totals[name] * (factor if name == "flops" else 1)
        elif name == "traffic_bytes":
            out[name] = in_bytes(totals["read"] + totals["write"]) * factor
        elif name == "model_bytes":
            out[name] = in_bytes(totals["params"] + totals["buffers"])
        elif name == "kv_cache_bytes":
            out[name] = in_bytes(totals["cache"])
    return out


def at_point(graph: Any, values: Mapping[str, Any], names: Sequence[str], setting: Setting) -> dict[str, Any]:
    """Every metric in ``names`` at one point, exactly, by the same path as ``symcost eval``:
    ints, and Fractions of a second for the timed ones."""
    from . import evaluation, memory

    result = evaluation.evaluate(graph, values, setting.convention)
    factor = cost.TRAINING_FACTOR if setting.training else 1
    out: dict[str, Any] = _from_totals(result.totals, names, lambda e: cost.to_bytes(e, setting.dtype), factor)
    if setting.mixed:
        from . import precision as precision_module

        p, t = setting.precision, result.totals
        for name in names:
            if name == "traffic_bytes":
                out[name] = p.traffic_bytes(precision_module.totals(result)) * factor
            elif name == "model_bytes":
                out[name] = p.weight_bytes(t["params"] + t["buffers"])
            elif name == "kv_cache_bytes":
                out[name] = p.kv_bytes(t["cache"])
    estimate = None
    for name in names:
        if name == "memory":
            need = memory.needed(result, setting.dtype, training=setting.training, optimizer=setting.optimizer,
                                 precision=setting.precision)  # fmt: skip
            out[name] = sum(need.values())
        elif name in TIMED:
            if estimate is None:
                estimate = timed_estimate(result, setting)
            out[name] = {"latency": estimate.latency_s, "compute_s": estimate.compute_s, "memory_s": estimate.memory_s}[
                name
            ]
    return out


def timed_estimate(result: Any, setting: Setting) -> Any:
    """The per-layer times under the setting's runtime (:mod:`symcost.latency`), or the pure roofline."""
    if setting.runtime is None or setting.runtime.bound:
        from . import roofline

        return roofline.estimate(result, setting.device, setting.roof, setting.dtype, training=setting.training,
                                 waves=setting.waves, precision=setting.precision)  # fmt: skip
    from . import latency

    return latency.estimate(result, setting.device, setting.dtype, setting.runtime, training=setting.training,
                            precision=setting.precision)  # fmt: skip


def runtime_note(setting: Setting, names: Sequence[str]) -> str:
    """The line a table of timed metrics carries: the runtime they assume and its expected error."""
    runtime = setting.runtime
    if runtime is None or runtime.bound or not any(n in TIMED for n in names):
        return ""  # the pure roofline prints as it always has
    return f"{', '.join(n for n in names if n in TIMED)} under runtime {runtime.name}: expected error {runtime.error_text()}"


def as_number(value: Any) -> sympy.Expr:
    """An int or Fraction as an exact sympy number."""
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    return sympy.Integer(value)


def validity(graph: Any, subs: Mapping[sympy.Symbol, sympy.Expr]) -> tuple[list[sympy.Basic], list[str]]:
    """What must hold at a point, with why: the layers' undecided checks, and derived variables
    (``head_dim = d_model/n_head``) being whole numbers of at least their minimum."""
    conditions: list[sympy.Basic] = []
    messages: list[str] = []
    for var in graph.arch.variables.values():
        value = subs.get(var.symbol)
        if value is None or value.is_number or value.is_integer:
            continue
        conditions.append(sympy.Eq(value - sympy.floor(value), 0))
        messages.append(f"variable '{var.name}' = {value} is not a whole number")
        conditions.append(sympy.Ge(value, var.minimum))
        messages.append(f"variable '{var.name}' = {value} is below {var.minimum}")
    for node in graph.nodes:
        for index, dim in enumerate(node.output):
            size = dim.xreplace(subs)
            if not (size.is_integer or size.is_number):  # out_features: D/2 at an odd D
                conditions.append(sympy.Eq(size - sympy.floor(size), 0))
                messages.append(f"layer '{node.path}' ({node.op}): output dim {index} = {size} is not a whole number")
        for check in node.checks:
            verdict = check.condition.xreplace(subs)
            if verdict is sympy.true or verdict is True:
                continue
            conditions.append(verdict)
            messages.append(f"layer '{node.path}' ({node.op}): {check.message}")
    return conditions, messages
