"""Jupyter display: ``_repr_html_`` and ``_repr_latex_`` carry the exact numbers and closed forms,
the HTML is well formed and escaped, and importing symcost does not import the renderer.

The expected numbers are computed here, independently of symcost (``112*112*3*3*3*64*2``), or are
published figures (torchvision's ResNet-50: 25,557,032 parameters, 4,089,184,256 MACs).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import sympy

from symcost import arch, compare, compile, formulas, registry, report, shapes, solve, sweep
from symcost.formula import Evaluation
from tests.helpers import graph

VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}


class _Balance(HTMLParser):
    """Every opened tag is closed, in order; the text is collected for searching."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Balance:
    """Parse ``html``, assert that its tags balance, and return the parser (its text and tags)."""
    parser = _Balance()
    parser.feed(html)
    parser.close()
    assert not parser.errors, parser.errors
    assert not parser.stack, f"unclosed: {parser.stack}"
    return parser


def text_of(html: str) -> str:
    return "".join(parse(html).text)


@pytest.fixture(scope="module")
def resnet50():
    return graph("resnet50")


@pytest.fixture(scope="module")
def gpt2():
    return graph("gpt2")


# ---- one formula at one point ------------------------------------------------------------------

SEED = dict(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1)
FLOPS = 112 * 112 * 3 * 3 * 3 * 64 * 2  # output positions x weights each sees x 2
MACS = FLOPS // 2
PARAMS = 64 * 3 * 3 * 3 + 64  # weights + bias


def test_expected_numbers_are_the_seed_example():
    assert (FLOPS, MACS, PARAMS) == (43_352_064, 21_676_032, 1_792)


def test_evaluation_html_has_the_exact_counts():
    r = formulas.conv2d.evaluate(**SEED)
    html = r._repr_html_()
    text = text_of(html)
    assert f"{FLOPS:,}" in text and "43,352,064" in text
    assert f"{MACS:,}" in text
    assert f"{PARAMS:,}" in text
    assert f"{3 * 224 * 224 + PARAMS:,}" in text  # read: input elements + weights = 152,320
    assert f"{64 * 112 * 112:,}" in text  # write = 802,816
    assert "1 x 64 x 112 x 112" in text
    assert "<table>" in html and html.count("<tr>") == 1 + 8  # header + y, 6 counts, elementwise bias
    assert "conv2d" in text and "C_in=3" in text


def test_evaluation_latex_has_the_exact_counts():
    latex = formulas.conv2d.evaluate(**SEED)._repr_latex_()
    assert latex.startswith("\\begin{align*}") and latex.endswith("\\end{align*}")
    assert r"\mathrm{FLOPs} &= 43{,}352{,}064" in latex
    assert r"\mathrm{MACs} &= 21{,}676{,}032" in latex
    assert r"\mathrm{params} &= 1{,}792" in latex
    assert "y &= (1, 64, 112, 112)" in latex


def test_evaluation_html_escapes():
    r = formulas.conv2d.evaluate(**SEED)
    odd = dataclasses.replace(r, formula="a<b>&c", convention="<torch>")
    html = odd._repr_html_()
    assert "a&lt;b&gt;&amp;c" in html and "&lt;torch&gt;" in html
    assert "<b>" not in html
    assert "a<b>&c" in text_of(html)


def test_evaluation_html_shows_a_cache():
    r = Evaluation("kv", {}, {"y": (1, 2)}, 3, 6, 0, 0, 1, 1, {}, "torch", cache=12_345)
    assert "12,345" in text_of(r._repr_html_())
    assert r"\mathrm{cache} &= 12{,}345" in r._repr_latex_()


# ---- a formula in closed form ------------------------------------------------------------------


