r"""Notebook display: the HTML and LaTeX that Jupyter shows for symcost's objects.

The classes keep one-line ``_repr_html_`` / ``_repr_latex_`` methods that import this module when
a notebook asks, so ``import symcost`` never pays for it. The content is what the command line
prints, through the same code: :func:`symcost.report.derivation` for a formula (``symcost derive``),
:func:`symcost.report.eval_data` for an architecture (``symcost eval``). Counts are exact, with
thousands separators; every piece of text is escaped.

>>> from symcost import formulas
>>> r = formulas.conv2d.evaluate(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1)
>>> print(evaluation_latex(r))
\begin{align*}
y &= (1, 64, 112, 112) \\
\mathrm{FLOPs} &= 43{,}352{,}064 \\
\mathrm{MACs} &= 21{,}676{,}032 \\
\mathrm{params} &= 1{,}792 \\
...
\end{align*}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

#: A sweep shows this many points in a notebook; the rest are counted, not listed.
MAX_SWEEP_ROWS = 50


# ---- HTML building blocks ----------------------------------------------------------------------


def _text(value: Any) -> str:
    return escape(str(value))


def _code(value: Any) -> str:
    return f"<code>{_text(value)}</code>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """A table of cells that are already HTML; columns in ``right`` are right-aligned (numbers)."""
    right = set(right)

    def cell(tag: str, index: int, content: str) -> str:
        align = "right" if index in right else "left"
        return f'<{tag} style="text-align: {align}">{content}</{tag}>'

    head = "".join(cell("th", i, _text(h)) for i, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _div(kind: str, parts: Iterable[str]) -> str:
    return f'<div class="symcost-{kind}">\n' + "\n".join(parts) + "\n</div>"


def _count(value: Any) -> str:
    from .report import format_count

    return _text(format_count(int(value)))


def _values(values: Any) -> str:
    from .report import format_expr

    return ", ".join(f"{k}={format_expr(v)}" for k, v in values.items())


# ---- a formula, bound or not (symcost derive) --------------------------------------------------


def _derivation(formula: Any, bound: Any) -> dict[str, Any]:
    from . import report

    return report.derivation(formula, bound if bound is not None else formula.bind())


def formula_latex(formula: Any, bound: Any = None) -> str:
    """The output shapes and costs as one ``align*`` block: ``symcost derive NAME --format latex``
    without its leading comment line (a notebook would show it)."""
    from .report import _derive_latex

    block = _derive_latex(_derivation(formula, bound))
    return block[block.index("\\begin{align*}") :]


def formula_html(formula: Any, bound: Any = None) -> str:
    """Summary, symbols (bound values and defaults), then shapes and closed forms as
    ``symcost derive`` prints them (symcost's expression language, pasteable into a YAML file)."""
    from .report import _COST_LABELS, symbol_status

    d = _derivation(formula, bound)
    symbols = []
    for name, info in d["symbols"].items():
        symbols.append((_code(name), _text(info["doc"]), _text(symbol_status(d, name))))
    forms = [(f"input {_code(k)}", _code(f"[{', '.join(v)}]")) for k, v in d["inputs"].items()]
    forms += [(_code(k), _code(v)) for k, v in d["where"].items()]
    forms += [(f"output {_code(k)}", _code(f"[{', '.join(v)}]")) for k, v in d["outputs"].items()]
    for key, label in _COST_LABELS.items():
        if key != "cache" or d["costs"][key] != "0":
            forms.append((_text(label), _code(d["costs"][key])))
    included = set(d["elementwise_in_flops"])
    for key, value in d["elementwise"].items():
        tag = " (in FLOPs)" if key in included else ""
        forms.append((f"elementwise {_code(key)}{_text(tag)}", _code(value)))
    parts = [
        f"<p><strong>{_text(d['name'])}</strong>: {_text(d['summary'])}</p>",
        _table(("symbol", "meaning", "value"), symbols),
        _table(("quantity", "closed form"), forms),
    ]
    if d["constraints"]:
        items = "".join(f"<li>{_code(c['check'])} ({_text(c['message'])})</li>" for c in d["constraints"])
        parts.append(f"<p>Constraints:</p>\n<ul>{items}</ul>")
    parts.append(f"<p>Convention '{_text(d['convention']['name'])}': {_text(d['convention']['doc'])}</p>")
    return _div("formula", parts)


# ---- one formula at one point (Formula.evaluate) -------------------------------------------------


def _evaluation_rows(ev: Any) -> list[tuple[str, str, Any]]:
    """(name, label, value) for each number of an Evaluation, in ``derive``'s order; a shape is a tuple."""
    rows: list[tuple[str, str, Any]] = [(k, f"output {k}", v) for k, v in ev.outputs.items()]
    rows += [("FLOPs", "FLOPs", ev.flops), ("MACs", "MACs", ev.macs), ("params", "params", ev.params)]
    rows += [("buffers", "buffers", ev.buffers), ("read", "read (elements)", ev.read)]
    rows.append(("write", "write (elements)", ev.write))
    if ev.cache:
        rows.append(("cache", "cache (elements)", ev.cache))
    rows += [(k, f"elementwise {k}", v) for k, v in ev.elementwise.items()]
    return rows


def evaluation_html(ev: Any) -> str:
    """An Evaluation as a table of exact counts, under a line naming the formula and its values."""
    rows = []
    for _, label, value in _evaluation_rows(ev):
        shown = _text(" x ".join(map(str, value))) if isinstance(value, tuple) else _count(value)
        rows.append((_text(label), shown))
    parts = [
        f"<p><strong>{_text(ev.formula)}</strong> at {_text(_values(ev.values))} "
        f"(convention '{_text(ev.convention)}')</p>",
        _table(("quantity", "value"), rows, right=[1]),
    ]
    return _div("evaluation", parts)


def evaluation_latex(ev: Any) -> str:
    """An Evaluation as an ``align*`` block: outputs as tuples, counts with ``{,}`` between thousands."""
    from .report import latex_symbol

    rows = []
    for name, _label, value in _evaluation_rows(ev):
        if isinstance(value, tuple):
            rows.append(f"{latex_symbol(name)} &= ({', '.join(map(str, value))})")
        else:
            rows.append(rf"\mathrm{{{name}}} &= " + f"{value:,}".replace(",", "{,}"))
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


# ---- an architecture at one point (compile.evaluate) ---------------------------------------------


def result_html(result: Any, dtype: str = "fp32") -> str:
    """``symcost eval``'s per-layer table and totals, from :func:`symcost.report.eval_data`."""
    from .report import _name, eval_data, si

    d = eval_data(result, dtype=dtype, depth=None, symbolic=None)
    t = d["totals"]
    flops = t["flops"] or 1
    name = "FLOPs" if d["convention"].get("headline", "FLOPs") == "FLOPs" else d["convention"]["name"]
    layers = [
        (
            _code(_name(row)),
            _text(row["op"]),
            _text("x".join(str(v) for v in row["output"])),
            *(_count(row[k]) for k in ("params", "macs", "flops", "read", "write")),
            _text(f"{100 * row['flops'] / flops:.1f}"),
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
        f"<p><strong>{_text(d['arch'])}</strong> at {_text(values)}</p>",
        _table(header, layers, right=range(3, 9)),
        f"<p>Totals (convention '{_text(d['convention']['name'])}': {_text(d['convention']['doc'])})</p>",
        _table(("total", "value", ""), [(_text(k), _count(v), _text(n)) for k, v, n in totals], right=[1]),
    ]
    return _div("result", parts)


# ---- sweep, solve, compare ------------------------------------------------------------------------


def sweep_html(s: Any, max_rows: int = MAX_SWEEP_ROWS) -> str:
    """The sweep's table (its first ``max_rows`` points) and the notes ``symcost sweep`` prints."""
    from .report import format_expr
    from .report_analysis import _cell, _sweep_note, invalid_note

    names = [a.name for a in s.axes] + list(s.metrics)
    rows = []
    for index, row in enumerate(s.rows()):
        if index == max_rows:
            break
        rows.append(tuple(_text(_cell(v)) for v in row))
    parts = [_table(names, rows, right=range(len(names)))]
    if s.size > max_rows:
        parts.append(f"<p>... {s.size - max_rows:,} more points (<code>rows()</code> yields them all)</p>")
    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in s.fixed.items())
    parts.append(f"<p>{s.size:,} points of {_text(s.arch)}; others: {_text(fixed)}<br>{_text(_sweep_note(s))}</p>")
    if s.reasons:
        example = _text(next(iter(s.reasons.values())))
        parts.append(f"<p>{_text(invalid_note(s))}, for example: {example}</p>")
    return _div("sweep", parts)


def solution_html(sol: Any) -> str:
    """The answer in one line, and the exact checks at the answer and one step past it."""
    from .report import format_expr
    from .report_analysis import _metric

    fixed = ", ".join(f"{k}={format_expr(v)}" for k, v in sol.fixed.items())
    step = f" (multiples of {sol.step})" if sol.step > 1 else ""
    if sol.value is None:
        return _div("solution", [f"<p>{_text(sol.arch)}: no answer for {_code(sol.condition)}{_text(step)}: "
                                 f"{_text(sol.why)}</p>"])  # fmt: skip
    parts = [
        f"<p>{_text(sol.direction)} {_code(sol.variable)}{_text(step)} with {_code(sol.condition)} for "
        f"{_text(sol.arch)}: <strong>{_code(sol.variable)} = {_count(sol.value)}</strong></p>",
    ]
    metrics = list(sol.checks[0]["metrics"]) if sol.checks else []
    rows = [
        (_count(c["value"]), *(_text(_metric(k, c["metrics"][k])) for k in metrics), "holds" if c["holds"] else "fails")
        for c in sol.checks
    ]
    parts.append(_table((sol.variable, *metrics, "condition"), rows, right=range(1 + len(metrics))))
    how = f"found on the {sol.method} in {sol.probes} evaluations, checked on the exact path of symcost eval"
    parts.append(f"<p>others: {_text(fixed)}<br>{_text(how)}</p>")
    if not sol.checked:
        parts.append("<p><strong>WARNING: the check failed: do not trust this answer</strong></p>")
    return _div("solution", parts)


def comparison_html(c: Any) -> str:
    """Each metric of each architecture, its ratio to the first, and the closed forms with ``free``."""
    from .report import format_expr
    from .report_analysis import _cell, _ratio

    others = c.archs[1:]
    header = ("metric", *c.archs, *(f"{a} / {c.archs[0]}" for a in others))
    rows = [
        (_text(r["metric"]), *(_text(_cell(v)) for v in r["values"]), *(_text(_ratio(x)) for x in r["ratios"][1:]))
        for r in c.rows
    ]
    parts = [_table(header, rows, right=range(1, len(header)))]
    values = "; ".join(f"{a}: " + ", ".join(f"{k}={v}" for k, v in vals.items()) for a, vals in zip(c.archs, c.values))
    parts.append(f"<p>at {_text(values)}</p>")
    if c.free:
        labels = [*c.archs, *(f"{a} / {c.archs[0]}" for a in others)]
        forms = [
            (_text(r["metric"]), _text(label), _code("-" if form is None else format_expr(form)))
            for r in c.closed
            for label, form in zip(labels, [*r["forms"], *r["ratios"][1:]])
        ]
        parts.append(f"<p>Closed forms (free: {_text(', '.join(c.free))})</p>")
        parts.append(_table(("metric", "of", "closed form"), forms))
    return _div("comparison", parts)
