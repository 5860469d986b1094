"""symcost for whole networks, in Python: what each command computes, as data.

Each function here is what one command runs; the command only parses its options and prints the
result's :meth:`render`. A result is a dataclass with ``to_dict()`` (the ``--format json`` data),
``render(format)`` (any format the command offers) and Jupyter display from the same renderer.

>>> import symcost
>>> r = symcost.evaluate("resnet50")
>>> r.totals["params"], r.totals["flops"]
(25557032, 8178368512)
>>> symcost.estimate("resnet50", device="a100", dtype="bf16").device["name"]
'a100'

An architecture is a bundled name (``"resnet50"``), a path to a YAML file, YAML text, or what
:func:`load` returned. Variable values are keyword arguments: integers, ``True``/``False``, or
expressions over the architecture's variables as text (``W="H"``); ``values={...}`` takes a
variable whose name clashes with an option.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import compare as _compare
from . import solve as _solve
from . import sweep as _sweep
from .errors import UsageError, did_you_mean, speaks_api
from .inputs import Options, _names, _value, counting_, free_names, graph, load, parse_assignments, seconds

__all__ = ["NetworkCost", "Derivation", "Options", "compare", "derive", "estimate", "evaluate", "load",
           "parse_assignments", "solve", "sweep", "from_torch"]  # fmt: skip


# ---- results --------------------------------------------------------------------------------------


class _Rendered:
    """``to_dict()``, ``render(format)`` and Jupyter display, all from one renderer."""

    def render(self, fmt: str = "table") -> str:
        """The result in one of :data:`symcost.formats.FORMATS` (``table``, ``markdown``, ``csv``, ...)."""
        raise NotImplementedError

    def to_dict(self) -> Any:
        """What ``--format json`` prints, as Python data."""
        return json.loads(self.render("json"))

    def _repr_html_(self) -> str:
        return self.render("html")

    def __str__(self) -> str:
        return self.render("table")


@dataclass(frozen=True, repr=False)
class NetworkCost(_Rendered):
    """An architecture's costs at one point (``symcost eval``), and its roofline on a device
    when one is named. Counts are exact integers; seconds and rates are floats in ``to_dict()``
    and exact Fractions in ``performance``."""

    arch: str
    values: Mapping[str, Any]
    dtype: str
    phase: str
    totals: Mapping[str, Any]
    layers: Sequence[Mapping[str, Any]]
    device: Mapping[str, Any] | None
    performance: Mapping[str, Any] | None
    result: Any = field(compare=False)  # symcost.evaluate.Result: every node's exact counts
    data: Mapping[str, Any] = field(compare=False, default_factory=dict)  # what the renderers read

    def render(self, fmt: str = "table") -> str:
        """``symcost eval``'s output in any format: ``render("json")`` is ``--format json``."""
        from .report import render_eval

        return render_eval(dict(self.data), fmt)

    @property
    def roofline(self) -> Any:
        """The exact per-layer times (:class:`symcost.roofline.Estimate`), with a device; else None."""
        return self.data.get("_estimate")

    def __repr__(self) -> str:
        where = f" on {self.device['name']}" if self.device else ""
        return f"<NetworkCost {self.arch}{where}: params={self.totals['params']:,} flops={self.totals['flops']:,}>"


