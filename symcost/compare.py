"""Compare architectures side by side: each metric exactly, its ratio to the first, and with free
variables the closed forms and their ratio.

>>> from symcost.arch import load_text
>>> from symcost.shapes import build
>>> def fc(width):
...     return build(load_text(f'''
... name: fc{width}
... summary: one linear layer
... variables: {{N: 1}}
... inputs: {{x: [N, 100]}}
... layers: [{{op: linear, out_features: {width}}}]
... ''', "fc.yaml"))
>>> c = compare([fc(50), fc(200)], ["flops", "params"])
>>> c.rows[0]["values"], c.rows[0]["ratios"]
([10000, 40000], [Fraction(1, 1), Fraction(4, 1)])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy

from . import inputs
from . import metrics as metrics_module
from .errors import UsageError, speaks_api

DEFAULT_METRICS = ("params", "macs", "flops", "elementwise", "model_bytes", "traffic_bytes", "memory")


@dataclass
class Comparison:
    """Rows of ``{metric, values, ratios}`` (ratios to the first architecture, exact)."""

    archs: list[str]
    values: list[dict[str, Any]]  # each architecture's variable values
    rows: list[dict[str, Any]]
    free: list[str] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)  # {metric, forms: [expr], ratios: [expr]}
    runtime_note: str = ""  # the runtime the timed metrics assume, and its expected error

    def _repr_html_(self) -> str:  # Jupyter: what --format html prints
        return self.render("html")

    def render(self, fmt: str = "table") -> str:
        """What the command prints in ``fmt`` (any of :data:`symcost.formats.FORMATS`)."""
        from .report_analysis import render_comparison

        return render_comparison(self, fmt)

    def to_dict(self) -> Any:
        """What ``--format json`` prints, as Python data."""
        import json

        return json.loads(self.render("json"))


def split_values(graphs: Sequence[Any], values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``--set`` values for each architecture: a name goes to every architecture that has it."""
    for name in values:
        if not any(name in g.arch.variables for g in graphs):
            raise UsageError(f"--set {name}: none of {', '.join(g.arch.name for g in graphs)} has a variable '{name}'")
    return [{k: v for k, v in values.items() if k in g.arch.variables} for g in graphs]


def compare(
    graphs: Sequence[Any],
    names: Sequence[str] = DEFAULT_METRICS,
    *,
    values: Sequence[Mapping[str, Any]] | None = None,
    setting: metrics_module.Setting | None = None,
    free: Sequence[str] = (),
    assumptions: Sequence[Any] = (),
) -> Comparison:
    """Each metric of each graph at its values; with ``free``, closed forms in those variables."""
    from . import evaluation
    from .simplify import assume

    if len(graphs) < 2:
        raise UsageError("compare needs at least two architectures")
    setting = setting or metrics_module.Setting()
    names = metrics_module.check_names(names, device=setting.roof is not None)
    values = list(values) if values is not None else [{} for _ in graphs]
    numbers = [metrics_module.at_point(g, v, names, setting) for g, v in zip(graphs, values)]
    used = [evaluation.resolve(g, v) for g, v in zip(graphs, values)]
    rows = []
    for name in names:
        row = [n[name] for n in numbers]
        base = row[0]
        ratios = [Fraction(x) / Fraction(base) if base else None for x in row]
        rows.append({"metric": name, "values": row, "ratios": ratios})
    result = Comparison(
        [g.arch.name for g in graphs],
        [{s.name: int(v) for s, v in u.items()} for u in used],
        rows,
        list(free),
        runtime_note=metrics_module.runtime_note(setting, names),
    )
    if free:
        # closed forms of the timed metrics exist for the pure roofline only (fusion and waves have none)
        timed = setting.runtime is None or setting.runtime.bound
        closed_names = [n for n in names if n in metrics_module.CLOSED or (timed and n in metrics_module.TIMED)]
        forms_by_graph = []
        for graph, given in zip(graphs, values):
            missing = [f for f in free if f not in graph.arch.variables]
            if missing:
                raise UsageError(f"--free {missing[0]}: '{graph.arch.name}' has no such variable")
            bound = evaluation.keep_free(graph, given, free)
            nodes = evaluation.symbolic_nodes(graph, bound, setting.convention)
            forms = metrics_module.closed_forms(nodes, closed_names, setting, graph, bound)
            forms_by_graph.append({k: assume(v, assumptions) for k, v in forms.items()})
        # the same name is the same symbol in every file (same assumptions), so ratios simplify
        for name in closed_names:
            forms = [f[name] for f in forms_by_graph]
            ratios = [sympy.cancel(f / forms[0]) if forms[0] != 0 else None for f in forms]
            result.closed.append({"metric": name, "forms": forms, "ratios": ratios})
    return result


# ---- the whole-network function: symcost.compare(...) -------------------------------------


@speaks_api
def run(archs: Sequence[Any], metrics: str | Sequence[str] = "params,macs,flops,elementwise,model_bytes,"
        "traffic_bytes,memory", *, values: Mapping[str, Any] | None = None, free: str | Sequence[str] = (),
        assume: Sequence[str] = (), options: inputs.Options | None = None, **more: Any) -> Any:  # fmt: skip
    """Architectures side by side (``symcost compare``): each metric and its ratio to the first;
    a value goes to every architecture that has the variable.

    >>> c = run(["resnet50", "mobilenet_v2"], "params")
    >>> c.rows[0]["values"]
    [25557032, 3504872]
    """
    from .simplify import parse_assumptions

    options = options or inputs.Options()
    if len(archs) < 2:
        raise UsageError("compare needs at least two architectures")
    loaded = [inputs.load(a) for a in archs]
    names = {n: s for a in loaded for n, s in inputs._names(a).items()}
    common = {k: inputs._value(k, v, names) if isinstance(v, str) else v for k, v in {**(values or {}), **more}.items()}
    graphs, given = [], []
    for one in loaded:
        built, phase_given = inputs.graph(one, {}, phase=options.phase)
        graphs.append(built)
        given.append(phase_given)
    per_arch = split_values(graphs, common)
    merged = [{**phase_given, **mine} for phase_given, mine in zip(given, per_arch)]
    setting = options.setting()
    free_names = inputs.free_names(free) if free else []
    if assume and not free_names:
        raise UsageError("--assume simplifies closed forms: give --free too")
    assumptions = parse_assumptions(list(assume), names)
    return compare(graphs, inputs.metric_names(metrics), values=merged, setting=setting, free=free_names,
                             assumptions=assumptions)  # fmt: skip


inputs.callable_module(__name__, run)
