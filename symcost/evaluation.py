"""The numeric path: bind variable values into a :class:`~symcost.shapes.Graph`, exactly.

Every count is a Python ``int`` (no float, no int64 wrap-around). Checks that shapes could not
decide symbolically (a kernel against a still-symbolic input size) are decided here, with the
layer's location in the error.

>>> from symcost.arch import load_text
>>> from symcost.shapes import build
>>> g = build(load_text('''
... name: fc
... summary: the user's FC example
... variables: {N: 1}
... inputs: {x: [N, 100]}
... layers: [{op: linear, out_features: 50}]
... ''', "fc.yaml"))
>>> r = evaluate(g)
>>> r.totals["flops"], r.totals["params"]
(10000, 5050)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from . import cost, expr
from .errors import ArchError, Location, ShapeError, SymcostError, UsageError, did_you_mean
from .shapes import Graph, Node, as_number

TOTAL_KEYS = ("params", "buffers", "macs", "flops", "elementwise", "read", "write", "cache")


@dataclass(frozen=True)
class NodeResult:
    path: str
    op: str
    count: int
    copies: str
    output: tuple[int, ...]
    values: Mapping[str, int]  # params, buffers, macs, flops, elementwise, read, write, cache, elementwise.<cat>
    tied_to: str | None
    index: int = 0  # the node's index in the graph
    sources: tuple[int, ...] = ()  # producing node indexes of its inputs (-1 - i: the i-th graph input)
    gemm: Mapping[str, int] | None = None  # batch, M, N per copy, for GEMM-class layers


@dataclass(frozen=True)
class Result:
    graph: Graph
    values: Mapping[str, int]  # variable values used
    nodes: tuple[NodeResult, ...]
    totals: Mapping[str, int]
    outputs: Mapping[str, tuple[int, ...]]
    convention: cost.Convention
    inputs: Mapping[str, tuple[int, ...]] = None  # type: ignore[assignment]

    def elementwise_by_category(self) -> dict[str, int]:
        return {k.split(".", 1)[1]: v for k, v in self.totals.items() if k.startswith("elementwise.")}

    def _repr_html_(self) -> str:  # Jupyter: the per-layer table and totals of `symcost eval`
        from .display import result_html

        return result_html(self)


def resolve(graph: Graph, values: Mapping[str, Any], *, symbolic: bool = False) -> dict[sympy.Symbol, sympy.Expr]:
    """Variable symbol → value: ``values`` first, then defaults (in file order).

    With ``symbolic``, variables without a given value stay free, except those whose default
    is an expression of other variables (``d_ff: 4*d_model``), which are substituted.
    """
    arch = graph.arch
    for name in values:
        if name not in arch.variables:
            raise UsageError(
                f"'{arch.name}' has no variable '{name}'{did_you_mean(name, arch.variables)}; "
                f"its variables: {', '.join(arch.variables)}",
                Location("--set"),
            )
    subs: dict[sympy.Symbol, sympy.Expr] = {}
    for var in arch.variables.values():
        if var.name in values:
            given = values[var.name]
            value = as_number(given, var.name)
            value = value.xreplace(subs)
        elif var.default is not None and (not symbolic or not var.default.is_number):
            value = var.default.xreplace(subs)
        elif symbolic:
            continue
        else:
            raise ArchError(f"variable '{var.name}' has no value: pass --set {var.name}=...", var.loc)
        subs[var.symbol] = value
    for name, (built, _loc) in graph.decided_by.items():  # a 'when' read it: the graph holds at that value only
        subs.setdefault(arch.variables[name].symbol, built)
    # a value may name a variable declared after it (--set H=W): substitute until nothing changes
    for _ in range(len(subs)):
        changed = {sym: value.xreplace(subs) for sym, value in subs.items()}
        if changed == subs:
            break
        subs = changed
    for var in arch.variables.values():
        value = subs.get(var.symbol)
        if value is None or not value.is_number:
            continue
        if var.kind == "ratio":
            if not value.is_Rational or value <= 0:
                raise ArchError(f"variable '{var.name}' must be a positive rational (1.1, 3/4), got {value}", var.loc)
        elif not value.is_Integer or value < var.minimum:
            raise ArchError(f"variable '{var.name}' must be a whole number >= {var.minimum}, got {value}", var.loc)
    return subs


def check_decided(graph: Graph, subs: Mapping[sympy.Symbol, sympy.Expr]) -> None:
    """A graph whose ``when`` read a variable holds only at the value it was built for."""
    symbols = {var.name: var.symbol for var in graph.arch.variables.values()}
    for name, (built, loc) in graph.decided_by.items():
        value = subs.get(symbols[name], built)
        if value != built:
            raise UsageError(
                f"a 'when' in '{graph.arch.name}' was decided at {name} = {built}, not {value}: "
                f"build the graph with the values (shapes.build(arch, values)); at {loc}",
                Location("--set"),
            )


def keep_free(graph: Graph, values: Mapping[str, Any], free: Iterable[str]) -> dict[str, Any]:
    """Values for closed forms in the ``free`` variables only: ``values`` for the others, else
    their defaults, and each free variable as its own symbol, even where its default is a
    formula (``head_dim: d_model/n_head`` stays ``head_dim`` when it is swept or solved for)."""
    free = list(free)
    variables = graph.arch.variables
    bound = {k: v for k, v in values.items() if k not in free}
    for var in variables.values():
        if var.name not in free and var.name not in bound and var.default is not None:
            bound[var.name] = var.default
    bound.update({name: variables[name].symbol for name in free})
    return bound


def _int(value: sympy.Expr, node: Node, what: str) -> int:
    if not value.is_Integer:
        raise ShapeError(
            f"layer '{node.path}' ({node.op}): {what} did not evaluate to a whole number: {value}", node.loc
        )
    return int(value)


def failed_check(check: Any, subs: Mapping[sympy.Symbol, sympy.Expr]) -> str:
    """A failed check's message with the values it compared: "the layer's D must equal D = 64, got 128".

    >>> from symcost.shapes import Check
    >>> D, d = sympy.symbols("D d", integer=True, positive=True)
    >>> failed_check(Check(sympy.Eq(D, d), "the layer's D must equal D"), {D: sympy.Integer(64), d: sympy.Integer(128)})
    "the layer's D must equal D = 64, got 128"
    """
    condition = check.condition
    if isinstance(condition, sympy.Equality):
        lhs, rhs = (side.xreplace(subs) for side in condition.args)
        if lhs.is_number and rhs.is_number:
            joint = " =" if "must equal" in check.message else ": expected"
            return f"{check.message}{joint} {lhs}, got {rhs}"
    if isinstance(condition, sympy.core.relational.Relational):
        lhs, rhs = (side.xreplace(subs) for side in condition.args)
        if lhs.is_number and rhs.is_number and condition.lhs.free_symbols and not condition.rhs.free_symbols:
            return f"{check.message} (got {lhs})"
    return check.message


def evaluate(graph: Graph, values: Mapping[str, Any] | None = None, convention: cost.Convention = cost.TORCH) -> Result:
    """Exact integer costs of every node and the totals, at ``values`` (defaults for the rest)."""
    subs = resolve(graph, values or {})
    check_decided(graph, subs)
    at = expr.Substitution(subs)
    for tensor, dims in graph.inputs.items():
        for dim, loc in dims:
            try:
                value = at(dim)
            except SymcostError as exc:
                raise ShapeError(f"input '{tensor}': {exc.message}", loc) from None
            if not value.is_Integer or value < 1:
                raise ShapeError(f"input '{tensor}' has a dim of size {value}: sizes must be >= 1", loc)
    results = []
    totals = dict.fromkeys(TOTAL_KEYS, 0)
    for index, node in enumerate(graph.nodes):
        for check in node.checks:
            verdict = at(check.condition)
            if verdict is sympy.false or verdict is False:
                raise ShapeError(f"layer '{node.path}' ({node.op}): {failed_check(check, subs)}", node.loc)
        count = _int(at(node.count), node, "the repeat count")
        if count < 0:
            raise ShapeError(f"layer '{node.path}' ({node.op}): the repeat count is negative ({count})", node.loc)
        path = node.concrete_path(subs) if node.ranges else node.path
        if count == 0:  # a repeat with no copies (a one-block stage's "blocks - 1"): listed as x0
            zeros = dict.fromkeys(totals, 0)
            output = tuple(int(d) if d.is_Integer else 0 for d in (at(x) for x in node.output))
            results.append(NodeResult(path, node.op, 0, node.copies, output, zeros, node.tied_to, index, node.sources))
            continue
        output = tuple(_int(at(d), node, "an output size") for d in node.output)
        if any(d < 1 for d in output):
            raise ShapeError(f"layer '{node.path}' ({node.op}): output size {output} is not positive", node.loc)
        raw = {k: _int(at(v), node, k) for k, v in node.costs.items()}
        elementwise = {k: _int(at(v), node, k) for k, v in node.elementwise.items()}
        peers = {k: sympy.Integer(_int(at(v), node, f"{k}'s count")) for k, v in node.peers.items()}
        per = cost.node_totals(
            sympy.Integer(count),
            {k: sympy.Integer(v) for k, v in raw.items()},
            {k: sympy.Integer(v) for k, v in elementwise.items()},
            convention,
            peers,
        )
        numbers = {k: int(v) for k, v in per.items()}
        for key, value in numbers.items():
            totals[key] = totals.get(key, 0) + value
        gemm = {k: _int(at(v), node, f"GEMM {k}") for k, v in node.gemm.items()} or None
        results.append(
            NodeResult(path, node.op, count, node.copies, output, numbers, node.tied_to, index, node.sources, gemm)
        )
    unknown = sum(1 for r in results if r.op == "unknown")
    if unknown:  # layers an importer kept without a formula: every total is a lower bound, and says so
        totals["unknown"] = unknown
    outputs = {name: tuple(int(at(d)) for d in shape) for name, shape in graph.outputs.items()}
    inputs = {name: tuple(int(at(d)) for d, _ in dims) for name, dims in graph.inputs.items()}
    # a ratio variable (a width multiplier) keeps its exact value: 11/10, not 1
    used = {sym.name: int(v) if v.is_Integer else v for sym, v in subs.items()}
    return Result(graph, used, tuple(results), totals, outputs, convention, inputs)


def symbolic_nodes(
    graph: Graph, values: Mapping[str, Any] | None = None, convention: cost.Convention = cost.TORCH
) -> list[tuple[str, dict[str, sympy.Expr]]]:
    """Each node's path and closed-form contribution (times its copies) over the free variables."""
    subs = resolve(graph, values or {}, symbolic=True)
    out = []
    for node in graph.nodes:
        per = cost.node_totals(node.count, node.costs, node.elementwise, convention, node.peers)
        named = all(count.xreplace(subs).is_Integer for _, _, count in node.ranges)
        path = node.concrete_path(subs) if node.ranges and named else node.path
        out.append((path, {key: value.xreplace(subs) for key, value in per.items()}))
    return out


def symbolic_totals(
    graph: Graph, values: Mapping[str, Any] | None = None, convention: cost.Convention = cost.TORCH
) -> dict[str, sympy.Expr]:
    """Closed-form totals over the variables not given in ``values``."""
    return sum_nodes(symbolic_nodes(graph, values, convention))


def sum_nodes(nodes: list[tuple[str, dict[str, sympy.Expr]]]) -> dict[str, sympy.Expr]:
    """The totals of :func:`symbolic_nodes`' contributions, key by key."""
    sums: dict[str, list[sympy.Expr]] = {key: [] for key in TOTAL_KEYS}
    for _, per in nodes:
        for key, value in per.items():
            sums.setdefault(key, []).append(value)
    return {key: sympy.Add(*terms) for key, terms in sums.items()}
