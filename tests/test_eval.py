"""`symcost eval` and the architecture engine on good input: formats, folding, closed forms,
repeats costed once, tied weights, `extends`."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import sympy

from symcost import expr
from symcost.arch import load_text
from symcost.compile import evaluate, symbolic_totals
from symcost.errors import ArchError
from symcost.shapes import build
from tests.helpers import output


def test_resnet50_is_the_main_command():
    out = output("eval", "archs/resnet50.yaml")
    # torchvision's published figures (torchvision/models/resnet.py ResNet50_Weights.IMAGENET1K_V1 meta): 25,557,032 params and
    # 4.089 GMACs = 8,178,368,512 FlopCounterMode FLOPs at 1x3x224x224.
    assert "25,557,032" in out and "8,178,368,512" in out and "4,089,184,256" in out
    assert "layer1.0.conv1" in out and "layer1.1-2.conv1 x2" in out


def test_json_contract():
    data = json.loads(output("eval", "resnet50", "--format", "json", "--symbolic", "--set", "N=1"))
    t = data["totals"]
    assert (t["params"], t["flops"], t["macs"]) == (25_557_032, 8_178_368_512, 4_089_184_256)
    assert all(isinstance(t[k], int) for k in ("params", "buffers", "macs", "flops", "traffic_bytes"))
    assert t["model_bytes"] == 4 * (t["params"] + t["buffers"])  # fp32
    assert data["free"] == ["H", "W", "blocks1", "blocks2", "blocks3", "blocks4", "num_classes"]
    names = {n: sympy.Symbol(n, integer=True, positive=True) for n in data["free"]}
    flops = expr.parse(data["symbolic"]["flops"], names)
    defaults = {names["H"]: 224, names["W"]: 224, names["blocks1"]: 3, names["blocks2"]: 4, names["blocks3"]: 6,
                names["blocks4"]: 3, names["num_classes"]: 1000}  # fmt: skip
    assert flops.xreplace(defaults) == 8_178_368_512
    layer = data["layers"][0]
    assert layer["name"] == "conv1" and layer["params"] == 9408  # 64*3*7*7
    assert sum(row["flops"] for row in data["layers"]) == t["flops"]


def test_depth_folds_rows_and_keeps_totals():
    flat = json.loads(output("eval", "resnet50", "-f", "json"))
    folded = json.loads(output("eval", "resnet50", "-f", "json", "--depth", "1"))
    assert len(folded["layers"]) < len(flat["layers"])
    assert [r["name"] for r in folded["layers"]][:6] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]
    for key in ("params", "flops", "read", "write"):
        assert sum(r[key] for r in folded["layers"]) == sum(r[key] for r in flat["layers"])


def test_csv_markdown_latex():
    rows = list(csv.reader(io.StringIO(output("eval", "seed_fc", "-f", "csv"))))
    assert rows[0][:4] == ["layer", "op", "count", "output"]
    assert rows[-1][0] == "total" and rows[-1][7] == "10000"
    assert "| **total** |" in output("eval", "seed_fc", "-f", "markdown")
    latex = output("eval", "seed_fc", "-f", "latex", "--symbolic")
    assert "\\begin{tabular}" in latex and "\\begin{align*}" in latex


def test_dtype_changes_bytes_not_counts():
    fp32 = json.loads(output("eval", "seed_fc", "-f", "json"))["totals"]
    int4 = json.loads(output("eval", "seed_fc", "-f", "json", "--dtype", "int4"))["totals"]
    assert fp32["flops"] == int4["flops"]
    assert fp32["params_bytes"] == 5050 * 4 and int4["params_bytes"] == 5050 // 2  # two int4 per byte


def test_count_elementwise():
    base = json.loads(output("eval", "seed_fc", "-f", "json"))["totals"]
    folded = json.loads(output("eval", "seed_fc", "-f", "json", "--count-elementwise", "bias"))["totals"]
    assert folded["flops"] == base["flops"] + 50  # 50 bias adds


STACK = """
name: stack
summary: residual MLP blocks
variables: {B: 2, S: 16, d: 8, L: 5}
inputs: {x: [B, S, d]}
blocks:
  mlp:
    layers:
      - {op: layernorm, name: ln, normalized_shape: d}
      - {op: linear, name: up, out_features: 4*d}
      - {op: gelu}
      - {op: linear, name: down, out_features: d}
      - {op: add, name: res, in: [down, x]}
layers:
  - {op: linear, name: embed, out_features: d}
  - {block: mlp, name: h, repeat: REPEAT}
  - {op: linear, name: head, out_features: 3}
