"""Runtimes as data (symcost/runtimes.py), the kernel-level latency they feed (symcost/latency.py),
and `symcost calibrate` (symcost/calibrate.py).

The byte counts below are worked by hand from the formulas' read/write conventions, never taken
from symcost's output.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from symcost import api, calibrate, latency, roofline, runtimes
from symcost.cli import app
from symcost.devices import find as device
from symcost.errors import DeviceError

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


# conv 1x1 (2 -> 2 channels, no bias) -> batch norm -> ReLU -> add(x) on a 1x2x2x2 input: 8 elements per
# activation. Per layer, elements read + written (the formulas' conventions):
#   conv: 8 input + 4 weights read, 8 written = 20
#   bn:   8 input + 8 (weight, bias, running mean, running var: 2 each) read, 8 written = 24
#   relu: 8 read, 8 written = 16
#   add:  8 + 8 read, 8 written = 24
# Every layer its own kernel (roofline, eager): 84 elements, 4 kernels.
# tensorrt (bn_fold, epilogue, pointwise, residual): one kernel, 20 + 0 (folded) + (16 - 2 x 8 = 0)
#   + (24 - 2 x 8 = 8, the skip operand) = 28 elements.
# compiled (pointwise, residual, norm; no epilogue into the conv): conv 20, then bn + relu + add in one
#   pointwise kernel: 24 + 0 + 8 = 32; 52 elements in 2 kernels.
BLOCK = """
name: tiny_block
summary: conv, batch norm, ReLU and a residual add on a 1x2x2x2 input
inputs: {x: [1, 2, 2, 2]}
layers:
  - {op: conv2d, name: conv, C_out: 2, kernel: 1, bias: false}
  - {op: batchnorm2d, name: bn}
  - {op: relu, name: act}
  - {op: add, name: add, in: [x, act]}
"""


@functools.cache
def block_result():
    return api.evaluate(api.load(BLOCK), dtype="fp16").result


def test_bundled_runtimes_validate_and_only_roofline_is_a_bound():
    found = {r.name: r for r in runtimes.bundled()}
    assert {
        "roofline",
        "eager",
        "compiled",
        "xla",
        "tensorrt",
        "onnxruntime",
        "vllm",
        "tensorrt-llm",
        "llama.cpp",
    } <= set(found)
    assert [n for n, r in found.items() if r.bound] == ["roofline"]
    assert runtimes.DEFAULT in found and not found[runtimes.DEFAULT].bound
    for r in found.values():
        assert 0 < r.compute_efficiency <= 1 and 0 < r.memory_efficiency <= 1
        assert set(r.fuse) <= set(runtimes.FUSION_RULES)
        if r.validation:  # the held-out figures carry their provenance
            assert r.validation["measurements"] > 0 and "held-out" in r.validation["how"]


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ("name: x\nsummary: s\nfuse: [bn_fold, fold_everything]\n", ":3:", "unknown fusion rule 'fold_everything'"),
        ("name: x\nsummary: s\ncompute: {efficiency: 1.5}\n", ":3:", "compute efficiency must be between 0 and 1"),
        ("name: x\nsummary: s\nmemory: {efficency: 0.5}\n", ":3:", "memory: unknown key 'efficency'"),
        ("name: x\nsummary: s\nbound: true\nfuse: [epilogue]\n", ":3:", "must be the pure roofline"),
        ("name: x\nsummary: s\noverhead: {kernel_us: fast}\n", ":3:", "overhead kernel_us must be a number"),
        ("name: x\nsummary: s\nspeed: 3\n", ":3:", "runtime: unknown key 'speed'"),
    ],
)
def test_a_bad_runtime_file_is_one_located_error(tmp_path, body, where, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(DeviceError):
        runtimes.load_path(path)
    result = invoke("eval", "seed_conv", "--device", "a100", "--runtime-file", str(path))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}{where}") and message in lines[0], lines


def _bytes_and_kernels(runtime: runtimes.Runtime) -> tuple[int, int]:
    terms = latency.kernel_terms(block_result(), device("a100"), "fp16", runtime)
    return sum(t["bytes"] for _, t in terms), sum(t["kernels"] for _, t in terms)


def _rules_of(name: str) -> runtimes.Runtime:
    """A bundled runtime's fusion rules without its L2 reuse (tested apart below)."""
    return dataclasses.replace(runtimes.find(name), l2_fraction=Fraction(0))


