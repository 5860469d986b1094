"""Solve for a budget: the largest (or smallest) whole value of one variable that meets a condition.

``symcost solve resnet50 "flops <= 10*G" --for H`` searches H by doubling then bisection, on the
compiled closed form when the condition uses closed-form metrics only, else on exact evaluations
(``memory``, ``latency``). The answer is then checked on the exact path of ``symcost eval``: the
condition holds at the answer and fails one step past it. The search assumes the condition
changes once along the variable (a count that grows with H); the check is what makes the answer
trustworthy, and a failed check is reported, never hidden.

>>> from symcost.arch import load_text
>>> from symcost.shapes import build
>>> g = build(load_text('''
... name: fc
... summary: one linear layer
... variables: {N: 1, D: 100}
... inputs: {x: [N, D]}
... layers: [{op: linear, out_features: 50}]
... ''', "fc.yaml"))
>>> s = solve(g, "flops <= 10**6", "D")        # 2*50*D <= 10**6  ->  D <= 10,000
>>> s.value, s.direction, s.checked
(10000, 'largest', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy

from . import expr, inputs
from . import metrics as metrics_module
from .errors import ArchError, Location, ShapeError, UsageError, did_you_mean, speaks_api

LIMIT = 2**40


@dataclass
class Solution:
    """The answer, where it came from, and the exact check around it."""

    arch: str
    condition: str
    variable: str
    direction: str  # "largest" (holds from the start, then fails) or "smallest" (fails, then holds)
    value: int | None  # None: the condition never changes in [start, limit]
    step: int
    start: int
    limit: int
    probes: int
    method: str  # "closed form" or "exact evaluation"
    checks: list[dict[str, Any]] = field(default_factory=list)  # [{value, metrics, holds}]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""  # when value is None

    def _repr_html_(self) -> str:  # Jupyter: what --format html prints
        return self.render("html")

    def render(self, fmt: str = "table") -> str:
        """What the command prints in ``fmt`` (any of :data:`symcost.formats.FORMATS`)."""
        from .report_analysis import render_solution

        return render_solution(self, fmt)

    def to_dict(self) -> Any:
        """What ``--format json`` prints, as Python data."""
        import json

        return json.loads(self.render("json"))

    @property
    def checked(self) -> bool:
        """The condition holds at the answer and fails one step past it, on the exact path."""
        if not self.checks:
            return False
        return self.checks[0]["holds"] and all(not c["holds"] for c in self.checks[1:])


def parse_condition(text: str) -> tuple[sympy.Basic, list[str]]:
    """``"flops <= 10**10"``, ``"memory <= 80*GB and latency <= 20*ms"`` → the condition and the
    metrics it names. Parsed by :func:`symcost.expr.parse`, never ``eval``."""
    names: dict[str, sympy.Basic] = {name: sympy.Symbol(name) for name in metrics_module.METRICS}
    names.update(metrics_module.UNITS)
    condition = expr.parse(text, names, loc=Location("condition", 1, 1), allow_compare=True)
    if isinstance(condition, sympy.Expr):
        raise UsageError(f"the condition must be a comparison, like 'flops <= 10**10', not {text!r}")
    used = sorted(s.name for s in condition.free_symbols)
    if not used:
        raise UsageError(f"the condition {text!r} names no metric; metrics: {', '.join(metrics_module.METRICS)}")
    return condition, used


def solve(
    graph: Any,
    condition_text: str,
    variable: str,
    *,
    values: Mapping[str, Any] | None = None,
    setting: metrics_module.Setting | None = None,
    step: int = 1,
    limit: int = LIMIT,
    start_from: int | None = None,
) -> Solution:
    """The value of ``variable`` (a multiple of ``step``) at which ``condition_text`` changes."""
    from . import evaluation

    setting = setting or metrics_module.Setting()
    condition, used = parse_condition(condition_text)
    metrics_module.check_names(used, device=setting.roof is not None)
    variables = graph.arch.variables
    if variable not in variables:
        raise UsageError(
            f"--for: '{graph.arch.name}' has no variable '{variable}'{did_you_mean(variable, variables)}; "
            f"its variables: {', '.join(variables)}"
        )
    if step < 1:
        raise UsageError("--step must be at least 1")
    free = evaluation.keep_free(graph, values or {}, [variable])
    fixed = {k: v for k, v in free.items() if k != variable}
    minimum = variables[variable].minimum
    lowest = max(minimum, start_from or minimum)
    start = max(step, -(-lowest // step) * step)
    symbol = {s: sympy.Symbol(s) for s in used}

    def holds(numbers: Mapping[str, Any]) -> bool:
        verdict = condition.xreplace({symbol[k]: metrics_module.as_number(numbers[k]) for k in used})
        return bool(verdict)

    def exact(value: int) -> dict[str, Any]:
        try:
            return metrics_module.at_point(graph, {**fixed, variable: value}, used, setting)
        except (ShapeError, ArchError) as exc:
            raise _invalid(variable, value, exc.message) from None

    closed = all(name in metrics_module.CLOSED for name in used)
    if closed:
        # One variable, a few dozen probes: substituting into the closed form (about 0.6 ms for
        # ResNet-50) beats compiling it, and leaves numpy unimported (0.1 s of a cold start).
        symbol_of = variables[variable].symbol
        nodes = evaluation.symbolic_nodes(graph, free, setting.convention)
        forms = metrics_module.closed_forms(nodes, used, setting, graph, free)
        conditions, messages = metrics_module.validity(graph, evaluation.resolve(graph, free, symbolic=True))

        def probe(value: int) -> bool:
            at = {symbol_of: sympy.Integer(value)}
            for condition_, message in zip(conditions, messages):
                if not bool(condition_.xreplace(at)):
                    raise _invalid(variable, value, message)
            return holds({k: int(forms[k].xreplace(at)) for k in used})
    else:

        def probe(value: int) -> bool:
            return holds(exact(value))

    count = 0

    def test(k: int) -> bool:
        nonlocal count
        count += 1
        return probe(k * step)

    low = start // step
    top = limit // step
    first = test(low)
    direction = "largest" if first else "smallest"
    # doubling: find k_hi where the verdict differs from the first
    good, k = low, low
    changed = None
    while True:
        nxt = min(max(2 * k, k + 1), top)
        if test(nxt) != first:
            changed = nxt
            break
        good = k = nxt
        if k >= top:
            break
    method = "closed form" if closed else "exact evaluation"
    if changed is None:
        probed = f"at every value probed, doubling {variable} from {start} up to {limit}"
        why = f"the condition holds {probed}" if first else f"the condition fails {probed}"
        return Solution(graph.arch.name, condition_text, variable, direction, None, step, start, limit, count,
                        method, fixed=fixed, why=why)  # fmt: skip
    lo, hi = good, changed  # verdict(lo) == first, verdict(hi) != first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(mid) == first:
            lo = mid
        else:
            hi = mid
    answer = (lo if first else hi) * step
    neighbours = [answer + step] if first else ([answer - step] if answer - step >= start else [])
    checks = []
    for value in [answer, *neighbours]:
        numbers = exact(value)
        checks.append({"value": value, "metrics": numbers, "holds": holds(numbers)})
    return Solution(graph.arch.name, condition_text, variable, direction, answer, step, start, limit, count,
                    method, checks, fixed)  # fmt: skip


def _invalid(variable: str, value: int, why: str) -> UsageError:
    return UsageError(
        f"at {variable}={value} the architecture is not valid ({why}); the search needs every value it "
        f"probes to be valid: start further with --from, search multiples of a valid step with --step, "
        f"or tie the variables that depend on {variable} to it with --set"
    )


# ---- the whole-network function: symcost.solve(...) -------------------------------------


@speaks_api
def run(arch: Any, condition: str, variable: str, *, step: int = 1, start_from: int | None = None,
        limit: int = 2**40, values: Mapping[str, Any] | None = None, options: inputs.Options | None = None,
        **more: Any) -> Any:  # fmt: skip
    """The largest (or smallest) whole value of ``variable`` that meets ``condition`` (``symcost solve``).

    >>> run("resnet50", "flops <= 10**10", "H", W="H").value
    240
    """

    options = options or inputs.Options()
    given = {**(values or {}), **more}
    if variable in given:
        raise UsageError(f"--for {variable} conflicts with --set {variable}")
    built, given = inputs.graph(arch, given, phase=options.phase)
    given = {k: v for k, v in given.items() if k != variable}  # a phase's value yields to --for
    setting = options.setting()
    return solve(built, condition, variable, values=given, setting=setting, step=step, limit=limit,
                         start_from=start_from)  # fmt: skip


inputs.callable_module(__name__, run)