def test_formula_latex_is_derive_latex_with_the_outputs():
    conv = formulas.conv2d
    latex = conv._repr_latex_()
    assert latex.startswith("\\begin{align*}\n") and latex.endswith("\\end{align*}")
    assert "%" not in latex  # no comment line: a notebook would print it as text
    # every row `symcost derive conv2d --format latex` prints is there, after the output row
    derived = report.render_derivation(report.derivation(conv, conv.bind()), "latex")
    body = derived.split("\\begin{align*}\n", 1)[1]
    assert latex.endswith(body)
    for label in (r"\mathrm{FLOPs} &=", r"\mathrm{MACs} &=", r"\mathrm{params} &=", r"\mathrm{read} &="):
        assert label in latex
    first = latex.splitlines()[1]
    assert first.startswith("y &= \\left(N, ") and "\\right)" in first
    assert latex.count("\\\\") == latex.count("&=") - 1  # one row per line, none empty


def test_formula_html_has_summary_symbols_and_closed_forms():
    conv = formulas.conv2d
    html = conv._repr_html_()
    text = text_of(html)
    assert conv.summary in text
    assert "kernel size (axis h)" in text and "default 1" in text and "required" in text
    assert report.format_expr(conv.costs_compact["macs"]) in text
    assert report.format_expr(2 * conv.costs_compact["macs"]) in text  # FLOPs under torch
    assert "[N, C_out, H_out, W_out]" in text
    assert "C_in % groups == 0" in text
    assert "H_out >= 1" in text and "H_out &gt;= 1" in html


def test_formula_html_escapes_the_summary_and_docs():
    odd = dataclasses.replace(formulas.linear, summary='y = x<W> & "b"')
    html = odd._repr_html_()
    assert "y = x&lt;W&gt; &amp; &quot;b&quot;" in html
    assert 'y = x<W> & "b"' in text_of(html)
    assert "w" not in {t for t in parse(html).tags}


def test_bound_display_and_shortcuts():
    conv = formulas.conv2d
    same = conv.bind(kernel=3, stride=1, padding=1, dilation=1, groups=1, bias=True)
    s = conv.symbols
    C_in, C_out, H, W, N = (s[k] for k in ("C_in", "C_out", "H", "W", "N"))
    assert same.macs == 9 * C_in * C_out * H * N * W
    assert same.flops == 18 * C_in * C_out * H * N * W
    assert sympy.expand(same.params - (9 * C_in * C_out + C_out)) == 0
    text = text_of(same._repr_html_())
    assert "= 3" in text and "9*C_in*C_out*H*N*W" in text and "18*C_in*C_out*H*N*W" in text
    latex = same._repr_latex_()
    assert latex.splitlines()[1].startswith("y &= \\left(N, ")
    assert r"\mathrm{MACs} &= 9 " in latex and r"\mathrm{FLOPs} &= 18 " in latex
    # 56x56, 64 -> 64: 2*56*56*9*64*64
    at56 = conv.bind(N=1, H=56, W=56, C_in=64, C_out=64, kernel=3, stride=1, padding=1, dilation=1, groups=1)
    assert at56.flops == 2 * 56 * 56 * 9 * 64 * 64 == 231_211_008