def test_fusion_rules_change_bytes_as_stated():
    def only(*rules: str) -> runtimes.Runtime:
        return runtimes.Runtime(name="t", summary="t", fuse=rules)

    assert _bytes_and_kernels(only()) == (2 * 84, 4)
    # eager fuses nothing, but at fp16 runs under autocast: the conv's 4 fp32 weights are cast first,
    # one more kernel reading 4 and writing 2 bytes each (4 x 6 = 24 bytes)
    assert _bytes_and_kernels(_rules_of("eager")) == (2 * 84 + 4 * 6, 4 + 1)
    assert _bytes_and_kernels(dataclasses.replace(_rules_of("eager"), autocast=False)) == (2 * 84, 4)
    assert _bytes_and_kernels(only("bn_fold", "epilogue", "pointwise", "residual")) == (2 * 28, 1)
    assert _bytes_and_kernels(_rules_of("tensorrt")) == (2 * 28, 1)
    assert _bytes_and_kernels(only("pointwise", "residual", "norm")) == (2 * 52, 2)
    assert _bytes_and_kernels(_rules_of("compiled")) == (2 * 52, 2)
    # bn_fold alone removes bn's 24; with epilogue the ReLU joins the conv (16 - 2 x 8 = 0)
    assert _bytes_and_kernels(only("bn_fold")) == (2 * 60, 3)
    assert _bytes_and_kernels(only("bn_fold", "epilogue")) == (2 * 44, 2)
    # without residual the add stays a kernel of its own (24 elements)
    assert _bytes_and_kernels(only("bn_fold", "epilogue", "pointwise")) == (2 * 44, 2)


def test_an_input_the_previous_kernel_left_in_l2_is_not_read_again():
    # bn_fold: kernels conv+bn (20 elements), relu (16), add (24). With L2 reuse, the ReLU reads the conv
    # kernel's 8 outputs from L2 and the add the ReLU's 8: 60 - 16 = 44 elements. The A100's 40 MB L2 holds
    # them at any fraction; a fraction of 0 turns the reuse off.
    rules = runtimes.Runtime(name="t", summary="t", fuse=("bn_fold",))
    assert _bytes_and_kernels(rules) == (2 * 60, 3)
    assert _bytes_and_kernels(dataclasses.replace(rules, l2_fraction=Fraction(1, 2))) == (2 * 44, 3)


def test_a_kernel_time_is_max_of_compute_and_memory_plus_overhead():
    rt = runtimes.Runtime(name="t", summary="t", fuse=("bn_fold", "epilogue", "residual"), kernel_s=Fraction(1, 10**6),
                          compute_efficiency=Fraction(1, 2), memory_efficiency=Fraction(4, 5))  # fmt: skip
    est = latency.estimate(block_result(), device("a100"), "fp16", rt)
    # one kernel: 28 elements = 56 bytes at 0.8 x 2.039 TB/s; 8 outputs x 2 inputs = 16 MACs = 32 FLOPs
    # at 0.5 x 312 TFLOP/s
    memory = Fraction(56) / (Fraction(4, 5) * 2039 * 10**9)
    compute = Fraction(32) / (Fraction(1, 2) * 312 * 10**12)
    assert est.latency_s == max(memory, compute) + Fraction(1, 10**6)
    assert [t.bound for t in est.layers] == ["memory", "fused", "fused", "fused"]


def test_roofline_runtime_reproduces_the_pure_roofline_exactly():
    # docs/analysis.md's hand-worked figure: Llama-2-7B decode at ctx 4095 on an A100, bf16, moves
    # 15,372,106,242 bytes at 2.039 TB/s = 7,686,053,121 / 1,019,500,000,000 s
    e = api.estimate("llama", device="a100", dtype="bf16", phase="decode", runtime="roofline")
    assert e.roofline.latency_s == Fraction(7_686_053_121, 1_019_500_000_000)
    a100 = device("a100")
    plain = roofline.estimate(e.result, a100, roofline.roof_for(a100, "bf16"), "bf16")
    assert plain.layers == e.roofline.layers
    # --efficiency (and --waves) derate the roofline: without --runtime they choose it
    derated = api.estimate("llama", device="a100", dtype="bf16", phase="decode", efficiency=0.5)
    assert derated.roofline.latency_s == 2 * plain.latency_s
    with pytest.raises(Exception, match="derates the roofline"):
        api.estimate("llama", device="a100", dtype="bf16", phase="decode", efficiency=0.5, runtime="tensorrt")


