"""How ``sweep``, ``solve`` and ``compare`` print: tables for people, CSV and JSON for scripts,
LaTeX for papers. Exact counts stay exact; seconds are floats, as in ``symcost eval``."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import formats
from .formats import aligned as _aligned
from .formats import (
    csv_text,
    html_code,
    html_count,
    html_div,
    html_table,
    html_text,
    latex_comment,
    latex_text,
    markdown_code,
    markdown_text,
    terminal_text,
)
from .keys import EVALUATED
from .printer import format_count, format_expr, latex_expr, si

SWEEP_FORMATS = formats.ALL
SOLVE_FORMATS = formats.ALL
COMPARE_FORMATS = formats.ALL
#: A sweep shows this many points in a notebook; the rest are counted, not listed.
MAX_SWEEP_ROWS = 50


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Fraction):
        value = float(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return format_count(int(value))


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        return float(value)
    return value


def _fixed(values: Any) -> dict[str, Any]:
    """Variable values for JSON: numbers as ints, expressions (``W=H``) as text."""
    out = {}
    for k, v in values.items():
        if isinstance(v, int) or getattr(v, "is_Integer", False):
            out[k] = int(v)
        else:
            out[k] = format_expr(v)
    return out


# ---- sweep ----------------------------------------------------------------------------------------


def _sweep_note(s: Any) -> str:
    exact = [n for n in s.metrics if n not in s.approximate and n not in EVALUATED]
    per_point = [n for n in s.metrics if n in EVALUATED]
    parts = []
    if exact:
        how = "int64, bounds proven" if s.mode == "int64" else "Python ints"
        parts.append(f"exact integers ({how}): {', '.join(exact)}")
    if per_point:
        parts.append(f"exact integers (evaluated point by point): {', '.join(per_point)}")
    if s.approximate:
        parts.append(f"float64, approximate: {', '.join(s.approximate)}")
    note = "; ".join(parts)
    return f"{note}\n{s.runtime_note}" if getattr(s, "runtime_note", "") else note


def sweep_data(s: Any) -> dict[str, Any]:
    """The JSON contract of ``symcost sweep``: axes, the fixed variables, and one record per point."""
    names = [a.name for a in s.axes] + list(s.metrics)
    return {
        "arch": s.arch,
        "axes": {a.name: list(a.values) for a in s.axes},
        "fixed": _fixed(s.fixed),
        "metrics": list(s.metrics),
        "approximate": list(s.approximate),
        "exact_mode": s.mode,
        "points": [dict(zip(names, row)) for row in s.rows()],
        "invalid": {str(k): v for k, v in s.reasons.items()},
    }


def invalid_note(s: Any) -> str:
    """How many points of a sweep are not valid: "1 point is not valid ('-')"."""
    invalid = int((~s.valid).sum())
    return f"{invalid:,} point is not valid ('-')" if invalid == 1 else f"{invalid:,} points are not valid ('-')"


def render_sweep(s: Any, fmt: str) -> str:
    fmt = formats.check(fmt, SWEEP_FORMATS)
    names = [a.name for a in s.axes] + list(s.metrics)
    if fmt == "json":
        return formats.json_text(sweep_data(s))
    if fmt == "csv":
        return _sweep_csv(s, names)
    if fmt == "html":
        return _sweep_html(s)
    rows = [tuple(_cell(v) for v in row) for row in s.rows()]
    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in s.fixed.items())
    if fmt in ("markdown", "latex"):
        notes = [] if fmt == "markdown" else [f"{s.size:,} points of {s.arch}; others: {fixed}", _sweep_note(s)]
        return formats.Table(names, rows, right=set(range(len(names))), notes=notes).render(fmt)
    lines = _aligned(tuple(names), rows, set(range(len(names))))
    lines += ["", f"{s.size:,} points of {terminal_text(s.arch)}; others: {fixed}", _sweep_note(s)]
    if s.reasons:
        lines.append(f"{invalid_note(s)}, for example:")
        for index, why in list(s.reasons.items())[:5]:
            point = ", ".join(f"{a}={v}" for a, v in zip((a.name for a in s.axes), _point(s, index)))
            lines.append(f"  at {point}: {terminal_text(why)}")
    return "\n".join(lines)


def _point(s: Any, index: int) -> list[int]:
    out = []
    for axis in reversed(s.axes):
        index, position = divmod(index, len(axis.values))
        out.append(axis.values[position])
    return out[::-1]


def _sweep_csv(s: Any, names: list[str]) -> str:
    """CSV, written in bulk: one format string per row filled by C code, a million rows in ~1 s."""
    import numpy as np

    header = ",".join(names)
    columns = [*s.columns().values(), *s.metrics.values()]
    if s.valid is None and all(c.dtype.kind in "iO" for c in s.metrics.values()):
        flat = np.column_stack(columns).ravel().tolist()
        line = ",".join(["%d"] * len(names)) + "\n"
        return header + "\n" + ((line * s.size) % tuple(flat)).rstrip("\n")
    lines = [header]
    for row in s.rows():
        lines.append(",".join("" if v is None else (repr(v) if isinstance(v, float) else str(v)) for v in row))
    return "\n".join(lines)


# ---- solve ----------------------------------------------------------------------------------------


def solution_data(sol: Any) -> dict[str, Any]:
    return {
        "arch": sol.arch,
        "condition": sol.condition,
        "variable": sol.variable,
        "direction": sol.direction,
        "value": sol.value,
        "step": sol.step,
        "range": [sol.start, sol.limit],
        "method": sol.method,
        "probes": sol.probes,
        "checked": sol.checked,
        "checks": [
            {"value": c["value"], "holds": c["holds"], "metrics": {k: _plain(v) for k, v in c["metrics"].items()}}
            for c in sol.checks
        ],
        "fixed": _fixed(sol.fixed),
        "why": sol.why,
    }


def render_solution(sol: Any, fmt: str) -> str:
    fmt = formats.check(fmt, SOLVE_FORMATS)
    if fmt == "json":
        return formats.json_text(solution_data(sol))
    if fmt == "html":
        return _solution_html(sol)
    if fmt in ("markdown", "csv", "latex"):
        return _solution_table(sol).render(fmt)
    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in sol.fixed.items())
    arch = terminal_text(sol.arch)
    step = f" (multiples of {sol.step})" if sol.step > 1 else ""
    if sol.value is None:
        return "\n".join(
            [f"{arch}: no answer for {sol.condition!r}{step}: {terminal_text(sol.why)}", f"  others: {fixed}"]
        )
    lines = [
        f"{sol.direction} {sol.variable}{step} with {sol.condition} for {arch}: {sol.variable} = {sol.value:,}",
        f"  others: {fixed}",
        f"  found on the {sol.method} in {sol.probes} evaluations (doubling, then bisection; "
        f"assumes the condition changes once as {sol.variable} grows)",
        "  checked on the exact path of `symcost eval`:",
    ]
    for c in sol.checks:
        shown = ", ".join(f"{k} = {_metric(k, v)}" for k, v in c["metrics"].items())
        lines.append(f"    {sol.variable} = {c['value']:,}: {shown}  {'holds' if c['holds'] else 'fails'}")
    if not sol.checked:
        lines.append(
            "  WARNING: the check failed: the condition does not change exactly here; do not trust this answer"
        )
    return "\n".join(lines)


def _solution_table(sol: Any) -> formats.Table:
    """The checks at the answer and one step past it, under the answer (the title)."""
    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in sol.fixed.items())
    if sol.value is None:
        title = f"{sol.arch}: no answer for {sol.condition!r}: {sol.why}"
    else:
        title = f"{sol.direction} {sol.variable} with {sol.condition} for {sol.arch}: {sol.variable} = {sol.value}"
    metrics = list(sol.checks[0]["metrics"]) if sol.checks else []
    rows = [(c["value"], *(c["metrics"][k] for k in metrics), "holds" if c["holds"] else "fails") for c in sol.checks]
    notes = [f"others: {fixed}"] + ([] if sol.checked or sol.value is None else ["WARNING: the check failed"])
    return formats.Table((sol.variable, *metrics, "condition"), rows, right=set(range(1 + len(metrics))),
                         title=title, notes=notes)  # fmt: skip


def _metric(name: str, value: Any) -> str:
    if isinstance(value, Fraction):
        return f"{float(value):.6g} s"
    if name.endswith("bytes") or name == "memory":
        return f"{format_count(value)} ({si(value, 'B')})"
    return format_count(value)


# ---- compare --------------------------------------------------------------------------------------


def comparison_data(c: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "archs": c.archs,
        "values": c.values,
        "metrics": [
            {
                "metric": r["metric"],
                "values": [_plain(v) for v in r["values"]],
                "ratios": [float(x) if x is not None else None for x in r["ratios"]],
                "ratios_exact": [str(x) if x is not None else None for x in r["ratios"]],
            }
            for r in c.rows
        ],
    }
    if c.free:
        data["free"] = c.free
        data["closed"] = [
            {
                "metric": r["metric"],
                "forms": [format_expr(f) for f in r["forms"]],
                "ratios": [format_expr(x) if x is not None else None for x in r["ratios"]],
            }
            for r in c.closed
        ]
    return data


def _ratio(x: Any) -> str:
    return "-" if x is None else f"{float(x):.4g}x"


def render_comparison(c: Any, fmt: str) -> str:
    fmt = formats.check(fmt, COMPARE_FORMATS)
    if fmt == "json":
        return formats.json_text(comparison_data(c))
    if fmt == "html":
        return _comparison_html(c)
    others = c.archs[1:]
    header = ("metric", *c.archs, *(f"{a} / {c.archs[0]}" for a in others))
    body = [(r["metric"], *(_cell(v) for v in r["values"]), *(_ratio(x) for x in r["ratios"][1:])) for r in c.rows]
    if fmt == "csv":
        return csv_text([header, *_csv_rows(c)])
    if fmt == "markdown":
        lines = ["| " + " | ".join(markdown_text(h) for h in header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        if c.free:
            lines += [
                "",
                "| metric | " + " | ".join(markdown_text(a) for a in c.archs) + " |",
                "|---|" + "---|" * len(c.archs),
            ]
            lines += [
                f"| {r['metric']} | " + " | ".join(markdown_code(format_expr(f)) for f in r["forms"]) + " |"
                for r in c.closed
            ]
        return "\n".join(lines)
    if fmt == "latex":
        return _comparison_latex(c, header, body)
    header = tuple(terminal_text(h) for h in header)
    lines = _aligned(header, body, set(range(1, len(header))))
    values = "; ".join(f"{terminal_text(a)}: " + ", ".join(f"{k}={v}" for k, v in vals.items())
                       for a, vals in zip(c.archs, c.values))  # fmt: skip
    lines += ["", f"at {values}"]
    if getattr(c, "runtime_note", ""):
        lines.append(c.runtime_note)
    if c.free:
        lines += ["", f"Closed forms (free: {', '.join(c.free)})"]
        labels = [terminal_text(label) for label in (*c.archs, *(f"{a} / {c.archs[0]}" for a in others))]
        width = max(len(label) for label in labels)
        for r in c.closed:
            for label, form in zip(labels, [*r["forms"], *r["ratios"][1:]]):
                lines.append(f"  {r['metric']:<14} {label:<{width}} = {format_expr(form)}")
    return "\n".join(lines)


def _csv_rows(c: Any) -> list[tuple[Any, ...]]:
    return [
        (r["metric"], *(_plain(v) for v in r["values"]), *(float(x) if x is not None else "" for x in r["ratios"][1:]))
        for r in c.rows
    ]


def _comparison_latex(c: Any, header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    tex = latex_text

    lines = [
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(tex(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex(cell).replace("x", r"$\times$") if i > len(c.archs) else tex(cell)
                         for i, cell in enumerate(row)) + r" \\" for row in body]  # fmt: skip
    lines += [r"\bottomrule", r"\end{tabular}"]
    out = latex_comment(f"symcost compare {' '.join(c.archs)}") + "\n" + "\n".join(lines)
    if c.free:
        rows = []
        for r in c.closed:
            for arch, form in zip(c.archs, r["forms"]):
                rows.append(rf"\mathrm{{{tex(r['metric'])}}}_{{\mathrm{{{tex(arch)}}}}} &= {latex_expr(form)}")
        out += "\n\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"
    return out


def _sweep_html(s: Any, max_rows: int = MAX_SWEEP_ROWS) -> str:
    """The sweep's table (its first ``max_rows`` points) and the notes ``symcost sweep`` prints."""
    names = [a.name for a in s.axes] + list(s.metrics)
    rows = []
    for index, row in enumerate(s.rows()):
        if index == max_rows:
            break
        rows.append(tuple(html_text(_cell(v)) for v in row))
    parts = [html_table(names, rows, right=range(len(names)))]
    if s.size > max_rows:
        parts.append(f"<p>... {s.size - max_rows:,} more points (<code>rows()</code> yields them all)</p>")
    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in s.fixed.items())
    parts.append(
        f"<p>{s.size:,} points of {html_text(s.arch)}; others: {html_text(fixed)}<br>{html_text(_sweep_note(s))}</p>"
    )
    if s.reasons:
        example = html_text(next(iter(s.reasons.values())))
        parts.append(f"<p>{html_text(invalid_note(s))}, for example: {example}</p>")
    return html_div("sweep", parts)