def test_importing_symcost_does_not_import_the_renderer():
    code = (
        "import sys, symcost.formula, symcost.compile, symcost.sweep, symcost.solve, symcost.compare; "
        "print('symcost.display' in sys.modules, 'symcost.report' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---- an architecture, sweeps, budgets, comparisons ---------------------------------------------


def test_result_html_is_the_eval_table(resnet50):
    html = compile.evaluate(resnet50)._repr_html_()
    text = text_of(html)
    assert "25,557,032" in text  # torchvision's parameter count
    assert f"{4_089_184_256:,}" in text and f"{2 * 4_089_184_256:,}" in text  # MACs, FLOPs
    conv1 = 112 * 112 * 64 * 7 * 7 * 3  # MACs of the 7x7 stem
    assert f"{conv1:,}" in text and f"{2 * conv1:,}" in text and "1x64x112x112" in text
    assert f"{64 * 3 * 7 * 7:,}" in text  # its 9,408 weights
    rows = compile.evaluate(resnet50).nodes
    assert html.count("<tr>") == 1 + len(rows) + 1 + 9  # layers' table, totals' table
    assert "resnet50" in text and "H=224" in text


def test_result_html_small_arch():
    g = shapes.build(
        arch.load_text(
            "name: fc\nsummary: s\nvariables: {N: 1}\ninputs: {x: [N, 100]}\nlayers: [{op: linear, out_features: 50}]\n",
            "fc.yaml",
        )
    )
    text = text_of(compile.evaluate(g, {"N": 3})._repr_html_())
    assert f"{3 * 2 * 100 * 50:,}" in text  # 30,000 FLOPs
    assert f"{100 * 50 + 50:,}" in text  # 5,050 params
    assert "3x50" in text


def test_sweep_html(resnet50):
    H = resnet50.arch.variables["H"].symbol
    s = sweep.sweep(resnet50, [sweep.parse_axis("H=224:288:32"), sweep.parse_axis("N=1,8")], ["flops"], values={"W": H})
    text = text_of(s._repr_html_())
    for h in (224, 256, 288):
        for n in (1, 8):
            assert f"{(162_912 * h * h + 4_096_000) * n:,}" in text  # the closed form of docs/analysis.md
    assert "6 points of resnet50" in text and "W=H" in text and "int64" in text


def test_sweep_html_lists_the_first_points_only(resnet50):
    s = sweep.sweep(resnet50, [sweep.parse_axis("N=1:60")], ["params"])
    html = s._repr_html_()
    parse(html)
    assert html.count("<tr>") == 1 + 50
    assert "10 more points" in html
    assert f"{25_557_032:,}" in html


def test_sweep_html_escapes_reasons():
    vgg = graph("vgg16")
    s = sweep.sweep(vgg, [sweep.parse_axis("H=16:32:16")], ["flops"], values={"W": vgg.arch.variables["H"].symbol})
    html = s._repr_html_()
    assert "&#x27;features.30&#x27;" in html and "'features.30'" in text_of(html)
    assert "873,660,416" in html


def test_solution_html(resnet50):
    H = resnet50.arch.variables["H"].symbol
    sol = solve.solve(resnet50, "flops <= 10*G", "H", values={"W": H}, step=32)
    html = sol._repr_html_()
    text = text_of(html)
    assert "flops &lt;= 10*G" in html
    assert "H = 224" in text
    assert f"{162_912 * 224**2 + 4_096_000:,}" in text and f"{162_912 * 256**2 + 4_096_000:,}" in text
    assert text.count("holds") == 1 and text.count("fails") == 1
    assert "WARNING" not in text


def test_solution_html_without_an_answer(resnet50):
    sol = solve.solve(resnet50, "params >= 1", "H", values={"W": resnet50.arch.variables["H"].symbol}, step=32)
    text = text_of(sol._repr_html_())
    assert "no answer" in text and "params >= 1" in text


def test_comparison_html(resnet50):
    c = compare.compare([resnet50, graph("mobilenet_v2")], ["params", "flops"])
    text = text_of(c._repr_html_())
    assert "25,557,032" in text and "3,504,872" in text
    assert f"{3_504_872 / 25_557_032:.4g}x" in text  # 0.1371x


def test_comparison_html_closed_forms(gpt2):
    c = compare.compare([gpt2, graph("gpt2_medium")], ["flops"], free=["S"])
    text = text_of(c._repr_html_())
    # attention's S^2 term: 2 products x 2 FLOPs x 12 layers x 768; every weight once per token
    assert f"{2 * 2 * 12 * 768}*S**2 + {2 * (12 * 12 * 768**2 + 50_257 * 768)}*S" in text
    assert "(192*S + 1380676)/(72*S + 482547)" in text


def test_every_formula_displays():
    for f in registry.all_formulas():
        text = text_of(f._repr_html_())
        assert f.summary in text and "FLOPs" in text, f.name
        latex = f._repr_latex_()
        assert latex.startswith("\\begin{align*}\n") and r"\mathrm{FLOPs} &=" in latex, f.name
        rows = latex.splitlines()[1 : 1 + len(f.outputs)]  # one row per output shape, first
        assert all("&= \\left(" in row for row in rows), f.name