def test_only_roofline_says_lower_bound_and_others_print_their_error():
    bound = invoke("eval", "resnet50", "--device", "a100", "--dtype", "fp16", "--runtime", "roofline").stdout
    assert "a lower bound" in bound and "expected error" not in bound
    for name in ("tensorrt", "eager"):
        text = invoke("eval", "resnet50", "--device", "a100", "--dtype", "fp16", "--runtime", name).stdout
        assert "lower bound" not in text
        assert f"Runtime {name} on a100" in text and "expected error" in text
        r = runtimes.find(name)
        if r.validation:
            assert f"±{r.validation['error_pct']}%, held out on {r.validation['measurements']} measurements" in text
            assert f"samples/s (1 per pass), ±{r.validation['error_pct']}%" in text
            assert f"expected error ±{r.validation['error_pct']}%" in text


def test_cli_and_api_agree():
    data = json.loads(invoke("eval", "resnet50", "--device", "a100", "--dtype", "fp16", "--runtime", "eager",
                             "--format", "json").stdout)  # fmt: skip
    e = api.estimate("resnet50", device="a100", dtype="fp16", runtime="eager")
    assert data["performance"]["latency_s"] == float(e.roofline.latency_s)
    assert data["device"]["runtime"] == "eager" and data["device"]["bound"] is False
    options = api.Options(device="a100", dtype="fp16", runtime="eager")
    sweep = api.sweep("resnet50", ["N=1,2"], "latency", options=options)
    assert float(sweep.metrics["latency"][0]) == float(e.roofline.latency_s)


def _synthetic_csv(path, truth: runtimes.Runtime) -> None:
    """Latencies the kernel model gives at known constants: what calibrate must recover."""
    points = [("seed_conv", "N=1"), ("seed_conv", "N=64"), ("resnet18", "N=1"), ("resnet18", "N=32"),
              ("mobilenet_v2", "N=1"), ("mobilenet_v2", "N=128")]  # fmt: skip
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "model", "set", "phase", "dtype", "device", "runtime", "measured_ms"])
        for i, (model, values) in enumerate(points):
            e = api.estimate(model, device="a100", dtype="fp16", values={"N": int(values.split("=")[1])})
            terms = latency.kernel_terms(e.result, device("a100"), "fp16", truth)
            seconds = sum(max(t["compute"] / truth.compute_efficiency, t["memory"] / truth.memory_efficiency)
                          for _, t in terms) + truth.kernel_s * sum(t["kernels"] for _, t in terms)  # fmt: skip
            writer.writerow([f"S{i}", model, values, "-", "fp16", "a100", truth.name, repr(float(seconds) * 1000)])


def test_calibrate_recovers_known_constants(tmp_path):
    truth = runtimes.Runtime(name="tensorrt", summary="t", fuse=runtimes.find("tensorrt").fuse, waves=True,
                             compute_efficiency=Fraction(45, 100), memory_efficiency=Fraction(7, 10),
                             kernel_s=Fraction(6, 10**6))  # fmt: skip
    path = tmp_path / "measured.csv"
    _synthetic_csv(path, truth)
    start = runtimes.Runtime(name="tensorrt", summary="t", fuse=truth.fuse, waves=True)  # efficiencies 1, no overhead
    fitted, report = calibrate.run(str(path), runtime=start, output=str(tmp_path / "fitted.yaml"))
    assert abs(float(fitted.compute_efficiency) - 0.45) < 0.01
    assert abs(float(fitted.memory_efficiency) - 0.70) < 0.01
    assert abs(float(fitted.kernel_s) * 1e6 - 6) < 0.1
    assert "median 1.0" in report
    # the fitted file works with --runtime-file, and says what it was fitted on
    again = runtimes.load_path(tmp_path / "fitted.yaml")
    assert (again.compute_efficiency, again.memory_efficiency, again.kernel_s) == (
        fitted.compute_efficiency, fitted.memory_efficiency, fitted.kernel_s)  # fmt: skip
    text = invoke("eval", "resnet18", "--device", "a100", "--dtype", "fp16", "--runtime-file",
                  str(tmp_path / "fitted.yaml")).stdout  # fmt: skip
    assert "Runtime tensorrt on a100" in text