def _solution_html(sol: Any) -> str:
    """The answer in one line, and the exact checks at the answer and one step past it."""
    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in sol.fixed.items())
    step = f" (multiples of {sol.step})" if sol.step > 1 else ""
    if sol.value is None:
        return html_div("solution", [f"<p>{html_text(sol.arch)}: no answer for {html_code(sol.condition)}{html_text(step)}: "
                                 f"{html_text(sol.why)}</p>"])  # fmt: skip
    parts = [
        f"<p>{html_text(sol.direction)} {html_code(sol.variable)}{html_text(step)} with {html_code(sol.condition)} for "
        f"{html_text(sol.arch)}: <strong>{html_code(sol.variable)} = {html_count(sol.value)}</strong></p>",
    ]
    metrics = list(sol.checks[0]["metrics"]) if sol.checks else []
    rows = [
        (
            html_count(c["value"]),
            *(html_text(_metric(k, c["metrics"][k])) for k in metrics),
            "holds" if c["holds"] else "fails",
        )
        for c in sol.checks
    ]
    parts.append(html_table((sol.variable, *metrics, "condition"), rows, right=range(1 + len(metrics))))
    how = f"found on the {sol.method} in {sol.probes} evaluations, checked on the exact path of symcost eval"
    parts.append(f"<p>others: {html_text(fixed)}<br>{html_text(how)}</p>")
    if not sol.checked:
        parts.append("<p><strong>WARNING: the check failed: do not trust this answer</strong></p>")
    return html_div("solution", parts)