"""


def _stack(repeat: str):
    return build(load_text(STACK.replace("REPEAT", repeat), "stack.yaml"))


def test_repeat_is_costed_once_and_equals_unrolled():
    unrolled_text = STACK.replace("  - {block: mlp, name: h, repeat: REPEAT}\n", "".join(
        f"  - {{block: mlp, name: h{i}}}\n" for i in range(5)))  # fmt: skip
    unrolled = build(load_text(unrolled_text, "unrolled.yaml"))
    repeated = _stack("5")
    symbolic = _stack("L")
    assert len(repeated.nodes) == len(symbolic.nodes) < len(unrolled.nodes)
    a, b, c = evaluate(unrolled).totals, evaluate(repeated).totals, evaluate(symbolic).totals
    assert a == b == c
    assert evaluate(symbolic, {"L": 80}).totals["params"] == evaluate(_stack("80")).totals["params"]


def test_symbolic_repeat_gives_totals_linear_in_the_count():
    totals = symbolic_totals(_stack("L"), {"B": 2, "S": 16, "d": 8})
    L = sympy.Symbol("L", integer=True, positive=True)
    params = sympy.Poly(totals["params"], L)
    assert params.degree() == 1
    # one block: ln 2d + up (d*4d + 4d) + down (4d*d + d) = 16 + 288 + 264 = 568 at d = 8
    assert params.coeffs()[0] == 568


def test_tied_weights_are_counted_once():
    text = """
name: tied
summary: an embedding and a tied output projection
variables: {B: 1, S: 4, V: 100, d: 8}
inputs: {ids: [B, S]}
layers:
  - {op: embedding, name: wte, num_embeddings: V, embedding_dim: d}
  - {op: linear, name: lm_head, out_features: V, bias: false, tied: wte}
"""
    result = evaluate(build(load_text(text, "tied.yaml")))
    assert result.totals["params"] == 100 * 8  # V*d once, not twice
    assert result.nodes[1].tied_to == "wte"
    with pytest.raises(ArchError, match="parameter counts differ"):
        build(load_text(text.replace("bias: false", "bias: true"), "tied.yaml"))


def test_extends_redefaults_variables():
    r50 = json.loads(output("eval", "resnet50", "-f", "json"))["totals"]
    r101 = json.loads(output("eval", "resnet101", "-f", "json"))["totals"]
    r101_by_set = json.loads(output("eval", "resnet50", "-f", "json", "--set", "blocks3=23"))["totals"]
    assert r101 == r101_by_set and r101["params"] == 44_549_160 and r50["params"] == 25_557_032


def test_list_and_check():
    listing = output("list", "archs")
    assert "resnet50" in listing and "seed_fc" in listing
    assert "ok  archs/resnet50.yaml" in output("check", "resnet50")


@pytest.mark.parametrize("command", [["eval"], ["check"], ["list", "archs"]])
def test_help(command):
    out = output(*command, "--help")
    assert "Usage" in out and "Example" in out
    assert out.lstrip().startswith(" ".join(["Usage: symcost", *command, "[OPTIONS]"]))
    # the examples are commands of this command (tests/test_docs.py runs them from the CLI reference)
    examples = out[out.index("Example") :]
    assert re.search(rf"symcost {' '.join(command)}\b", examples), examples


@pytest.mark.parametrize(
    ("condition", "kept"),
    [("true", True), ("false", False), ("1 - flag", False), ("s == 1 and flag", True), ("s > 1 or not flag", False)],
)
def test_when_takes_flags_expressions_and_comparisons(condition, kept):
    text = f"""
name: w
summary: a conditional layer
inputs: {{x: [1, 4]}}
blocks:
  b:
    args: {{s: 1, flag: true}}
    layers:
      - {{op: relu, name: always}}
      - {{op: gelu, name: maybe, when: {condition}}}
layers:
  - {{block: b}}
"""
    ops = [n.op for n in build(load_text(text, "w.yaml")).nodes]
    assert ops == (["relu", "gelu"] if kept else ["relu"])


def test_folded_convention_says_what_it_folds():
    from symcost import cost

    twice = cost.TORCH.with_elementwise({"norm"}).with_elementwise({"bias"})
    assert twice.name == "torch+bias+norm"  # named from the base, not torch+norm+bias+norm
    assert twice.description.endswith("; except bias, norm: folded into FLOPs (--count-elementwise)")
    assert cost.TORCH.description == cost.TORCH.doc