def test_calibrate_command_writes_atomically_and_prints_residuals(tmp_path):
    truth = runtimes.find("eager")
    path = tmp_path / "m.csv"
    _synthetic_csv(path, truth)
    out = tmp_path / "eager_fitted.yaml"
    result = invoke("calibrate", str(path), "--runtime", "eager", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "meas/pred" in result.stdout and "S0 seed_conv N=1 fp16 a100" in result.stdout
    assert out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".symcost-")]
    assert runtimes.load_path(out).name == "eager"
    bad = invoke("calibrate", str(path), "--runtime", "roofline")
    assert bad.exit_code == 1 and "no constants to fit" in bad.stderr


def test_calibrate_reads_the_weight_and_kv_dtype_columns(tmp_path):
    """A row's weight_dtype and kv_dtype reach the kernels' bytes. seed_fc (100 -> 50, 5,050 weights) at batch 1:
    bf16 reads 5,050 x 2 + 100 x 2 and writes 50 x 2 bytes = 10,400; with int4 weights 5,050 / 2 = 2,525 + 300."""
    path = tmp_path / "m.csv"
    path.write_text("id,model,set,phase,dtype,weight_dtype,kv_dtype,device,measured_ms\n"
                    "a,seed_fc,N=1,-,bf16,,,a100,0.01\nb,seed_fc,N=1,-,bf16,int4,fp8,a100,0.01\n")  # fmt: skip
    rows, skipped = calibrate.read_rows(str(path), device=None, runtime=runtimes.find("eager"))
    assert not skipped and [r.label for r in rows] == ["a seed_fc N=1 bf16 a100",
                                                       "b seed_fc N=1 bf16 weights=int4 kv=fp8 a100"]  # fmt: skip
    bandwidth = float(device("a100").bandwidth)
    assert [sum(r.memory) * bandwidth for r in rows] == pytest.approx([10_400, 2_825], rel=1e-12)


def test_calibrate_refuses_an_unknown_weight_dtype_with_its_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("model,set,phase,dtype,weight_dtype,kv_dtype,measured_ms\nseed_fc,N=1,-,bf16,,,0.01\n"
                    "seed_fc,N=1,-,bf16,int3,,0.01\n")  # fmt: skip
    result = invoke("calibrate", str(path), "--runtime", "eager", "--device", "a100")
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert errors[0].startswith(f"Error: {path}:3: unknown weight_dtype format 'int3'")
    path.write_text("model,set,phase,dtype,kv_dtype,measured_ms\nseed_fc,N=1,-,bf16,fp7,0.01\n")
    result = invoke("calibrate", str(path), "--runtime", "eager", "--device", "a100")
    assert result.exit_code == 1 and f"{path}:2: unknown kv_dtype format 'fp7'" in result.output


def test_sweep_and_compare_say_which_runtime_their_latency_assumes():
    sweep = invoke("sweep", "resnet50", "--over", "N=1,2", "--device", "a100", "--dtype", "fp16", "--metric", "latency")
    expected = f"latency under runtime {runtimes.DEFAULT}: expected error {runtimes.find().error_text()}"
    assert sweep.exit_code == 0 and expected in sweep.stdout
    compare = invoke("compare", "resnet18", "resnet50", "--device", "a100", "--dtype", "fp16", "--metric", "latency")
    assert compare.exit_code == 0 and expected in compare.stdout
    # the pure roofline prints as it always has: no runtime line
    bound = invoke(
        "sweep", "resnet50", "--over", "N=1,2", "--device", "a100", "--runtime", "roofline", "--metric", "latency"
    )
    assert "runtime" not in bound.stdout


