r"""Notebook display: the HTML and LaTeX that Jupyter shows for symcost's objects.

The classes keep one-line ``_repr_html_`` / ``_repr_latex_`` methods that import this module when
a notebook asks, so ``import symcost`` never pays for it. The content is what the command line
prints, through the same renderers: ``--format html`` of ``symcost derive`` for a formula and of
``symcost eval`` for an architecture, and of ``sweep``, ``solve`` and ``compare``. Counts are exact, with
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

from typing import Any

from . import report, report_analysis
from .formats import html_count, html_div, html_table, html_text
from .keys import LABELS
from .printer import format_expr, latex_symbol
from .report_analysis import MAX_SWEEP_ROWS as MAX_SWEEP_ROWS


def _derivation(formula: Any, bound: Any) -> dict[str, Any]:
    return report.derivation(formula, bound if bound is not None else formula.bind())


# ---- a formula, bound or not (symcost derive) --------------------------------------------------


def formula_latex(formula: Any, bound: Any = None) -> str:
    """The output shapes and costs as one ``align*`` block: ``symcost derive NAME --format latex``
    without its leading comment line (a notebook would show it)."""
    block = report.render_derivation(_derivation(formula, bound), "latex")
    return block[block.index("\\begin{align*}") :]


def formula_html(formula: Any, bound: Any = None) -> str:
    """Summary, symbols (bound values and defaults), then shapes and closed forms as
    ``symcost derive`` prints them (symcost's expression language, pasteable into a YAML file)."""
    return report.render_derivation(_derivation(formula, bound), "html")


# ---- one formula at one point (Formula.evaluate) -------------------------------------------------


def _evaluation_rows(ev: Any) -> list[tuple[str, str, Any]]:
    """(name, label, value) for each number of an Evaluation, in ``derive``'s order; a shape is a tuple."""
    rows: list[tuple[str, str, Any]] = [(k, f"output {k}", v) for k, v in ev.outputs.items()]
    for key, label in LABELS.items():
        value = getattr(ev, key)
        if key != "cache" or value:
            rows.append((label.split(" (")[0], label, value))
    rows += [(k, f"elementwise {k}", v) for k, v in ev.elementwise.items()]
    return rows


def evaluation_html(ev: Any) -> str:
    """An Evaluation as a table of exact counts, under a line naming the formula and its values."""
    rows = []
    for _, label, value in _evaluation_rows(ev):
        shown = html_text(" x ".join(map(str, value))) if isinstance(value, tuple) else html_count(value)
        rows.append((html_text(label), shown))
    values = ", ".join(f"{k}={format_expr(v)}" for k, v in ev.values.items())
    parts = [
        f"<p><strong>{html_text(ev.formula)}</strong> at {html_text(values)} "
        f"(convention '{html_text(ev.convention)}')</p>",
        html_table(("quantity", "value"), rows, right=[1]),
    ]
    return html_div("evaluation", parts)


def evaluation_latex(ev: Any) -> str:
    """An Evaluation as an ``align*`` block: outputs as tuples, counts with ``{,}`` between thousands."""
    rows = []
    for name, _label, value in _evaluation_rows(ev):
        if isinstance(value, tuple):
            rows.append(f"{latex_symbol(name)} &= ({', '.join(map(str, value))})")
        else:
            rows.append(rf"\mathrm{{{name}}} &= " + f"{value:,}".replace(",", "{,}"))
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


# ---- an architecture, sweeps, budgets, comparisons: their commands' --format html ------------------


def result_html(result: Any, dtype: str = "fp32") -> str:
    """``symcost eval``'s per-layer table and totals, from :func:`symcost.report.eval_data`."""
    return report.render_eval(report.eval_data(result, dtype=dtype, depth=None, symbolic=None), "html")


def sweep_html(s: Any, max_rows: int = MAX_SWEEP_ROWS) -> str:
    """The sweep's table (its first ``max_rows`` points) and the notes ``symcost sweep`` prints."""
    return report_analysis._sweep_html(s, max_rows)


def solution_html(sol: Any) -> str:
    """The answer in one line, and the exact checks at the answer and one step past it."""
    return report_analysis.render_solution(sol, "html")


def comparison_html(c: Any) -> str:
    """Each metric of each architecture, its ratio to the first, and the closed forms with ``free``."""
    return report_analysis.render_comparison(c, "html")