@speaks_api
def evaluate(arch: Any, *, values: Mapping[str, Any] | None = None, depth: int | None = None,
             symbolic: bool = False, free: str | Sequence[str] | None = None, assume: Sequence[str] = (),
             leading: str | None = None, convention: str = "torch", count_elementwise: str = "",
             dtype: str = "fp32", phase: str = "inference", optimizer: str = "adam", weight_dtype: str | None = None,
             act_dtype: str | None = None, kv_dtype: str | None = None, **more: Any) -> NetworkCost:  # fmt: skip
    """An architecture's exact counts at one point: ``symcost eval ARCH`` without ``--device``.
    ``weight_dtype``, ``act_dtype`` and ``kv_dtype`` store each apart from ``dtype`` (``--weight-dtype``...;
    :mod:`symcost.precision`).

    >>> evaluate("resnet50", H=320, W=320).totals["macs"]
    8343142400
    >>> evaluate("llama3_8b", dtype="bf16", weight_dtype="q4_k_m").totals["model_bytes"]  # 8,030,261,248 x 4.5 / 8
    4517021952
    """
    options = Options(convention=convention, count_elementwise=count_elementwise, dtype=dtype, phase=phase,
                      optimizer=optimizer, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype)  # fmt: skip
    return _network(arch, {**(values or {}), **more}, options, depth=depth, symbolic=symbolic, free=free,
                    assume=assume, leading=leading, target_latency=None)  # fmt: skip


@speaks_api
def estimate(arch: Any, device: str, *, dtype: str = "fp32", phase: str = "inference",
             values: Mapping[str, Any] | None = None, efficiency: float = 1.0,
             memory_efficiency: float | None = None, overlap: str = "max", waves: bool = False,
             device_files: Sequence[str] = (), target_latency: Any = None, depth: int | None = None,
             symbolic: bool = False, free: str | Sequence[str] | None = None, assume: Sequence[str] = (),
             leading: str | None = None, convention: str = "torch", count_elementwise: str = "",
             optimizer: str = "adam", weight_dtype: str | None = None, act_dtype: str | None = None,
             kv_dtype: str | None = None, runtime: str | None = None, runtime_file: str | None = None,
             **more: Any) -> NetworkCost:  # fmt: skip
    """An architecture's counts and latency on a device under a runtime (``runtime="roofline"``: the
    pure roofline bound): ``symcost eval ARCH --device``.

    >>> e = estimate("resnet50", device="a100", dtype="bf16")
    >>> e.performance["phase"], e.totals["flops"]
    ('inference', 8178368512)
    """
    options = Options(convention=convention, count_elementwise=count_elementwise, device=device,
                      device_files=tuple(device_files), dtype=dtype, efficiency=efficiency,
                      memory_efficiency=memory_efficiency, overlap=overlap, waves=waves, phase=phase,
                      optimizer=optimizer, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
                      runtime=runtime, runtime_file=runtime_file)  # fmt: skip
    return _network(arch, {**(values or {}), **more}, options, depth=depth, symbolic=symbolic, free=free,
                    assume=assume, leading=leading, target_latency=target_latency)  # fmt: skip