def test_eager_dispatch_overlaps_the_gpu_and_autocast_adds_one_op_per_weighted_gemm():
    """With ``overlap`` an op costs the longer of its dispatch and its kernel (CUDA launches are
    asynchronous), not their sum; autocast casts only at 16-bit dtypes, not in fp32."""
    rt = runtimes.Runtime(name="t", summary="t", op_s=Fraction(50, 10**6), overlap=True)
    us = Fraction(1, 10**6)
    assert latency.kernel_time(rt, 30 * us, 10 * us, 0, 0, 1) == 50 * us
    assert latency.kernel_time(rt, 80 * us, 10 * us, 0, 0, 1) == 80 * us
    serial = dataclasses.replace(rt, overlap=False)
    assert latency.kernel_time(serial, 30 * us, 10 * us, 0, 0, 1) == 80 * us
    cast = dataclasses.replace(runtimes.Runtime(name="t", summary="t"), autocast=True)
    ops = {dtype: sum(t["ops"] for _, t in latency.kernel_terms(block_result(), device("a100"), dtype, cast))
           for dtype in ("fp32", "fp16", "bf16")}  # fmt: skip
    assert ops == {"fp32": 4, "fp16": 5, "bf16": 5}  # conv, bn, relu, add; + the conv's weight cast


# One attention layer as transformers writes it (1 head of 4, B = 1, S = 2 tokens, d_model 4: 8 elements per
# activation), every view and transpose a shape op with no work. Elements read + written per layer:
#   q, k, v (linear 4 -> 4, no bias): 8 input + 16 weights read, 8 written = 32 each
#   keys, values (kv_cache, past 0): B*H*S*D = 8 read, 8 written = 16 each
#   attention (sdpa): 8 q + 8 k + 8 v read, 8 written = 32
#   contiguous (a copy): 8 read, 8 written = 16
#   o (linear 4 -> 4): 32
# No rule: 8 kernels (q, k, keys, v, values, attention, contiguous, o), 96 + 32 + 32 + 16 + 32 = 208 elements.
# horizontal: k and v join q's GEMM moving their weights and outputs only (16 + 8 = 24 each: x is read once):
#   QKV 32 + 24 + 24 = 80; 6 kernels, 80 + 16 + 16 + 32 + 16 + 32 = 192.
# cache: keys joins k's kernel and values v's, each moving only its write (8); contiguous joins the attention
#   with no bytes: q 32, k + keys 40, v + values 40, attention 32, o 32 = 176 in 5 kernels.
# Both: QKV 80 + 8 + 8 = 96, attention 32, o 32 = 160 in 3 kernels.
ATTENTION = """
name: tiny_attention
summary: q/k/v projections, a KV cache, attention and the output projection, transformers' module structure
inputs: {x: [1, 2, 4]}
layers:
  - {op: linear, name: q, in: x, out_features: 4, bias: false}
  - {op: view, name: q_view, shape: [1, 2, 1, 4]}
  - {op: transpose, name: q_heads, dim0: 1, dim1: 2}
  - {op: linear, name: k, in: x, out_features: 4, bias: false}
  - {op: view, name: k_view, shape: [1, 2, 1, 4]}
  - {op: transpose, name: k_heads, dim0: 1, dim1: 2}
  - {op: kv_cache, name: keys}
  - {op: linear, name: v, in: x, out_features: 4, bias: false}
  - {op: view, name: v_view, shape: [1, 2, 1, 4]}
  - {op: transpose, name: v_heads, dim0: 1, dim1: 2}
  - {op: kv_cache, name: values}
  - {op: sdpa, name: attention, in: [q_heads, keys, values]}
  - {op: transpose, name: merge_heads, dim0: 1, dim1: 2}
  - {op: contiguous, name: contiguous}
  - {op: reshape, name: merged, shape: [1, 2, 4]}
  - {op: linear, name: o, out_features: 4, bias: false}
"""

# A SwiGLU MLP (x [1, 2, 4], d_ff 3: 6 elements per hidden activation), with epilogue and residual:
#   gate (4 -> 3, no bias): 8 + 12 read, 6 written = 26; its SiLU (6 + 6) is its epilogue: 0
#   up (4 -> 3): 26 alone; with horizontal it joins gate's GEMM: 12 weights + 6 out = 18
#   mul (6 + 6 read, 6 written): alone in up's kernel, read + write - 2 x up's 6 = 6 (it reads the SiLU's output);
#     with both operands in the kernel it reads neither: 18 - 2 x 6 - 6 = 0
# Without horizontal: 26 + 26 + 6 = 58 elements in 2 kernels; with it 26 + 18 + 0 = 44 in 1.
MLP = """
name: tiny_mlp
summary: gate and up projections, SiLU and their product
inputs: {x: [1, 2, 4]}
layers:
  - {op: linear, name: gate, in: x, out_features: 3, bias: false}
  - {op: silu, name: act}
  - {op: linear, name: up, in: x, out_features: 3, bias: false}
  - {op: mul, name: mul, in: [act, up]}
"""