def _comparison_html(c: Any) -> str:
    """Each metric of each architecture, its ratio to the first, and the closed forms with ``free``."""
    others = c.archs[1:]
    header = ("metric", *c.archs, *(f"{a} / {c.archs[0]}" for a in others))
    rows = [
        (
            html_text(r["metric"]),
            *(html_text(_cell(v)) for v in r["values"]),
            *(html_text(_ratio(x)) for x in r["ratios"][1:]),
        )
        for r in c.rows
    ]
    parts = [html_table(header, rows, right=range(1, len(header)))]
    values = "; ".join(f"{a}: " + ", ".join(f"{k}={v}" for k, v in vals.items()) for a, vals in zip(c.archs, c.values))
    parts.append(f"<p>at {html_text(values)}</p>")
    if c.free:
        labels = [*c.archs, *(f"{a} / {c.archs[0]}" for a in others)]
        forms = [
            (html_text(r["metric"]), html_text(label), html_code("-" if form is None else format_expr(form)))
            for r in c.closed
            for label, form in zip(labels, [*r["forms"], *r["ratios"][1:]])
        ]
        parts.append(f"<p>Closed forms (free: {html_text(', '.join(c.free))})</p>")
        parts.append(html_table(("metric", "of", "closed form"), forms))
    return html_div("comparison", parts)