def _network(arch: Any, values: Mapping[str, Any], options: Options, *, depth: int | None, symbolic: bool,
             free: str | Sequence[str] | None, assume: Sequence[str], leading: str | None, target_latency: Any
             ) -> NetworkCost:  # fmt: skip
    from . import evaluation, report

    # one point only (no closed form asked for): build its graph with numbers, not closed forms
    numeric = not symbolic and free is None
    built, given = graph(arch, values, phase=options.phase, numeric=numeric)
    target = seconds(target_latency, "--target-latency")
    if options.device is None and target is not None:
        raise UsageError("--target-latency needs --device")
    setting = options.setting()
    counting = setting.convention
    symbolic_values = given
    if free is not None:
        symbolic = True
        symbolic_values = _keep_free(built, given, free_names(free))
    if (assume or leading) and not symbolic:
        raise UsageError("--assume and --leading shape the closed forms: give --free or --symbolic too")
    nodes = evaluation.symbolic_nodes(built, symbolic_values, counting) if symbolic else None
    closed = evaluation.sum_nodes(nodes) if nodes is not None else None
    result = evaluation.evaluate(built, given, counting)
    shaping = _closed_form_shaping(built, list(assume), leading)
    dtype = options.dtype
    precision = setting.precision
    if options.device is None:
        data = report.eval_data(result, dtype=dtype, depth=depth, symbolic=shaping(closed, result), precision=precision)
        if setting.training:
            data["training"] = report.training_data(result, dtype, options.optimizer)
        return _network_cost(result, data, options.phase)
    from . import metrics, roofline

    chosen, roof = setting.device, setting.roof
    est = metrics.timed_estimate(result, setting)
    roof = est.roof
    performance = roofline.summary(result, est, phase=options.phase, target_latency=target,
                                   optimizer=options.optimizer)  # fmt: skip
    memory_efficiency = options.memory_efficiency if options.memory_efficiency is not None else options.efficiency
    device_options = {"efficiency": options.efficiency, "memory_efficiency": memory_efficiency,
                      "overlap": options.overlap, "waves": options.waves}  # fmt: skip
    if setting.runtime is not None:
        device_options["runtime"] = setting.runtime.name
        device_options["runtime_summary"] = setting.runtime.summary
        device_options["bound"] = setting.runtime.bound
        device_options["expected_error"] = setting.runtime.error_text()
        device_options["validation"] = dict(setting.runtime.validation)
    symbolic_layers = None
    if nodes is not None and closed is not None and (setting.runtime is None or setting.runtime.bound):
        from .metrics import layer_bytes

        node_bytes = layer_bytes(built, nodes, symbolic_values, setting)
        extra, symbolic_layers = roofline.symbolic_estimate(nodes, roof, dtype, training=setting.training,
                                                            node_bytes=node_bytes)  # fmt: skip
        closed.update(extra)
    data = report.eval_data(
        result, dtype=dtype, depth=depth, symbolic=shaping(closed, result), estimate=est, performance=performance,
        device=report.device_data(roof, chosen, dtype, device_options), precision=precision,
    )  # fmt: skip
    data["_estimate"] = est  # per-layer exact times, for the roofline plot
    if symbolic_layers is not None:
        data["symbolic_layers"] = report.symbolic_layer_data(symbolic_layers)
    return _network_cost(result, data, options.phase, performance)


def _network_cost(result: Any, data: dict[str, Any], phase: str, performance: Any = None) -> NetworkCost:
    return NetworkCost(arch=data["arch"], values=data["values"], dtype=data["dtype"], phase=phase,
                       totals=data["totals"], layers=data["layers"], device=data.get("device"),
                       performance=performance, result=result, data=data)  # fmt: skip