@functools.cache
def _tiny(text: str):
    return api.evaluate(api.load(text), dtype="fp16").result


def _tiny_bytes_and_kernels(text: str, *rules: str) -> tuple[int, int]:
    runtime = runtimes.Runtime(name="t", summary="t", fuse=rules)
    terms = latency.kernel_terms(_tiny(text), device("a100"), "fp16", runtime)
    return sum(t["bytes"] for _, t in terms), sum(t["kernels"] for _, t in terms)


def test_horizontal_and_cache_fuse_an_attention_layer_as_llm_engines_do():
    assert _tiny_bytes_and_kernels(ATTENTION) == (2 * 208, 8)
    assert _tiny_bytes_and_kernels(ATTENTION, "horizontal") == (2 * 192, 6)
    assert _tiny_bytes_and_kernels(ATTENTION, "cache") == (2 * 176, 5)
    assert _tiny_bytes_and_kernels(ATTENTION, "horizontal", "cache") == (2 * 160, 3)
    assert _tiny_bytes_and_kernels(MLP, "epilogue", "residual") == (2 * 58, 2)
    assert _tiny_bytes_and_kernels(MLP, "epilogue", "residual", "horizontal") == (2 * 44, 1)


def test_a_horizontal_gemm_tiles_its_output_features_together(monkeypatch):
    # q, k and v fused: one GEMM of M = 2 rows and N = 4 + 4 + 4 = 12 output features
    runtime = dataclasses.replace(runtimes.find("tensorrt-llm"), l2_fraction=Fraction(0))
    members, _ = latency.kernel_terms(_tiny(ATTENTION), device("h100_sxm"), "fp16", runtime)[0]
    assert [_tiny(ATTENTION).nodes[i].path for i, _ in members] == ["q", "k", "keys", "v", "values"]
    seen = []
    real = latency.gemm_utilization

    def spy(batch, m, n, tile, units):
        seen.append((batch, m, n))
        return real(batch, m, n, tile, units)

    monkeypatch.setattr(latency, "gemm_utilization", spy)
    latency.kernel_terms(_tiny(ATTENTION), device("h100_sxm"), "fp16", runtime)
    # QKV (12 features), the attention (1 head: M = 2 queries, N = 4 value dims), o (4 features)
    assert seen == [(1, 2, 12), (1, 2, 4), (1, 2, 4)]


def test_a_linear_joins_the_gemm_of_its_input_even_after_another_layer_read_that_gemm():
    # a and c read x; b reads a's output in between. With horizontal, c joins a's GEMM (it does not depend on
    # it), b stays its own: 2 kernels; without, 3.
    text = """
name: tiny_chain
summary: two linear layers on x and one on the first's output
inputs: {x: [1, 2, 4]}
layers:
  - {op: linear, name: a, in: x, out_features: 4}
  - {op: linear, name: b, in: a, out_features: 4}
  - {op: linear, name: c, in: x, out_features: 4}
"""
    runtime = runtimes.Runtime(name="t", summary="t", fuse=("horizontal",))
    kernels = [[_tiny(text).nodes[i].path for i, _ in k] for k in latency.groups(_tiny(text), runtime)]
    assert kernels == [["a", "c"], ["b"]]
    assert _tiny_bytes_and_kernels(text) == (2 * 3 * 36, 3)  # 8 in + 20 weights + 8 out = 36 each
    # a 36 + c 28 (its 20 weights and 8 outputs: x is read once) in one kernel, b 36 in the other
    assert _tiny_bytes_and_kernels(text, "horizontal") == (2 * (36 + 28 + 36), 2)
    # engines concatenate one module's weights: two modules' projections of the same tensor (two blocks'
    # cross-attention keys over one encoder output) stay two GEMMs
    apart = (
        text.replace("name: a,", "name: first.a,")
        .replace("in: a,", "in: first.a,")
        .replace("name: c,", "name: second.c,")
    )
    assert _tiny_bytes_and_kernels(apart, "horizontal") == (2 * 3 * 36, 3)


