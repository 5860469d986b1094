"""The architecture language's model-building features: blocks that read their inputs' shapes,
shared inputs in repeats, stage tables (for_each), zero-copy repeats, and the messages of the
mistakes people make with them. Expected numbers are hand arithmetic (in comments) or published
counts, never symcost's own output."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch

from symcost.arch import load_path, load_text
from symcost.compile import evaluate
from symcost.errors import ArchError, ShapeError, SymcostError
from symcost.shapes import build

HERE = Path(__file__).parent / "lang_archs"


def run(text: str, **values):
    return evaluate(build(load_text(text, "t.yaml")), values)


def error(text: str, **values) -> str:
    with pytest.raises(SymcostError) as info:
        run(text, **values)
    return str(info.value)


# ---- blocks that read their inputs' shapes -----------------------------------------------------

HEAD = """
name: t
summary: t
variables: {N: 2, F: 64}
inputs: {x: [N, F]}
blocks:
  halve:
    args: {out: C // 2}          # a default that reads the input's dim
    inputs: {x: [B, C]}
    layers:
      - {op: linear, out_features: out}
layers:
  - {block: halve, name: h1}
  - {block: halve, name: h2}
"""


def test_input_shape_names_bind_to_the_actual_dims():
    r = run(HEAD)
    # h1: 64 -> 32: 64*32 + 32 = 2080 params; h2: 32 -> 16: 32*16 + 16 = 528
    assert [(n.path, n.values["params"]) for n in r.nodes] == [("h1.linear", 2080), ("h2.linear", 528)]
    assert r.outputs == {"h2": (2, 16)}
    # symbolic: the bound dim is the variable's expression
    g = build(load_text(HEAD, "t.yaml"))
    assert str(g.nodes[1].output[1]) == "floor(floor(F/2)/2)"


def test_rest_binds_the_product_of_the_remaining_dims():
    r = run("""
name: t
summary: t
inputs: {x: [1, 8, 3, 5]}
blocks:
  head:
    inputs: {x: [N, C, "*spatial"]}
    layers:
      - {op: flatten}
      - {op: linear, out_features: spatial}
layers:
  - {block: head}
""")
    # flatten: 8*3*5 = 120 features -> linear to spatial = 15: 120*15 + 15 = 1815 params
    assert r.nodes[-1].values["params"] == 1815 and r.outputs["head"] == (1, 15)


SHAPED = """
name: t
summary: t
variables: {C: 64}
inputs: {x: [1, C, 8, 8]}
blocks:
  b:
    args: {width: null}
    inputs: {x: [N, width, H, W]}
    layers: [relu]
layers:
  - {block: b, width: WIDTH}
"""


def test_input_shape_checks_a_given_argument():
    assert run(SHAPED.replace("WIDTH", "64")).outputs["b"] == (1, 64, 8, 8)
    message = error(SHAPED.replace("WIDTH", "32"))
    assert "layer 'b.relu' (relu): block 'b' input 'x' dim 1 (from [N, width, H, W]): expected 32, got 64" in message
    literal = SHAPED.replace("[1, C, 8, 8]", "[1, 64, 8, 8]").replace("WIDTH", "32")
    message = error(literal)  # decided while shapes propagate
    assert "block 'b' input 'x' dim 1 must be 32 (from [N, width, H, W]), got 64: the input is [1, 64, 8, 8]" in message


def test_input_shape_check_that_waits_for_values_prints_both():
    text = SHAPED.replace("{C: 64}", "{C: null}").replace("WIDTH", "64")
    assert run(text, C=64).outputs["b"] == (1, 64, 8, 8)
    message = error(text, C=48)
    assert "block 'b' input 'x' dim 1 (from [N, width, H, W]): expected 64, got 48" in message


@pytest.mark.parametrize(
    ("shape", "needle"),
    [
        ("[N, 64, 8]", "block 'b' input 'x' must be 3-D [N, 64, 8], got [1, 64, 8, 8] (4-D)"),
        ("[N, 32, H, W]", "block 'b' input 'x' dim 1 must be 32 (from [N, 32, H, W]), got 64"),
        ("[N, C, H, H*2]", "dim 3 must be 16 (from [N, C, H, H*2]), got 8"),
        ("[N, C, 2, 3, 4, '*more']", "must be at least 5-D [N, C, 2, 3, 4, *more], got [1, 64, 8, 8] (4-D)"),
    ],
)
def test_input_shape_mismatch_names_block_input_dim_and_shapes(shape, needle):
    text = f"""
name: t
summary: t
inputs: {{x: [1, 64, 8, 8]}}
blocks:
  b:
    inputs: {{x: {shape}}}
    layers: [relu]
layers:
  - {{block: b}}
"""
    with pytest.raises(ShapeError) as info:
        run(text)
    assert needle in str(info.value)
    assert info.value.loc.line == 10  # the layer that instantiates the block


def test_list_form_of_block_inputs_stays_valid():
    r = run("""
name: t
summary: t
inputs: {a: [1, 4], b: [1, 4]}
blocks:
  plus:
    inputs: [p, q]
    layers: [{op: add, in: [p, q]}]
layers:
  - {block: plus, in: [a, b]}
""")
    assert r.outputs["plus"] == (1, 4)


# ---- shared inputs in repeats -------------------------------------------------------------------

DECODER = """
name: t
summary: t
variables: {B: 1, S: 5, T: 7, E: 16}
inputs: {tgt: [B, S, E], memory: [B, T, E]}
blocks:
  dec:
    inputs: [x, mem]
    layers:
      - {op: multi_head_attention, name: cross, in: [x, mem], heads: 2, head_dim: 8}
      - {op: add, in: [cross, x]}
layers:
LAYERS
"""


def test_repeat_shares_every_input_but_the_first():
    repeated = run(DECODER.replace("LAYERS", "  - {block: dec, name: d, in: [tgt, memory], repeat: 3}"))
    explicit = run(
        DECODER.replace(
            "LAYERS",
            "  - {block: dec, name: d0, in: [tgt, memory]}\n"
            "  - {block: dec, name: d1, in: [d0, memory]}\n"
            "  - {block: dec, name: d2, in: [d1, memory]}",
        )
    )
    assert repeated.totals == explicit.totals
    # four 16x16 projections with bias per layer: 4*(16*16 + 16) = 1088 params, 3 layers
    assert repeated.totals["params"] == 3 * 1088
    assert repeated.outputs == {"d": (1, 5, 16)}


# ---- stage tables --------------------------------------------------------------------------------

STAGES = """
name: t
summary: t
variables: {N: 1, width: 2}
inputs: {x: [N, 8]}
tables:
  stages:
    columns: [C_out, n]
    rows:
      - [4*width, 1]
      - [6, 2]
      - [8, 1]
blocks:
  stage:
    args: {C_out: null, n: 1, first: 0}
    layers:
      - {op: linear, name: fc, out_features: C_out}
      - {op: relu, repeat: n}
      - {op: linear, name: tag, out_features: first + index + 1}
layers:
  - {block: stage, name: s, FOR_EACH}
"""


def _stage_params(out_features_in: list[tuple[int, int, int]]) -> int:
    return sum(i * o + o + o * t + t for i, o, t in out_features_in)


def test_for_each_table_instantiates_one_block_per_row():
    r = run(STAGES.replace("FOR_EACH", "for_each: stages, first: 10, index_from: 1"))
    paths = [n.path for n in r.nodes]
    assert paths[:3] == ["s.1.fc", "s.1.relu.0", "s.1.tag"] and paths[-1] == "s.3.tag"
    # row 0: 8 -> 8 (4*width) -> tag 11; row 1: 11 -> 6 -> 12; row 2: 12 -> 8 -> 13
    assert r.totals["params"] == _stage_params([(8, 8, 11), (11, 6, 12), (12, 8, 13)])
    assert r.outputs == {"s": (1, 13)}


def test_for_each_inline_table_equals_the_named_one():
    named = run(STAGES.replace("FOR_EACH", "for_each: stages"))
    inline = run(STAGES.replace("FOR_EACH", "for_each: {C_out: [4*width, 6, 8], n: [1, 2, 1]}"))
    assert named.totals == inline.totals
    assert named.totals["params"] == _stage_params([(8, 8, 1), (1, 6, 2), (2, 8, 3)])


def test_published_mobilenet_v2_from_a_stage_table():
    # torchvision's weights meta: 3,504,872 params; FlopCounterMode: 601,548,544 FLOPs at 224x224
    r = evaluate(build(load_path(HERE / "mobilenet_v2_table.yaml")))
    assert r.totals["params"] == 3_504_872 and r.totals["flops"] == 601_548_544


def test_extends_overrides_a_table(tmp_path):
    (tmp_path / "base.yaml").write_text(STAGES.replace("FOR_EACH", "for_each: stages"))
    (tmp_path / "wide.yaml").write_text("""
extends: base
name: wide
summary: the same stages, other widths
tables:
  stages:
    columns: [C_out, n]
    rows: [[16, 1], [32, 1]]
""")
    r = evaluate(build(load_path(tmp_path / "wide.yaml")))
    # 8 -> 16 -> tag 1; 1 -> 32 -> tag 2
    assert r.totals["params"] == _stage_params([(8, 16, 1), (1, 32, 2)])
    (tmp_path / "bad.yaml").write_text(
        "extends: base\nname: b\nsummary: b\ntables: {stage: {columns: [C_out, n], rows: [[1, 1]]}}\n"
    )
    with pytest.raises(ArchError, match="'t' has no table 'stage' \\(did you mean 'stages'\\?\\)"):
        load_path(tmp_path / "bad.yaml")
    (tmp_path / "bad2.yaml").write_text(
        "extends: base\nname: b\nsummary: b\ntables: {stages: {columns: [C], rows: [[1]]}}\n"
    )
    with pytest.raises(ArchError, match="must keep the columns of 't': C_out, n"):
        load_path(tmp_path / "bad2.yaml")


@pytest.mark.parametrize(
    ("for_each", "needle"),
    [
        ("for_each: stage", "unknown table 'stage' (did you mean 'stages'?)"),
        ("for_each: {C_out: [1, 2], n: [1]}", "same number of values"),
        ("for_each: stages, C_out: 3", "'C_out' is set both by the layer and by the table's column"),
        ("for_each: {C_out: [1], m: [1]}", "block 'stage' has no argument 'm'"),
        ("for_each: stages, repeat: 2", "a layer takes 'repeat' or 'for_each', not both"),
    ],
)
def test_for_each_mistakes(for_each, needle):
    assert needle in error(STAGES.replace("FOR_EACH", for_each))


def test_table_rows_must_fill_the_columns():
    text = STAGES.replace("FOR_EACH", "for_each: stages").replace("- [6, 2]", "- [6]")
    with pytest.raises(ArchError, match="table 'stages' row 1 must list 2 values \\(C_out, n\\)"):
        load_text(text, "t.yaml")


# ---- zero copies, late tensors, flow-mapping commas, checks with values ---------------------------

REPEAT = """
name: t
summary: t
variables: {d: 1}
inputs: {x: [1, 4]}
layers:
  - {op: linear, name: fc, out_features: 4, repeat: COUNT}
  - {op: relu}
"""


@pytest.mark.parametrize("count", ["0", "d - 1"])
def test_zero_copies_are_allowed_either_way_and_listed(count):
    r = run(REPEAT.replace("COUNT", count))
    assert [(n.path, n.count, n.values["params"]) for n in r.nodes] == [("fc.0", 0, 0), ("relu", 1, 0)]
    assert r.totals["params"] == 0 and r.outputs == {"relu": (1, 4)}


def test_zero_copies_show_x0_in_the_table(tmp_path):
    from typer.testing import CliRunner

    from symcost.cli import app

    path = tmp_path / "t.yaml"
    path.write_text(REPEAT.replace("COUNT", "0"))
    result = CliRunner().invoke(app, ["eval", str(path)])
    assert result.exit_code == 0 and "fc.0 x0" in result.stdout


def test_negative_copies_are_a_located_error():
    with pytest.raises(ArchError, match="repeat must be a whole number >= 0, got -1") as info:
        run(REPEAT.replace("COUNT", "-1"))
    assert info.value.loc.line == 7
    with pytest.raises(ShapeError, match="the repeat count d - 2 must be >= 0") as info:
        run(REPEAT.replace("COUNT", "d - 2"))
    assert info.value.loc.line == 7


def test_a_tensor_defined_later_is_named_as_such():
    text = """
name: t
summary: t
inputs: {x: [1, 4]}
layers:
  - {op: add, name: enc1, in: [x, dec1]}
  - {op: relu, name: dec1}
"""
    with pytest.raises(ArchError) as info:
        run(text)
    assert str(info.value).endswith(
        "'dec1' is defined later (at line 7): a layer may only use tensors defined before it"
    )
    with pytest.raises(ArchError, match="layer 'a' cannot take its own output as an input"):
        run(text.replace("name: enc1, in: [x, dec1]", "name: a, in: [x, a]"))


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("  - {op: conv2d, kernel: 1, C_out: max(1, c // 4)}", 'quote it, C_out: "max(1, c // 4)"'),
        ("  - {op: conv2d, kernel: 1, C_out: 4 + 1, stride: 1, padding: 0 + 1}", ""),
    ],
)
def test_unquoted_comma_in_a_flow_mapping_gets_a_hint(line, needle):
    text = f"name: t\nsummary: t\ninputs: {{x: [1, 8, 4, 4]}}\nlayers:\n{line}\n"
    if not needle:
        assert run(text).outputs["conv2d"] == (1, 5, 6, 6)  # no comma inside a value: no error
        return
    with pytest.raises(ArchError) as info:
        load_text(text, "t.yaml")
    assert "'c // 4)' is not a valid attribute name" in str(info.value) and needle in str(info.value)


def test_unquoted_comma_hint_in_variables_and_block_args():
    text = "name: t\nsummary: t\nvariables: {C: max(1, 2)}\ninputs: {x: [1, 4]}\nlayers: [relu]\n"
    with pytest.raises(ArchError, match='quote it, C: "max\\(1, 2\\)"'):
        load_text(text, "t.yaml")


def test_a_failed_bound_check_prints_both_values():
    text = """
name: t
summary: t
variables: {D: null}
inputs: {x: [1, 3, D]}
layers:
  - {op: layernorm, name: ln, D: 64}
"""
    assert run(text, D=64).outputs == {"ln": (1, 3, 64)}
    message = error(text, D=128)
    assert "layer 'ln' (layernorm): the layer's D must equal D = 128, got 64" in message


# ---- repeats that grow the shape by a constant step ------------------------------------------------

DENSE = """
name: dense
summary: a DenseNet-style dense block (torchvision's _DenseLayer at bn_size 4)
variables: {N: 1, C0: 64, g: 32, L: 6, H: 56}
inputs: {x: [N, C0, H, H]}
blocks:
  dense_layer:
    layers:
      - {op: batchnorm2d, name: norm1}
      - {op: relu, name: relu1}
      - {op: conv2d, name: conv1, C_out: 4*g, kernel: 1, bias: false}
      - {op: batchnorm2d, name: norm2}
      - {op: relu, name: relu2}
      - {op: conv2d, name: conv2, C_out: g, kernel: 3, padding: 1, bias: false}
      - {op: concat, name: cat, in: [x, conv2]}
layers:
  - {block: dense_layer, name: layers, repeat: COUNT, index_from: 1}
"""


def test_stepped_repeat_is_a_closed_form_in_the_count():
    from symcost.compile import symbolic_totals

    graph = build(load_text(DENSE.replace("COUNT", "L"), "d.yaml"))
    assert graph.outputs == {"layers": next(iter(graph.outputs.values()))}
    n, c0, g, length, h = (graph.arch.variables[v].symbol for v in ("N", "C0", "g", "L", "H"))
    assert graph.outputs["layers"] == (n, c0 + g * length, h, h)
    params = symbolic_totals(graph, {"C0": 64, "g": 32})["params"]
    # copy i reads 64 + 32i channels: norm1 2(64 + 32i), conv1 (64 + 32i)*128, norm2 2*128,
    # conv2 128*32*9; over i = 0..5: 2*864 + 128*864 + 6*256 + 6*36864 = 335,040
    assert params.xreplace({length: 6}) == 335_040
    assert sympy_degree(params, length) == 2


def sympy_degree(e, symbol):
    import sympy

    return sympy.Poly(sympy.expand(e), symbol).degree()


@pytest.mark.parametrize("count", [1, 2, 5])
def test_stepped_repeat_equals_the_expanded_copies(count):
    closed = run(DENSE.replace("COUNT", "L"), L=count, H=9)
    expanded = run(DENSE.replace("COUNT", str(count)), L=count, H=9)
    assert closed.totals == expanded.totals
    assert closed.outputs == expanded.outputs == {"layers": (1, 64 + 32 * count, 9, 9)}


def test_a_count_that_is_not_a_number_needs_a_constant_step():
    text = DENSE.replace("COUNT", "L").replace(
        "{op: concat, name: cat, in: [x, conv2]}", "{op: conv2d, C_out: H, kernel: 1}"
    )
    with pytest.raises(
        ArchError, match="the repeat count must be a number: copy 0 maps \\[N, C0, H, H\\] to \\[N, H, H, H\\]"
    ):
        build(load_text(text, "d.yaml"))


# ---- when on a variable ---------------------------------------------------------------------------

HEADED = """
name: t
summary: t
variables: {N: 1, num_classes: {default: 1000, min: 0}}
inputs: {x: [N, 64]}
layers:
  - {op: relu, name: features}
  - {op: linear, name: fc, out_features: num_classes, when: num_classes > 0}
"""


def test_when_on_a_variable_is_decided_at_the_values_built_for():
    arch = load_text(HEADED, "t.yaml")
    with_head = evaluate(build(arch))
    assert [n.path for n in with_head.nodes] == ["features", "fc"] and with_head.totals["params"] == 64 * 1000 + 1000
    without = evaluate(build(arch, {"num_classes": 0}), {"num_classes": 0})
    assert [n.path for n in without.nodes] == ["features"] and without.outputs == {"features": (1, 64)}
    with pytest.raises(SymcostError, match="was decided at num_classes = 1000, not 0"):
        evaluate(build(arch), {"num_classes": 0})


def test_when_on_a_variable_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from symcost.cli import app

    path = tmp_path / "t.yaml"
    path.write_text(HEADED)
    result = CliRunner().invoke(app, ["eval", str(path), "--set", "num_classes=0"])
    assert result.exit_code == 0 and "fc " not in result.stdout and "features" in result.stdout


def test_when_on_a_free_variable_is_refused():
    arch = load_text(HEADED, "t.yaml")
    import sympy

    with pytest.raises(ArchError, match="'when' must be decidable from numbers"):
        build(arch, {"num_classes": sympy.Symbol("num_classes", integer=True)})


def test_closed_forms_keep_a_variable_that_decided_a_when_at_its_value():
    from symcost.compile import symbolic_totals

    graph = build(load_text(HEADED, "t.yaml"))
    # the classifier exists because num_classes = 1000 decided it: the closed form is at that value
    assert symbolic_totals(graph, {"N": 1})["params"] == 64 * 1000 + 1000


# ---- numbered sequences: two repeats continuing one nn.Sequential's numbering ------------------------

SEQUENCE = """
name: seq
summary: torchvision's flat features.N numbering over blocks of two kinds
inputs: {x: [1, 8]}
layers:
  - {op: linear, name: features.0, out_features: 8}
  - {op: relu, name: features, repeat: 2, index_from: 1}
  - {op: linear, name: features, out_features: 8, repeat: 2, index_from: 3}
"""


def test_a_repeat_may_continue_a_numbered_sequence():
    """nn.Sequential numbers its children 0, 1, 2, ... whatever their kind (MobileNetV3's features.N):
    a second repeat with the same name continues the numbering instead of being refused."""
    graph = build(load_text(SEQUENCE, "seq.yaml"))
    assert [n.path for n in graph.nodes] == ["features.0", "features.1-2", "features.3-4"]
    reference = torch.nn.Sequential(
        torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    )
    assert evaluate(graph).totals["params"] == sum(p.numel() for p in reference.parameters())


def test_a_continued_sequence_refuses_a_copy_number_twice():
    with pytest.raises(SymcostError, match=r"copy 'features.2' is already defined"):
        build(load_text(SEQUENCE.replace("index_from: 3", "index_from: 2"), "seq.yaml"))


def test_copies_may_be_named_by_a_template():
    """torchvision names ViT's layers encoder_layer_0, encoder_layer_1, ... and RegNet's block2-0, ...:
    one {index} in a repeated layer's name places the copy number."""
    text = """
name: tpl
summary: copies named by a template
variables: {L: 3}
inputs: {x: [1, 8]}
blocks:
  mlp:
    layers:
      - {op: linear, name: fc, out_features: 8}
layers:
  - {block: mlp, name: "encoder_layer_{index}", repeat: L}
  - {block: mlp, name: "block2-{index}", repeat: 2, index_from: 1}
"""
    graph = build(load_text(text, "tpl.yaml"))
    paths = [r.path for r in evaluate(graph).nodes]
    assert paths == ["encoder_layer_0-2.fc", "block2-1-2.fc"]
    with pytest.raises(ArchError, match=r"numbers the copies"):
        load_text(text.replace('name: "block2-{index}", repeat: 2, index_from: 1', 'name: "b{index}"'), "tpl.yaml")


RATIO = """
name: ratio
summary: a width multiplier as a variable
variables:
  N: 1
  width: {default: 1.1, type: ratio, doc: width multiplier}
inputs: {x: [N, 3, 32, 32]}
layers:
  - {op: conv2d, name: stem, C_out: "make_divisible(32*width, 8)", kernel: 3}
"""


def _make_divisible(v, divisor, min_value=None):  # torchvision/models/_utils.py, verbatim
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@pytest.mark.parametrize("width", ["0.25", "0.5", "0.75", "1.0", "1.1", "1.3", "1.4", "2.0"])
def test_a_ratio_variable_is_exact_where_it_meets_a_rounding(width):
    """EfficientNet's width_mult and MNASNet's alpha are rationals: `type: ratio` takes them exactly."""
    result = evaluate(build(load_text(RATIO, "ratio.yaml")), {"width": Fraction(width)})
    channels = _make_divisible(32 * float(width), 8)
    assert result.totals["params"] == sum(p.numel() for p in torch.nn.Conv2d(3, channels, 3).parameters())


def test_a_ratio_variable_is_refused_where_it_is_not_positive_and_an_int_variable_stays_whole():
    with pytest.raises(SymcostError, match="must be a positive rational"):
        evaluate(build(load_text(RATIO, "ratio.yaml")), {"width": -1})
    with pytest.raises(SymcostError, match="must be a whole number"):
        evaluate(build(load_text(RATIO, "ratio.yaml")), {"N": Fraction(3, 2)})
    with pytest.raises(ArchError, match="'type' is int"):
        load_text(RATIO.replace("type: ratio", "type: float"), "ratio.yaml")