def _keep_free(built: Any, values: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """Values for a closed form in the ``free`` variables only: the others at their values or defaults."""
    from .evaluation import keep_free

    variables = built.arch.variables
    for name in names:
        if name not in variables:
            raise UsageError(f"--free: '{built.arch.name}' has no variable '{name}'{did_you_mean(name, variables)}")
        if name in values:
            raise UsageError(f"--free {name} conflicts with a value for {name} (from --set or the phase)")
    return keep_free(built, values, names)


def _closed_form_shaping(built: Any, assume: list[str], leading: str | None) -> Any:
    """A function that applies ``assume`` to closed forms and adds ``leading``'s terms by power."""
    from .simplify import assume as apply
    from .simplify import leading as by_power
    from .simplify import parse_assumptions

    names = _names(built.arch)
    facts = parse_assumptions(assume, names)
    if leading is not None and leading not in names:
        raise UsageError(f"--leading: '{built.arch.name}' has no variable '{leading}'{did_you_mean(leading, names)}")

    def shape(closed: dict[str, Any] | None, result: Any) -> dict[str, Any] | None:
        if closed is None:
            return None
        shaped = {k: apply(v, facts) if facts else v for k, v in closed.items()}
        if leading is not None:
            at = {names[k]: v for k, v in result.values.items() if k in names}
            terms = {}
            for key in ("flops", "macs", "params", "read", "write", "cache", "latency_s"):
                form = shaped.get(key)
                if form is None or names[leading] not in form.free_symbols:
                    continue
                total = form.xreplace(at)
                terms[key] = [(degree, term, term.xreplace(at) / total if total else None)
                              for degree, term in by_power(form, names[leading])]  # fmt: skip
            shaped["_leading"] = (leading, terms)
        return shaped

    return shape


# ---- one formula -----------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Derivation(_Rendered):
    """A layer's cost in closed form (``symcost derive``): expressions as sympy in ``costs``,
    as symcost's expression language in ``to_dict()``."""

    name: str
    summary: str
    costs: Mapping[str, Any]  # flops, macs, params, buffers, read, write, cache: sympy expressions
    elementwise: Mapping[str, Any]
    formula: Any = field(compare=False)
    data: Mapping[str, Any] = field(compare=False, default_factory=dict)

    def render(self, fmt: str = "table") -> str:
        """``symcost derive``'s output in any format."""
        from .report import render_derivation

        return render_derivation(self.data, fmt)

    def __repr__(self) -> str:
        return f"<Derivation {self.name}: flops = {self.data['costs']['flops']}>"


@speaks_api
def derive(name: str, *, values: Mapping[str, Any] | None = None, expand: bool = False, defaults: bool = False,
           convention: str = "torch", count_elementwise: str = "", **more: Any) -> Derivation:  # fmt: skip
    """A formula in closed form, with some symbols bound: ``symcost derive NAME``.

    >>> derive("conv2d", kernel=3, stride=1, padding=1, dilation=1).to_dict()["outputs"]["y"]
    ['N', 'C_out', 'H', 'W']
    """
    from . import registry, report

    formula = registry.get(name)
    names = formula.symbols
    given = {k: _value(k, v, names) if isinstance(v, str) else v for k, v in {**(values or {}), **more}.items()}
    bound = formula.bind(defaults=defaults, **given)
    data = report.derivation(formula, bound, convention=counting_(convention, count_elementwise),
                             expand=expand)  # fmt: skip
    return Derivation(formula.name, formula.summary, data["_exprs"], data["_elementwise"], formula, data)


# ---- sweep, solve, compare: each module is callable, ``symcost.sweep(...)`` ---------------------------

sweep = _sweep.run
solve = _solve.run
compare = _compare.run


# ---- importers ----------------------------------------------------------------------------------------


def from_torch(module: Any, inputs: Mapping[str, Sequence[Any]], example: Mapping[str, int] | None = None, *,
               dtypes: Mapping[str, str] | None = None, name: str | None = None,
               allow_unknown: bool = False) -> Any:  # fmt: skip
    """An ``nn.Module`` as an architecture: ``symcost import torch`` in Python (needs the torch extra).

    ``inputs`` names forward's inputs and their shapes (names are the variables), ``example`` the
    variables' values for the trace (and their defaults). The result has ``.to_yaml()`` and ``.arch``;
    :func:`evaluate` and :func:`estimate` take it as an architecture.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    >>> arch = from_torch(net, inputs={"x": ("N", 3, "H", "W")}, example={"N": 1, "H": 32, "W": 32})
    >>> evaluate(arch, H=64, W=64).totals["flops"]  # 2 * 62*62 outputs * 8 channels * 27 MACs
    1660608
    """
    from .importing.torch import from_torch as trace

    return trace(module, inputs, example, dtypes=dtypes, name=name, allow_unknown=allow_unknown)


def from_onnx(path: Any, *, allow_unknown: bool = False, **values: int) -> Any:
    """The architecture of a local ``.onnx`` file (``symcost import onnx``): every function here takes it,
    and ``.to_yaml()`` is its YAML text. Keyword arguments are the variables' defaults; ``allow_unknown`` keeps
    operators with no formula as ``unknown`` layers (nothing counted) instead of an error.

    Needs the onnx package (``pip install "symcost[onnx]"``); docs/onnx-import.md has a worked example.
    """
    from .importing import onnx as onnx_import

    return onnx_import.load(path, values, allow_unknown)