def test_a_view_does_not_break_a_fusion_chain():
    # linear (x [1, 2, 4] -> 4: 8 + 20 read, 8 written = 36), a view, then a ReLU (8 + 8): with epilogue the
    # ReLU is the linear's epilogue through the view: 36 elements in 1 kernel; without, 52 in 2. The view
    # launches nothing.
    text = """
name: tiny_view
summary: a linear layer, a view of its output and a ReLU
inputs: {x: [1, 2, 4]}
layers:
  - {op: linear, name: fc, out_features: 4}
  - {op: view, name: split, shape: [1, 2, 2, 2]}
  - {op: relu, name: act}
"""
    assert _tiny_bytes_and_kernels(text) == (2 * 52, 2)
    assert _tiny_bytes_and_kernels(text, "epilogue") == (2 * 36, 1)
    # an op that is the identity in inference (stochastic depth: 0 bytes) neither launches nor breaks the chain:
    # the add after it reads the ReLU's output through it and fc's through the view, both in the kernel:
    # (8 + 8 read, 8 written) - 2 x 8 - 8 = 0, so 36 elements in 1 kernel; without rules 36 + 16 + 24 = 76 in 3
    skip = (
        text
        + """  - {op: stochastic_depth, name: drop}
  - {op: add, name: add, in: [drop, split]}
"""
    )
    assert _tiny_bytes_and_kernels(skip) == (2 * 76, 3)
    assert _tiny_bytes_and_kernels(skip, "epilogue", "residual") == (2 * 36, 1)


@pytest.mark.parametrize(
    ("kv_cache", "rules", "kernels"),
    [
        # q, k, v, attention, out: 5; one QKV GEMM: 3; the KV cache's keys and values writes: 2 more without cache
        (False, (), 5),
        (False, ("horizontal",), 3),
        (True, (), 7),
        (True, ("cache",), 5),
        (True, ("horizontal",), 5),
        (True, ("horizontal", "cache"), 3),
    ],
)
def test_a_multi_head_attention_layer_counts_the_kernels_it_stands_for(kv_cache, rules, kernels):
    text = f"""
name: tiny_mha
summary: one attention layer
inputs: {{x: [1, 2, 4]}}
layers:
  - {{op: multi_head_attention, name: attn, in: [x, x], heads: 2, head_dim: 2, kv_cache: {str(kv_cache).lower()}}}
"""
    assert _tiny_bytes_and_kernels(text, *rules)[1] == kernels
    if not rules:  # eager at fp16 also casts each of the four projection weights: four more kernels
        eager = dataclasses.replace(runtimes.find("eager"), l2_fraction=Fraction(0))
        terms = latency.kernel_terms(_tiny(text), device("a100"), "fp16", eager)
        assert sum(t["kernels"] for _, t in terms) == kernels + 4


@functools.cache
def _llm_kernels(arch: str, runtime: str) -> int:
    r = api.evaluate(arch, dtype="fp16", phase="prefill", values={"B": 1, "S": 128, "ctx": 0}).result
    return sum(t["kernels"] for _, t in latency.kernel_terms(r, device("h100_sxm"), "fp16", runtimes.find(runtime)))


@pytest.mark.parametrize("arch", ["llama", "mistral_7b"])
def test_a_hand_written_and_a_generated_llama_launch_the_same_kernels(arch):
    # 32 decoder layers of Llama-2-7B (archs/llama.yaml: one multi_head_attention layer) or Mistral-7B
    # (archs/mistral_7b.yaml: transformers' q_proj, views, kv_cache, sdpa, contiguous, o_proj):
    # tensorrt-llm, per layer: input_layernorm (a repeated block's first layer cannot join the previous copy's
    #   last kernel), QKV GEMM (+ KV cache writes), attention (+ contiguous), o_proj + add + post-attention
    #   norm, gate/up GEMM + SiLU + mul, down_proj + add: 6; x 32 = 192, + embedding, final norm, lm_head = 195.
    assert _llm_kernels(arch, "tensorrt-llm") == 6 * 32 + 3
    # vllm (no epilogue): input_layernorm, QKV, attention, o_proj, add + norm, gate/up, SiLU + mul, down_proj,
    #   add: 9; x 32 + 3 = 291.
    assert _llm_kernels(arch, "vllm") == 9 * 32 + 3
