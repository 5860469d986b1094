"""Every output format and number-formatting rule: text, LaTeX, JSON and Markdown.

Expressions print in symcost's own expression language, so anything ``derive`` prints can be
pasted back into a formula or an architecture file:

>>> import sympy
>>> H, s = sympy.symbols("H s", integer=True, positive=True)
>>> format_expr(sympy.floor((H - 3) / s) + sympy.Mod(H, 4) + sympy.Max(H, s))
'H % 4 + floor((H - 3)/s) + max(H, s)'
>>> format_count(8178368512)
'8,178,368,512'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import cost, formats, keys
from .expr import Variadic
from .formats import (
    csv_text,
    html_code,
    html_count,
    html_div,
    html_table,
    html_text,
    json_text,
    latex_comment,
    latex_text,
    markdown_code,
    markdown_text,
    terminal_text,
)
from .printer import duration, format_count, format_expr, format_shape, latex_expr, latex_symbol, si  # noqa: F401

if TYPE_CHECKING:  # types only: the output layer imports nothing that imports it
    from .formula import Bound, Formula

#: What each command offers: every format (:data:`symcost.formats.FORMATS`).
FORMATS = formats.ALL


# ---- derive ---------------------------------------------------------------------------------


def derivation(
    formula: Formula,
    bound: Bound,
    *,
    convention: cost.Convention = cost.TORCH,
    expand: bool = False,
) -> dict[str, Any]:
    """Everything ``symcost derive`` shows, as plain data (the JSON format's contract)."""
    subs = dict(bound.subs)
    inline = {}
    where = {}
    for name, (symbol, definition) in formula.where.items():
        value = definition.xreplace(inline).xreplace(subs)
        if expand or bound.values or value.is_Atom:
            inline[symbol] = value
        where[name] = value

    def show(e: Any) -> Any:
        if isinstance(e, Variadic):
            value = subs.get(e.symbol)
            return e if value is None else value
        return e.xreplace(inline).xreplace(subs)

    costs = {k: show(v) for k, v in formula.costs_compact.items()}
    elementwise = {k: show(v) for k, v in formula.elementwise_compact.items()}
    peers = {k: show(v) for k, v in formula.peers_compact.items()}
    flops = cost.flops(costs["macs"], elementwise, convention, peers)

    symbols = {}
    for name, sym in formula.shape_symbols.items():
        symbols[name] = {"kind": "shape", "doc": sym.doc}
    for attr in formula.attributes.values():
        for symbol_name in attr.symbol_names:
            symbols[symbol_name] = {
                "kind": "attribute",
                "attribute": attr.name,
                "type": attr.kind,
                "doc": formula.symbol_doc(symbol_name),
                "default": attr.default,
                "min": attr.minimum,
            }
    return {
        "name": formula.name,
        "summary": formula.summary,
        "path": formula.path,
        "convention": {"name": convention.name, "doc": convention.description},
        "symbols": symbols,
        "bound": {k: format_expr(v) for k, v in bound.values.items()},
        "free": [n for n in formula.symbols if n not in bound.values],
        "inputs": {k: [format_expr(d) for d in v] for k, v in formula.inputs.items()},
        "where": {k: format_expr(v) for k, v in where.items() if formula.where[k][0] not in inline},
        "constraints": [
            {"check": format_expr(c.check.xreplace(inline).xreplace(subs)), "message": c.message}
            for c in bound.constraints
        ],
        "defaults_not_applied": {
            n: format_expr(info["default"])
            for n, info in symbols.items()
            if info["kind"] == "attribute" and info["default"] is not None and n not in bound.values
        },
        "outputs": {k: [format_expr(show(d)) for d in v] for k, v in formula.outputs_compact.items()},
        "costs": {"flops": format_expr(flops), **{k: format_expr(v) for k, v in costs.items()}},
        "elementwise": {k: format_expr(v) for k, v in elementwise.items()},
        "gemm": {k: format_expr(show(v)) for k, v in formula.gemm_compact.items()},
        "peers": {k: format_expr(v) for k, v in peers.items()},
        "elementwise_in_flops": sorted(convention.elementwise_in_flops),
        "notes": list(formula.notes),
        "sources": list(formula.sources),
        "_exprs": {"flops": flops, **costs},
        "_elementwise": elementwise,
        "_where": where,
        "_outputs": {k: tuple(show(d) for d in v) for k, v in formula.outputs_compact.items()},
    }


_COST_LABELS = keys.LABELS


def render_derivation(data: Mapping[str, Any], fmt: str) -> str:
    fmt = formats.check(fmt, FORMATS)
    if fmt == "json":
        return json_text({k: v for k, v in data.items() if not k.startswith("_")})
    if fmt == "latex":
        return _derive_latex(data)
    if fmt == "markdown":
        return _derive_markdown(data)
    if fmt == "csv":
        return csv_text([("quantity", "closed form"), *_derive_quantities(data)])
    if fmt == "html":
        return _derive_html(data)
    return _derive_text(data)


def _derive_quantities(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(quantity, closed form) rows: intermediates, outputs, costs, elementwise operations."""
    rows = [(k, v) for k, v in d["where"].items()]
    rows += [(f"output {k}", f"[{', '.join(v)}]") for k, v in d["outputs"].items()]
    rows += [
        (label, d["costs"][key]) for key, label in _COST_LABELS.items() if key != "cache" or d["costs"][key] != "0"
    ]
    rows += [(f"elementwise {k}", v) for k, v in d["elementwise"].items()]
    return rows


def symbol_status(d: Mapping[str, Any], name: str) -> str:
    """A symbol's state in a derivation: ``= 3`` when bound, ``default 1``, ``required``, or ``""``."""
    info = d["symbols"][name]
    if name in d["bound"]:
        return f"= {d['bound'][name]}"
    if info["kind"] == "attribute":
        return "required" if info["default"] is None else f"default {format_expr(info['default'])}"
    return ""


def _derive_text(d: Mapping[str, Any]) -> str:
    lines = [f"{d['name']}: {d['summary']}", f"  from {d['path']}", ""]
    width = max([len(n) for n in d["symbols"]] + [8])
    lines.append("Symbols")
    for name, info in d["symbols"].items():
        status = symbol_status(d, name)
        lines.append(f"  {name:<{width}}  {info['doc']}{'  [' + status + ']' if status else ''}")
    if d["bound"] and d["defaults_not_applied"]:
        shown = " ".join(f"{k}={v}" for k, v in d["defaults_not_applied"].items())
        lines.append(f"  (left symbolic, not defaulted: {shown}; --defaults applies them)")
    lines.append("")
    lines.append("Inputs")
    lines += [f"  {k}: [{', '.join(v)}]" for k, v in d["inputs"].items()]
    if d["where"]:
        lines += ["", "Where"]
        lines += [f"  {k} = {v}" for k, v in d["where"].items()]
    if d["constraints"]:
        lines += ["", "Constraints"]
        lines += [f"  {c['check']}    ({c['message']})" for c in d["constraints"]]
    lines += ["", "Outputs"]
    lines += [f"  {k}: [{', '.join(v)}]" for k, v in d["outputs"].items()]
    lines += ["", f"Costs  (convention '{d['convention']['name']}': {d['convention']['doc']})"]
    cw = max(len(v) for v in _COST_LABELS.values())
    for key, label in _COST_LABELS.items():
        if key != "cache" or d["costs"][key] != "0":  # only layers that keep state show a cache
            lines.append(f"  {label:<{cw}} = {d['costs'][key]}")
    if d["gemm"]:
        g = d["gemm"]
        lines.append(
            f"  {'GEMM output tiles':<{cw}} = {g['batch']} x [{g['M']}, {g['N']}]  (batch x [M, N], for --waves)"
        )
    if d["elementwise"]:
        included = set(d["elementwise_in_flops"])
        lines += ["", "Elementwise operations" + (" (not in FLOPs)" if not included else "")]
        for key, value in d["elementwise"].items():
            tag = "  [in FLOPs]" if key in included else ""
            lines.append(f"  {key:<{cw}} = {value}{tag}")
    if d.get("peers"):
        lines += ["", "How peer tools count it (--convention; a tool not listed counts MACs)"]
        lines += [f"  {key:<{cw}} = {value}" for key, value in d["peers"].items()]
    if d["notes"]:
        lines += ["", "Notes"] + [f"  - {n}" for n in d["notes"]]
    if d["sources"]:
        lines += ["", "Sources"] + [f"  - {s}" for s in d["sources"]]
    return "\n".join(lines)


#: The costs' names in LaTeX, in the order derive shows them (``--format latex``, the reference).
LATEX_COST_LABELS = keys.LATEX


def _derive_latex(d: Mapping[str, Any]) -> str:
    rows = [
        rf"{latex_symbol(name)} &= \left({', '.join(latex_expr(dim) for dim in shape)}\right)"
        for name, shape in d["_outputs"].items()
    ]
    for name, value in d["_where"].items():
        if name in d["where"]:
            rows.append(rf"{latex_symbol(name)} &= {latex_expr(value)}")
    for key, label in LATEX_COST_LABELS.items():
        if key == "cache" and d["_exprs"][key] == 0:
            continue
        rows.append(rf"{label} &= {latex_expr(d['_exprs'][key])}")
    for key, value in d["_elementwise"].items():
        rows.append(rf"\mathrm{{{key}}} &= {latex_expr(value)}")
    body = " \\\\\n".join(rows)
    comment = latex_comment(f"symcost derive {d['name']} (convention: {d['convention']['name']})")
    return f"{comment}\n\\begin{{align*}}\n{body}\n\\end{{align*}}"


def _derive_markdown(d: Mapping[str, Any]) -> str:
    lines = [
        f"### {markdown_code(d['name'])}",
        "",
        markdown_text(d["summary"]),
        "",
        "| symbol | meaning | value |",
        "|---|---|---|",
    ]
    for name, info in d["symbols"].items():
        value = d["bound"].get(name)
        if value is None and info["kind"] == "attribute" and info["default"] is not None:
            value = f"default {format_expr(info['default'])}"
        lines.append(f"| {markdown_code(name)} | {markdown_text(info['doc'])} | {markdown_text(value or '')} |")
    lines += ["", "| quantity | closed form |", "|---|---|"]
    for k, v in d["where"].items():
        lines.append(f"| {markdown_code(k)} | {markdown_code(v)} |")
    for k, v in d["outputs"].items():
        shape = "[" + ", ".join(v) + "]"
        lines.append(f"| output {markdown_code(k)} | {markdown_code(shape)} |")
    for key, label in _COST_LABELS.items():
        if key != "cache" or d["costs"][key] != "0":
            lines.append(f"| {label} | {markdown_code(d['costs'][key])} |")
    for key, value in d["elementwise"].items():
        lines.append(f"| elementwise {markdown_code(key)} | {markdown_code(value)} |")
    if d["notes"]:
        lines += [""] + [f"- {markdown_text(n)}" for n in d["notes"]]
    return "\n".join(lines)


# ---- list formulas -----------------------------------------------------------------------------


def render_formula_list(formulas: list[Formula], fmt: str) -> str:
    fmt = formats.check(fmt, FORMATS)
    if fmt in ("csv", "latex", "html"):
        table = formats.Table(("formula", "category", "summary"), [(f.name, f.category, f.summary) for f in formulas])
        return table.render(fmt)
    if fmt == "json":
        return json_text(
            [{"name": f.name, "category": f.category, "summary": f.summary, "path": f.path} for f in formulas]
        )
    if fmt == "markdown":
        rows = ["| formula | category | summary |", "|---|---|---|"]
        rows += [
            f"| {markdown_code(f.name)} | {markdown_text(f.category)} | {markdown_text(f.summary)} |" for f in formulas
        ]
        return "\n".join(rows)
    width = max((len(f.name) for f in formulas), default=8)
    lines = []
    for category in sorted({f.category for f in formulas}):
        lines.append(category)
        for f in formulas:
            if f.category == category:
                lines.append(f"  {f.name:<{width}}  {terminal_text(f.summary)}")
    lines.append(f"\n{len(formulas)} formulas. `symcost derive NAME` shows one in closed form.")
    return "\n".join(lines)


# ---- eval ------------------------------------------------------------------------------------

EVAL_FORMATS = formats.ALL
_LAYER_COLUMNS = ("params", "macs", "flops", "read", "write")


def block_of(path: str, depth: int) -> str:
    """The block a layer belongs to: the first ``depth`` components of its path, as ``eval --depth``
    folds them (a repeat range such as ``0-31`` is one component); the roofline plot colours by it.

    >>> block_of("layer1.0.conv1", 1), block_of("model.layers.0-31.self_attn", 3)
    ('layer1', 'model.layers.0-31')
    """
    return ".".join(path.split(".")[:depth])


def fold(result: Any, depth: int | None, times: Any = None) -> list[dict[str, Any]]:
    """Per-layer rows, or rows folded to the first ``depth`` components of each layer path.

    With ``times`` (one :class:`~symcost.roofline.LayerTime` per node), rows also carry exact
    ``compute_s``, ``memory_s`` and ``latency_s`` sums and the ``bound`` of their layers (``mixed``
    when a folded row holds layers bound by different ceilings).
    """
    rows: list[dict[str, Any]] = []
    index: dict[str, dict[str, Any]] = {}
    for position, node in enumerate(result.nodes):
        key = block_of(node.path, depth) if depth else node.path
        row = index.get(key)
        if row is None:
            row = {"name": key, "op": node.op, "count": node.count, "output": list(node.output), "layers": 0}
            row.update({k: 0 for k in (*_LAYER_COLUMNS, "buffers", "elementwise")})
            row["tied_to"] = node.tied_to
            index[key] = row
            rows.append(row)
        elif row["op"] != node.op:
            row["op"] = "block"
        row["output"] = list(node.output)
        row["layers"] += node.count
        if key != node.path:
            row["count"] = 1
        for column in (*_LAYER_COLUMNS, "buffers", "elementwise"):
            row[column] += node.values[column]
        if times is not None:
            t = times[position]
            for key in ("compute_s", "memory_s", "latency_s"):
                row[key] = row.get(key, 0) + getattr(t, key)
            row["run_flops"] = row.get("run_flops", 0) + t.flops
            row["bytes"] = row.get("bytes", 0) + t.bytes
            row.setdefault("_bounds", set()).add(t.bound)
    for row in rows:
        if "_bounds" in row:
            bounds = row.pop("_bounds")
            working = bounds - {"none"} or bounds
            row["bound"] = working.pop() if len(working) == 1 else "mixed"
    return rows


def _float(value: Any) -> Any:
    """Exact Fractions become floats in JSON; ints, bools and None stay as they are."""
    from fractions import Fraction

    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, dict):
        return {k: _float(v) for k, v in value.items()}
    return value


def device_data(roof: Any, device: Any, dtype: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``device`` section of ``eval --device`` JSON: what the estimate assumed."""
    return {
        "name": device.name,
        "summary": device.summary,
        "source": device.source,
        "verified": device.verified,
        "dtype": dtype,
        "peak_flop_per_s": float(device.peak(dtype)),
        "bandwidth_bytes_per_s": float(device.bandwidth),
        "capacity_bytes": device.capacity,
        "used_flop_per_s": float(roof.peak),
        "used_bytes_per_s": float(roof.bandwidth),
        "ridge_flop_per_byte": float(roof.ridge),
        **{k: _float(v) for k, v in options.items()},
    }


def eval_data(
    result: Any,
    *,
    dtype: str,
    depth: int | None,
    symbolic: dict[str, Any] | None,
    estimate: Any = None,
    performance: Mapping[str, Any] | None = None,
    device: Mapping[str, Any] | None = None,
    precision: Any = None,
) -> dict[str, Any]:
    """The JSON contract of ``symcost eval``: exact integers, expressions as strings.

    ``precision`` (:class:`~symcost.precision.Precision`, default ``dtype`` for everything) stores the
    weights, activations and KV cache each at its own format; ``precision`` in the output names the three.

    With a device (``estimate``, ``performance``, ``device``): ``totals.latency_s`` and, per layer,
    ``latency_s``, ``compute_s``, ``memory_s``, ``bound``, ``bytes`` and
    ``intensity_flop_per_byte``; seconds and rates are floats (the exact values are Fractions in
    :mod:`symcost.roofline`).
    """
    from .precision import Precision
    from .precision import totals as split_totals

    totals = dict(result.totals)
    traffic_elements = totals["read"] + totals["write"]
    traffic = cost.to_bytes(traffic_elements, dtype)
    mixed = precision is not None and not precision.uniform
    precision = precision if mixed else Precision.of(dtype)
    if mixed:
        traffic = precision.traffic_bytes(split_totals(result))
    data: dict[str, Any] = {
        "arch": result.graph.arch.name,
        "path": result.graph.arch.path,
        "convention": {
            "name": result.convention.name,
            "doc": result.convention.description,
            "headline": result.convention.headline,
        },
        "elementwise_in_flops": sorted(result.convention.elementwise_in_flops),
        "dtype": dtype,
        "values": dict(result.values),
        "outputs": {k: list(v) for k, v in result.outputs.items()},
        "totals": {
            "params": totals["params"],
            "buffers": totals["buffers"],
            "macs": totals["macs"],
            "flops": totals["flops"],
            "elementwise": totals["elementwise"],
            "elementwise_by_category": result.elementwise_by_category(),
            "read_elements": totals["read"],
            "write_elements": totals["write"],
            "model_bytes": precision.weight_bytes(totals["params"] + totals["buffers"]),
            "params_bytes": precision.weight_bytes(totals["params"]),
            "activation_elements": totals["write"],
            "activation_bytes": precision.act_bytes(totals["write"]),
            "traffic_bytes": traffic,
            # FLOP/byte needs FLOPs: 2 per MAC, whatever the convention's headline counts
            "intensity_flop_per_byte": (
                (totals["flops"] if result.convention.flops_per_mac == cost.FLOPS_PER_MAC else 2 * totals["macs"])
                / traffic
            )
            if traffic
            else None,
        },
        "layers": fold(result, depth, estimate.layers if estimate is not None else None),
    }
    if totals.get("unknown"):
        data["totals"]["unknown_layers"] = totals["unknown"]
        data["unknown"] = [r.path for r in result.nodes if r.op == "unknown"]
    data["totals"]["cache_elements"] = totals["cache"]
    data["totals"]["kv_cache_bytes"] = precision.kv_bytes(totals["cache"])
    data["precision"] = precision.data()
    if estimate is not None and performance is not None:
        for row in data["layers"]:
            row["intensity_flop_per_byte"] = row["run_flops"] / row["bytes"] if row["bytes"] else None
            for key in ("compute_s", "memory_s", "latency_s"):
                row[key] = float(row[key])
        data["device"] = dict(device or {})
        data["performance"] = {k: _float(v) for k, v in performance.items()}
        data["totals"]["latency_s"] = float(performance["latency_s"])
    if symbolic is not None and "_leading" in symbolic:
        symbolic = dict(symbolic)
        variable, terms = symbolic.pop("_leading")
        data["leading"] = {
            "variable": variable,
            "terms": {
                key: [
                    {"degree": d, "term": format_expr(t), "share": float(share) if share is not None else None}
                    for d, t, share in rows
                ]  # fmt: skip
                for key, rows in terms.items()
            },
        }
    if symbolic is not None:
        keys = [k for k in (*TOTAL_ORDER, "cache", "latency_s", "intensity_flop_per_byte") if k in symbolic]
        if "cache" in keys and symbolic["cache"] == 0:
            keys.remove("cache")
        data["symbolic"] = {k: format_expr(symbolic[k]) for k in keys}
        data["free"] = sorted({s.name for k in keys for s in symbolic[k].free_symbols})
        data["_symbolic_latex"] = {k: latex_expr(symbolic[k]) for k in keys}
    return data


TOTAL_ORDER = ("params", "buffers", "macs", "flops", "elementwise", "read", "write")


def render_eval(data: dict[str, Any], fmt: str) -> str:
    fmt = formats.check(fmt, EVAL_FORMATS)
    if fmt == "json":
        # a ratio variable's exact value (11/10) is written as its text, never as a rounded float
        return json_text({k: v for k, v in data.items() if not k.startswith("_")})
    if fmt == "html":
        return _eval_html(data)
    if fmt == "csv":
        return _eval_csv(data)
    if fmt == "markdown":
        return _eval_markdown(data)
    if fmt == "latex":
        return _eval_latex(data)
    return _eval_table(data)


def _name(row: dict[str, Any]) -> str:
    suffix = f" x{row['count']}" if row["count"] != 1 else ""
    tied = f" (tied to {row['tied_to']})" if row.get("tied_to") else ""
    return f"{row['name']}{suffix}{tied}"


def _terminal_rows(body: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [tuple(terminal_text(c) for c in row) for row in body]


def _roofline_rows(d: dict[str, Any]) -> list[str]:
    """The per-layer table with a device: FLOPs, bytes, intensity, the two times, the bound."""
    header = ("layer", "op", "FLOPs", "bytes", "FLOP/B", "compute", "memory", "latency", "bound", "time %")
    total = d["totals"]["latency_s"] or 1
    body = []
    for row in d["layers"]:
        intensity = row["intensity_flop_per_byte"]
        body.append(
            (
                _name(row),
                row["op"],
                format_count(row["run_flops"]),
                format_count(row["bytes"]),
                "-" if intensity is None else f"{intensity:.3g}",
                duration(row["compute_s"]),
                duration(row["memory_s"]),
                duration(row["latency_s"]),
                row["bound"],
                f"{100 * row['latency_s'] / total:.1f}",
            )
        )
    return _aligned(header, _terminal_rows(body), right={2, 3, 4, 5, 6, 7, 9})


_aligned = formats.aligned


def rate_unit(dtype: str) -> str:
    """Integer throughput is in operations per second (TOP/s), floating point in FLOP/s."""
    return "OP/s" if dtype.startswith("int") else "FLOP/s"


def _performance_lines(d: dict[str, Any]) -> list[str]:  # noqa: PLR0915 - one printed section
    dev, p = d["device"], d["performance"]
    dtype, unit, phase = dev["dtype"], rate_unit(dev["dtype"]), p["phase"]
    derated = (
        dev["used_flop_per_s"] != dev["peak_flop_per_s"] or dev["used_bytes_per_s"] != dev["bandwidth_bytes_per_s"]
    )
    used = f"; used at {si(dev['used_flop_per_s'], unit)} and {si(dev['used_bytes_per_s'], 'B/s')}" if derated else ""
    overlap = "max(compute, memory)" if dev["overlap"] == "max" else "compute + memory"
    unverified = "" if dev["verified"] else "  [figures not verified: see its file]"
    runtime = dev.get("runtime")
    bound = runtime is None or dev.get("bound", False)
    title = "Roofline" if bound else f"Runtime {runtime}"
    lines = [
        "",
        f"{title} on {dev['name']} ({dev['summary']}){unverified}",
        f"  {dtype} peak {si(dev['peak_flop_per_s'], unit)}, bandwidth {si(dev['bandwidth_bytes_per_s'], 'B/s')}{used}",
        f"  ridge point {dev['ridge_flop_per_byte']:.1f} FLOP/byte: a layer below it is memory-bound; "
        f"layer latency = {overlap}" + ("; tile/wave quantization on" if dev.get("waves") else ""),
        "  an estimate from the roofline model (a lower bound at these efficiencies), not a measurement",
        "",
    ]
    if not bound:
        overlap = "max(compute, memory) + overhead"
        lines[3] = (f"  ridge point {dev['ridge_flop_per_byte']:.1f} FLOP/byte at the runtime's efficiencies; "
                    f"kernel latency = {overlap}")  # fmt: skip
        lines[4] = (f"  an estimate for {runtime} ({dev['runtime_summary']}), not a bound and not a measurement: "
                    f"expected error {dev['expected_error']}")  # fmt: skip
    error = "" if bound else f"±{dev['validation']['error_pct']}%" if dev.get("validation") else ""
    label = {"prefill": "time to first token", "decode": "time per output token", "train": "training step"}
    label = label.get(phase, "latency")

    def row(name: str, value: str, extra: str = "") -> str:
        return f"  {name:<36} {value:>14}  {extra}".rstrip()

    def exact(seconds: float) -> str:  # 4 significant digits: a near miss must not print as a tie
        return duration(seconds, digits=4)

    by_bound = ", ".join(f"{n} {b}" for b, n in sorted(p["layers_by_bound"].items()))
    lines.append(
        row(
            f"{label} (phase {phase})",
            exact(p["latency_s"]),
            f"sum over layers of {overlap}; layers: {by_bound}" + (f"; expected error {error}" if error else ""),
        )
    )
    lines.append(row("  in compute-bound layers", exact(p["compute_bound_s"])))
    lines.append(row("  in memory-bound layers", exact(p["memory_bound_s"])))
    if p["tokens_per_s"] is not None:
        lines.append(
            row(
                "throughput",
                f"{p['tokens_per_s']:,.1f}",
                f"tokens/s ({p['tokens']} per pass)" + (f", {error}" if error else ""),
            )
        )
    elif p["samples_per_s"] is not None:
        lines.append(
            row(
                "throughput",
                f"{p['samples_per_s']:,.1f}",
                f"samples/s ({p['samples']} per pass)" + (f", {error}" if error else ""),
            )
        )
    if phase == "train":
        extra = f"{format_count(p['flops'])} = {cost.TRAINING_FACTOR} x forward; optimizer {p.get('optimizer')}"
        lines.append(row("FLOPs per step", si(p["flops"], "FLOP"), extra))
    at = " (at the --efficiency peak)" if derated else ""
    if not bound:
        at = " (at the runtime's compute efficiency)"
    lines.append(row("FLOPs / peak", exact(p["flops_lower_bound_s"]), f"the whole-model compute bound{at}"))
    lines.append(
        row(
            "weights / bandwidth",
            exact(p["weights_lower_bound_s"]),
            "every weight read once (a reference: lookups read only their rows)",
        )
    )
    if p["attained_flop_per_s"] is not None:
        share = p["attained_flop_per_s"] / dev["peak_flop_per_s"]
        lines.append(row("attained", si(p["attained_flop_per_s"], unit), f"{100 * share:.1f}% of the nominal peak"))
    if p["intensity_flop_per_byte"] is not None:
        moved = f"FLOP/byte over {format_count(p['traffic_bytes'])} bytes moved"
        lines.append(row("intensity", f"{p['intensity_flop_per_byte']:.1f}", moved))
    need = p["memory_needed_bytes"]
    names = {"activations": "activations kept for backward" if phase == "train" else "activations (peak alive)"}
    parts = ", ".join(f"{names.get(k, k.replace('_', ' '))} {si(v, 'B')}" for k, v in need.items() if v)
    verdict = "fits" if p["fits"] else "does NOT fit"
    lines.append(
        row("memory needed", si(p["memory_total_bytes"], "B"), f"{verdict} in {si(p['capacity_bytes'], 'B')}: {parts}")
    )
    if p.get("kv_cache_bytes") and phase != "train":
        lines.append(
            row(
                "KV cache",
                si(p["kv_cache_bytes"], "B"),
                f"{format_count(p['kv_cache_bytes'])} bytes as {(d.get('precision') or {}).get('kv', dtype)}",
            )
        )
    if "target_latency_s" in p:
        ok = "meets" if p["meets_target"] else "misses"
        lines.append(row("target latency", exact(p["target_latency_s"]), f"the estimate {ok} it; needs at least:"))
        lines.append(
            row(
                "  bandwidth for the weights",
                si(p["bandwidth_for_weights_bytes_per_s"], "B/s", 4),
                "weights / target",
            )
        )
        lines.append(
            row(
                "  bandwidth for all traffic",
                si(p["bandwidth_for_traffic_bytes_per_s"], "B/s", 4),
                "bytes moved / target",
            )
        )
        lines.append(row("  compute", si(p["flop_per_s_for_target"], unit, 4), "FLOPs / target"))
    return lines


def _eval_table(d: dict[str, Any]) -> str:
    rows = _roofline_rows(d) if "device" in d else _count_rows(d)
    extra = _performance_lines(d) if "device" in d else _training_lines(d)
    return "\n".join([*rows, *_totals_lines(d), *extra, *_symbolic_lines(d)])


def _count_rows(d: dict[str, Any]) -> list[str]:
    flops = d["totals"]["flops"] or 1
    name = "FLOPs" if d["convention"].get("headline", "FLOPs") == "FLOPs" else d["convention"]["name"]
    header = ("layer", "op", "output", "params", "MACs", name, "read", "write", f"{name} %")
    body = []
    for row in d["layers"]:
        body.append(
            (
                _name(row),
                row["op"],
                "x".join(str(v) for v in row["output"]),
                format_count(row["params"]),
                format_count(row["macs"]),
                format_count(row["flops"]),
                format_count(row["read"]),
                format_count(row["write"]),
                f"{100 * row['flops'] / flops:.1f}",
            )
        )
    return _aligned(header, _terminal_rows(body), right={3, 4, 5, 6, 7, 8})


def _totals_lines(d: dict[str, Any]) -> list[str]:
    t = d["totals"]
    values = ", ".join(f"{k}={v}" for k, v in d["values"].items())
    lines = [
        "",
        f"Totals for {terminal_text(d['arch'])} at {values}"
        + (" (one forward pass)" if "training" in d or d.get("performance", {}).get("phase") == "train" else ""),
        f"  convention '{d['convention']['name']}': {d['convention']['doc']}",
    ]
    dtype = d["dtype"]
    stored = d.get("precision") or {}
    weight, act, kv = (stored.get(k, dtype) for k in ("weight", "act", "kv"))
    mixed = len({dtype, weight, act, kv}) > 1
    moved = f"weights {weight}, activations {act}, KV cache {kv}" if mixed else dtype
    if t.get("unknown_layers"):
        lines.append(f"  WARNING: {t['unknown_layers']} layer(s) of unknown cost (op 'unknown', no formula) count 0 in "
                     "every total below: the totals are lower bounds")  # fmt: skip

    def total(label: str, value: int, extra: str = "") -> str:
        return f"  {label:<24} {format_count(value):>24}  {extra}".rstrip()

    if mixed:
        lines.append(f"  precision: compute {dtype}; stored: {moved}")
        lines += [f"    approximated: {note}" for note in stored.get("notes", [])]
    lines.append(total("params", t["params"], f"({si(t['params'])}; {si(t['params_bytes'], 'B')} as {weight})"))
    lines.append(total("buffers", t["buffers"], "(not trainable: e.g. BatchNorm running statistics)"))
    lines.append(total("MACs", t["macs"], f"({si(t['macs'])})"))
    headline = d["convention"].get("headline", "FLOPs")
    if headline == "FLOPs":
        lines.append(total("FLOPs", t["flops"], f"({si(t['flops'], 'FLOP')})"))
    else:  # a tool's own number: what it prints, under its name
        lines.append(
            total(headline, t["flops"], f"({si(t['flops'])}; FLOPs = 2 x MACs = {format_count(2 * t['macs'])})")
        )
    categories = ", ".join(f"{k} {format_count(v)}" for k, v in t["elementwise_by_category"].items() if v)
    folded = ", ".join(d["elementwise_in_flops"])
    note = f"{categories}; {folded} folded into FLOPs" if folded else f"not in FLOPs: {categories}"
    if headline != "FLOPs":
        note = f"symcost's categories: {categories}"
    lines.append(total("elementwise ops", t["elementwise"], f"({note})" if categories else ""))
    lines.append(
        total("model size (bytes)", t["model_bytes"], f"({si(t['model_bytes'], 'B')}, params + buffers as {weight})")
    )
    lines.append(
        total(
            "layer outputs (elements)",
            t["activation_elements"],
            f"({si(t['activation_bytes'], 'B')} as {act}, every layer's output summed)",
        )
    )
    if t["cache_elements"]:
        lines.append(total("KV cache (elements)", t["cache_elements"], f"({si(t['kv_cache_bytes'], 'B')} as {kv})"))
    lines.append(total("memory read (elements)", t["read_elements"], "(inputs, weights and KV cache of every layer)"))
    lines.append(total("memory write (elements)", t["write_elements"]))
    lines.append(total("memory traffic (bytes)", t["traffic_bytes"], f"({si(t['traffic_bytes'], 'B')} as {moved})"))
    if t["intensity_flop_per_byte"] is not None:
        lines.append(f"  {'arithmetic intensity':<24} {t['intensity_flop_per_byte']:>24.2f}  FLOP/byte")
    return lines


def _symbolic_lines(d: dict[str, Any]) -> list[str]:
    if "symbolic" not in d:
        return []
    lines = ["", f"Closed form (free: {', '.join(d['free']) or 'none'})"]
    width = max(len(k) for k in d["symbolic"])
    lines += [f"  {k:<{width}} = {v}" for k, v in d["symbolic"].items()]
    if "leading" in d:
        variable = d["leading"]["variable"]
        lines += ["", f"Terms by power of {variable}, highest first (share at {variable}={d['values'][variable]})"]
        for key, rows in d["leading"]["terms"].items():
            for row in rows:
                share = f"{100 * row['share']:.1f}%" if row["share"] is not None else ""
                lines.append(f"  {key:<{width}}  {variable}**{row['degree']}: {row['term']}  ({share})")
    for row in d.get("symbolic_layers", []):
        if row.get("compute_bound_from"):
            where = ", ".join(f"{k} >= {v}" for k, v in row["compute_bound_from"].items())
            lines.append(f"  {row['name']} turns compute-bound at {where}")
    return lines


def _eval_csv(d: dict[str, Any]) -> str:
    rows: list[list[Any]] = [
        ["layer", "op", "count", "output", "params", "buffers", "macs", "flops", "elementwise", "read", "write"]
    ]
    for r in d["layers"]:
        rows.append([r["name"], r["op"], r["count"], "x".join(map(str, r["output"])), r["params"], r["buffers"],
                     r["macs"], r["flops"], r["elementwise"], r["read"], r["write"]])  # fmt: skip
    t = d["totals"]
    rows.append(["total", "", "", "", t["params"], t["buffers"], t["macs"], t["flops"], t["elementwise"],
                 t["read_elements"], t["write_elements"]])  # fmt: skip
    return csv_text(rows)


def _eval_markdown(d: dict[str, Any]) -> str:
    lines = ["| layer | op | output | params | MACs | FLOPs |", "|---|---|---|---:|---:|---:|"]
    for r in d["layers"]:
        lines.append(f"| {markdown_code(_name(r))} | {markdown_text(r['op'])} | {'x'.join(map(str, r['output']))} | {format_count(r['params'])} | "
                     f"{format_count(r['macs'])} | {format_count(r['flops'])} |")  # fmt: skip
    t = d["totals"]
    lines.append(
        f"| **total** | | | **{format_count(t['params'])}** | **{format_count(t['macs'])}** | **{format_count(t['flops'])}** |"
    )
    if t.get("unknown_layers"):
        lines += [
            "",
            f"**WARNING: {t['unknown_layers']} layer(s) of unknown cost count 0: the totals are lower bounds.**",
        ]
    if "symbolic" in d:
        lines += ["", "| total | closed form |", "|---|---|"]
        lines += [f"| {k} | {markdown_code(v)} |" for k, v in d["symbolic"].items()]
    return "\n".join(lines)


def _eval_latex(d: dict[str, Any]) -> str:
    t = d["totals"]
    rows = [
        r"\begin{tabular}{lrrr}",
        r"\toprule",
        r"layer & params & MACs & FLOPs \\",
        r"\midrule",
    ]
    for r in d["layers"]:
        name = latex_text(_name(r))
        rows.append(
            f"{name} & {format_count(r['params'])} & {format_count(r['macs'])} & {format_count(r['flops'])} \\\\"
        )
    rows += [r"\midrule", f"total & {format_count(t['params'])} & {format_count(t['macs'])} & {format_count(t['flops'])} \\\\",
             r"\bottomrule", r"\end{tabular}"]  # fmt: skip
    out = latex_comment(f"symcost eval {d['arch']} (convention: {d['convention']['name']})") + "\n" + "\n".join(rows)
    if "symbolic" in d:
        out += (
            "\n\\begin{align*}\n"
            + " \\\\\n".join(rf"\mathrm{{{k}}} &= {v}" for k, v in d.get("_symbolic_latex", {}).items())
            + "\n\\end{align*}"
        )
    return out


def render_arch_list(entries: list[tuple[str, str, str]], fmt: str) -> str:
    """``(name, summary, family)`` rows, sorted by family: one heading per family of two or more."""
    fmt = formats.check(fmt, FORMATS)
    if fmt in ("csv", "latex", "html", "markdown"):
        table = formats.Table(("architecture", "family", "summary"), [(n, f, s) for n, s, f in entries], code={0})
        return table.render(fmt)
    if fmt == "json":
        return json_text([{"name": n, "family": f, "summary": s} for n, s, f in entries])
    width = max((len(n) for n, _, _ in entries), default=8)
    sizes: dict[str, int] = {}
    for _, _, family in entries:
        sizes[family] = sizes.get(family, 0) + 1
    lines: list[str] = []
    shown = None
    for name, summary, family in entries:
        if sizes[family] > 1 and family != shown:
            lines.append(f"{family}:")
            shown = family
        elif sizes[family] == 1:
            shown = None
        lines.append(f"  {name:<{width}}  {terminal_text(summary)}")
    families = len(sizes)
    return "\n".join(lines + [f"\n{len(entries)} architectures in {families} families. `symcost eval NAME` costs one."])


# ---- training, symbolic layers, devices ---------------------------------------------------------


def training_data(result: Any, dtype: str, optimizer: str) -> dict[str, Any]:
    """``eval --phase train`` without a device: FLOPs of a step and the memory it holds."""
    from . import memory

    need = memory.needed(result, dtype, training=True, optimizer=optimizer)
    return {
        "optimizer": optimizer,
        "flops": result.totals["flops"] * cost.TRAINING_FACTOR,
        "memory_needed_bytes": need,
        "memory_total_bytes": sum(need.values()),
    }


def _training_lines(d: dict[str, Any]) -> list[str]:
    if "training" not in d:
        return []
    t = d["training"]
    parts = ", ".join(f"{k.replace('_', ' ')} {si(v, 'B')}" for k, v in t["memory_needed_bytes"].items() if v)
    return [
        "",
        f"Training step ({cost.TRAINING_FACTOR} x forward: backward = 2 x forward for matmul-class ops)",
        f"  {'FLOPs per step':<24} {format_count(t['flops']):>24}  ({si(t['flops'], 'FLOP')})",
        f"  {'memory (bytes)':<24} {format_count(t['memory_total_bytes']):>24}  ({si(t['memory_total_bytes'], 'B')}: {parts}; "
        f"optimizer {t['optimizer']}, activations = every layer's output kept for backward)",
    ]


def symbolic_layer_data(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-layer closed forms (``eval --device --symbolic``) as strings, crossovers as ints."""
    out = []
    for row in layers:
        item = {"name": row["name"], "latency_s": format_expr(row["latency_s"])}
        if "intensity_flop_per_byte" in row:
            item["intensity_flop_per_byte"] = format_expr(row["intensity_flop_per_byte"])
        if "compute_bound_from" in row:
            item["compute_bound_from"] = row["compute_bound_from"]
        out.append(item)
    return out


_DTYPE_ORDER = tuple(cost.DTYPE_BITS)


def render_device_list(devices: list[Any], fmt: str) -> str:
    """``symcost list devices``: dense peaks per dtype in T(FL)OP/s, bandwidth, memory, ridge."""
    rows = []
    for d in devices:
        rows.append(
            {
                "name": d.name,
                "summary": d.summary,
                "kind": d.kind,
                "peak_tflop_per_s": {k: float(d.peaks[k] / 10**12) for k in _DTYPE_ORDER if k in d.peaks},
                "sparse_tflop_per_s": {k: float(d.sparse[k] / 10**12) for k in _DTYPE_ORDER if k in d.sparse},
                "bandwidth_gb_per_s": float(d.bandwidth / 10**9),
                "capacity_bytes": d.capacity,
                "ridge_flop_per_byte": {k: float(d.ridge(k)) for k in _DTYPE_ORDER if k in d.peaks},
                "verified": d.verified,
                "source": d.source,
                "path": d.path,
            }
        )
    fmt = formats.check(fmt, FORMATS)
    if fmt == "json":
        return json_text(rows)
    header = ("device", "kind", *(k for k in _DTYPE_ORDER), "GB/s", "memory", "verified")
    body = []
    for r in rows:
        peaks = tuple(f"{r['peak_tflop_per_s'][k]:g}" if k in r["peak_tflop_per_s"] else "-" for k in _DTYPE_ORDER)
        body.append((r["name"], r["kind"], *peaks, f"{r['bandwidth_gb_per_s']:g}", si(r["capacity_bytes"], "B"),
                     "yes" if r["verified"] else "no"))  # fmt: skip
    if fmt != "table":
        return formats.Table(header, body, right=set(range(2, len(header) - 1))).render(fmt)
    lines = _aligned(header, _terminal_rows(body), right=set(range(2, len(header) - 1)))
    lines += [
        "",
        f"{len(rows)} devices. Peaks are dense T(FL)OP/s (10^12 operations/s; a MAC is 2); sparse figures are kept apart",
        "and never used. The peak that applies follows --dtype. `verified: no` marks figures not checked against the",
        "vendor's document (see the device's file).",
    ]
    return "\n".join(lines)


# ---- HTML (notebooks, --format html) ------------------------------------------------------------


def _eval_html(d: dict[str, Any]) -> str:
    """``symcost eval``'s per-layer table and totals in HTML (what a notebook shows)."""
    dtype = d["dtype"]
    t = d["totals"]
    flops = t["flops"] or 1
    name = "FLOPs" if d["convention"].get("headline", "FLOPs") == "FLOPs" else d["convention"]["name"]
    layers = [
        (
            html_code(_name(row)),
            html_text(row["op"]),
            html_text("x".join(str(v) for v in row["output"])),
            *(html_count(row[k]) for k in ("params", "macs", "flops", "read", "write")),
            html_text(f"{100 * row['flops'] / flops:.1f}"),
        )
        for row in d["layers"]
    ]
    header = ("layer", "op", "output", "params", "MACs", name, "read", "write", f"{name} %")
    totals = [
        ("params", t["params"], f"{si(t['params'])}; {si(t['params_bytes'], 'B')} as {dtype}"),
        ("buffers", t["buffers"], "not trainable"),
        ("MACs", t["macs"], si(t["macs"])),
        (name, t["flops"], si(t["flops"], "FLOP") if name == "FLOPs" else si(t["flops"])),
        ("elementwise ops", t["elementwise"], "not in FLOPs" if not d["elementwise_in_flops"] else "some in FLOPs"),
        ("model size (bytes)", t["model_bytes"], f"params + buffers as {dtype}"),
        ("memory read (elements)", t["read_elements"], ""),
        ("memory write (elements)", t["write_elements"], ""),
        ("memory traffic (bytes)", t["traffic_bytes"], f"as {dtype}"),
    ]
    if t["cache_elements"]:
        totals.append(("KV cache (elements)", t["cache_elements"], ""))
    values = ", ".join(f"{k}={v}" for k, v in d["values"].items())
    parts = [
        f"<p><strong>{html_text(d['arch'])}</strong> at {html_text(values)}</p>",
        html_table(header, layers, right=range(3, 9)),
        f"<p>Totals (convention '{html_text(d['convention']['name'])}': {html_text(d['convention']['doc'])})</p>",
        html_table(
            ("total", "value", ""), [(html_text(k), html_count(v), html_text(n)) for k, v, n in totals], right=[1]
        ),
    ]
    return html_div("result", parts)


def _derive_html(d: Mapping[str, Any]) -> str:
    """Summary, symbols (bound values and defaults), then shapes and closed forms as
    ``symcost derive`` prints them (symcost's expression language, pasteable into a YAML file)."""
    symbols = []
    for name, info in d["symbols"].items():
        symbols.append((html_code(name), html_text(info["doc"]), html_text(symbol_status(d, name))))
    forms = [(f"input {html_code(k)}", html_code(f"[{', '.join(v)}]")) for k, v in d["inputs"].items()]
    forms += [(html_code(k), html_code(v)) for k, v in d["where"].items()]
    forms += [(f"output {html_code(k)}", html_code(f"[{', '.join(v)}]")) for k, v in d["outputs"].items()]
    for key, label in _COST_LABELS.items():
        if key != "cache" or d["costs"][key] != "0":
            forms.append((html_text(label), html_code(d["costs"][key])))
    included = set(d["elementwise_in_flops"])
    for key, value in d["elementwise"].items():
        tag = " (in FLOPs)" if key in included else ""
        forms.append((f"elementwise {html_code(key)}{html_text(tag)}", html_code(value)))
    parts = [
        f"<p><strong>{html_text(d['name'])}</strong>: {html_text(d['summary'])}</p>",
        html_table(("symbol", "meaning", "value"), symbols),
        html_table(("quantity", "closed form"), forms),
    ]
    if d["constraints"]:
        items = "".join(f"<li>{html_code(c['check'])} ({html_text(c['message'])})</li>" for c in d["constraints"])
        parts.append(f"<p>Constraints:</p>\n<ul>{items}</ul>")
    parts.append(f"<p>Convention '{html_text(d['convention']['name'])}': {html_text(d['convention']['doc'])}</p>")
    return html_div("formula", parts)
