"""The roofline model on hand-computed cases, the LLM phases, training memory and the JSON contract.

Golden numbers are worked out in the comments; none was produced by the code under test.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import sympy

from symcost import arch, compile, devices, memory, roofline, shapes
from tests import helpers
from tests.helpers import invoke

README = Path(__file__).resolve().parent.parent / "README.md"

# A device with round numbers, so every roofline case below can be checked by hand: 10 TFLOP/s fp32 and 4 GB/s.
ROUND_DEVICE = """\
name: round_device
summary: 10 TFLOP/s and 4 GB/s, round numbers for hand-checked cases
kind: gpu
peak: {fp32: 10}
memory: {bandwidth: 4, capacity: 1}
source: made-up round numbers, not a product
verified: false
"""

# 100M fp32 parameters (a 10,000 x 10,000 linear, no bias): 400 MB
BIG_FC = """\
name: big_fc
summary: 100M parameters
variables: {N: 1}
inputs: {x: [N, 10000]}
layers: [{op: linear, out_features: 10000, bias: false}]
"""


@pytest.fixture()
def round_device(tmp_path):
    path = tmp_path / "round_device.yaml"
    path.write_text(ROUND_DEVICE)
    return str(path)


def test_round_compute_bound_case(round_device):
    # seed_fc is FC 100 -> 50: 10,000 FLOPs per sample. N = 10^8 samples: 10^12 FLOPs.
    # At 10 TFLOP/s: 10^12 / 10^13 = 0.1 s (the compute bound, FLOPs / peak; Williams, Waterman and Patterson 2009).
    result = invoke(
        "eval", "seed_fc", "--set", "N=100000000", "--device", round_device, "--runtime", "roofline", "--format", "json"
    )
    data = json.loads(result.stdout)
    assert data["totals"]["flops"] == 10**12
    assert data["performance"]["flops_lower_bound_s"] == 0.1
    # its bytes: read 10^8 x 100 + 5,050 weights, write 10^8 x 50, fp32: 4 x 15,000,005,050 bytes
    # = 60,000,020,200 B at 4 GB/s = 15.000005 s: memory-bound, far above the compute bound
    assert data["layers"][0]["bytes"] == 60_000_020_200
    assert data["layers"][0]["bound"] == "memory"
    assert data["totals"]["latency_s"] == pytest.approx(15.000005050, rel=1e-12)


def test_round_bandwidth_case(tmp_path, round_device):
    # 100M fp32 params = 400,000,000 bytes, read in 0.1 s: at least 4 GB/s (bandwidth >= params x bytes each / time).
    path = tmp_path / "big_fc.yaml"
    path.write_text(BIG_FC)
    result = invoke(
        "eval",
        str(path),
        "--device",
        round_device,
        "--runtime",
        "roofline",
        "--target-latency",
        "0.1",
        "--format",
        "json",
    )
    p = json.loads(result.stdout)["performance"]
    assert p["bandwidth_for_weights_bytes_per_s"] == 4e9
    # reading the weights at exactly 4 GB/s takes exactly the 0.1 s
    assert p["weights_lower_bound_s"] == 0.1
    assert p["meets_target"] is False  # the inputs and outputs also move: 400,080,000 bytes
    assert p["traffic_bytes"] == 4 * (100_000_000 + 10_000 + 10_000)
    text = invoke(
        "eval", str(path), "--device", round_device, "--runtime", "roofline", "--target-latency", "100ms"
    ).stdout
    assert "4 GB/s  weights / target" in text


def test_exact_fractions_for_hand_cases():
    roof = roofline.Roof(peak=10 * 10**12, bandwidth=4 * 10**9)
    assert roofline.layer_time(10**12, 0, roof).latency_s == Fraction(1, 10)
    assert roofline.layer_time(0, 400 * 10**6, roof).latency_s == Fraction(1, 10)
    # ridge = 10^13 / (4 x 10^9) = 2,500 FLOP/byte: a layer of 2,500 FLOPs per byte is at it
    assert roof.ridge == 2500
    at = roofline.layer_time(2_500_000, 1_000, roof)
    assert at.bound == "balanced" and at.compute_s == at.memory_s == Fraction(1, 4_000_000)
    assert roofline.layer_time(2_500_001, 1_000, roof).bound == "compute"
    assert roofline.layer_time(2_499_999, 1_000, roof).bound == "memory"
    # without overlap (Paleo) the two add: 2 x 1/4,000,000
    serial = roofline.Roof(peak=10 * 10**12, bandwidth=4 * 10**9, overlap=False)
    assert roofline.layer_time(2_500_000, 1_000, serial).latency_s == Fraction(1, 2_000_000)
    assert roofline.layer_time(0, 0, roof).bound == "none"


def test_efficiency_derates_both_ceilings():
    a100 = devices.find("a100")
    roof = roofline.roof_for(a100, "bf16", efficiency=0.7)
    assert roof.peak == Fraction(7, 10) * 312 * 10**12
    assert roof.bandwidth == Fraction(7, 10) * 2039 * 10**9
    roof = roofline.roof_for(a100, "bf16", efficiency=0.5, memory_efficiency=0.8)
    assert roof.ridge == Fraction(5, 10) * 312 * 10**12 / (Fraction(8, 10) * 2039 * 10**9)
    with pytest.raises(Exception, match="--efficiency must be in"):
        roofline.roof_for(a100, "bf16", efficiency=0)


def _llama(values):
    graph = helpers.graph("llama")
    return compile.evaluate(graph, values)


@pytest.mark.parametrize("name", ["a100", "h100_sxm", "h100_pcie", "h200", "l4", "t4", "v100", "rtx_4090"])
def test_llama2_7b_decode_is_memory_bound(name):
    """One token of Llama-2-7B is a stream of its weights: every layer memory-bound, latency =
    bytes moved / bandwidth exactly, and within 3% of weight bytes / bandwidth at a short context."""
    device = devices.find(name)
    dtype = "bf16" if "bf16" in device.peaks else "fp16"
    result = _llama({"S": 1, "ctx": 16})
    roof = roofline.roof_for(device, dtype)
    est = roofline.estimate(result, device, roof, dtype)
    assert {t.bound for t in est.layers} == {"memory"}
    moved = sum(t.bytes for t in est.layers)
    assert est.latency_s == Fraction(moved) / device.bandwidth
    weights = 2 * 6_738_415_616  # Llama-2-7B params at 2 bytes
    ratio = est.latency_s / (Fraction(weights) / device.bandwidth)
    # the embedding table is not streamed (one row per token): 131,072,000 of 6.74B params = 1.9% less
    assert Fraction(96, 100) < ratio < Fraction(100, 100)


def test_decode_phase_from_the_cli():
    result = invoke(
        "eval",
        "llama",
        "--device",
        "a100",
        "--dtype",
        "bf16",
        "--phase",
        "decode",
        "--runtime",
        "roofline",
        "--format",
        "json",
    )
    data = json.loads(result.stdout)
    assert data["values"]["S"] == 1 and data["values"]["ctx"] == 4095
    p = data["performance"]
    # every layer memory-bound: 32 decoder layers x 10 + embedding + final norm + lm_head = 323
    assert p["layers_by_bound"] == {"memory": 323}
    # KV cache after the step: 2 (k, v) x 32 layers x 4096 tokens x 4096 (32 heads x 128) x 2 bytes
    assert p["kv_cache_bytes"] == 2 * 32 * 4096 * 4096 * 2 == 2_147_483_648
    assert p["tokens"] == 1
    text = invoke("eval", "llama", "--device", "a100", "--dtype", "bf16", "--phase", "decode").stdout
    assert "time per output token (phase decode)" in text
    prefill = invoke(
        "eval", "llama", "--device", "a100", "--dtype", "bf16", "--phase", "prefill", "--set", "S=512"
    ).stdout
    assert "time to first token (phase prefill)" in prefill


def test_set_overrides_a_phase_and_bad_phases_are_errors():
    data = json.loads(invoke("eval", "llama", "--phase", "decode", "--set", "ctx=100", "--format", "json").stdout)
    assert data["values"]["ctx"] == 100 and data["values"]["S"] == 1
    result = invoke("eval", "resnet50", "--phase", "decode")
    assert result.exit_code == 1 and "'resnet50' has no phase 'decode'; its phases: inference, train" in result.stderr
    result = invoke("eval", "llama", "--phase", "decod")
    assert result.exit_code == 1 and "did you mean 'decode'" in result.stderr


def test_kv_cache_decode_flops_by_hand():
    # Llama-2-7B, one token after 4095: per layer the projections 4 x 4096^2 + MLP 3 x 4096 x 11008
    # = 67,108,864 + 135,266,304 = 202,375,168 MACs; attention 32 heads x 4096 keys x 2 x 128
    # = 33,554,432; x 32 layers = 7,549,747,200; lm_head 4096 x 32000 = 131,072,000
    # -> 7,680,819,200 MACs
    result = _llama({"S": 1, "ctx": 4095})
    assert result.totals["macs"] == 7_680_819_200
    assert result.totals["cache"] == 2 * 32 * 4096 * 4096


def test_liveness_peak_by_hand():
    text = """\
name: diamond
summary: a residual diamond
variables: {N: 1}
inputs: {x: [N, 10]}
layers:
  - {op: linear, name: a, out_features: 20}
  - {op: relu, name: b}
  - {op: linear, name: c, out_features: 10}
  - {op: add, name: d, in: [c, x]}
"""
    result = compile.evaluate(shapes.build(arch.load_text(text, "diamond.yaml")))
    # x (10) lives until d. a: x + a(20) = 30; b: x + a + b(20) = 50, then a dies;
    # c: x + b + c(10) = 40, then b dies; d: x + c + d(10) = 30. Peak 50.
    assert memory.peak_activations(result) == 50
    assert result.totals["write"] == 60  # the sum of outputs the old estimate used


def test_training_memory_and_flops():
    # ZeRO section 3.1: mixed-precision Adam = 2 + 2 + 12 = 16 bytes per parameter
    state = memory.training_state(1000, "bf16", "adam")
    assert state == {"weights": 2000, "gradients": 2000, "master_weights": 4000, "optimizer": 8000}
    assert sum(memory.training_state(1000, "fp32", "sgd").values()) == 4000 + 4000 + 4000
    data = json.loads(invoke("eval", "resnet50", "--phase", "train", "--dtype", "bf16", "--format", "json").stdout)
    t = data["training"]
    assert t["flops"] == 3 * 8_178_368_512
    params = 25_557_032
    assert t["memory_needed_bytes"]["weights"] == 2 * params
    assert t["memory_needed_bytes"]["optimizer"] == 8 * params
    result = invoke("eval", "llama", "--phase", "train", "--dtype", "bf16", "--device", "h100", "--set", "S=2048")
    assert "does NOT fit in 80 GB" in result.stdout  # 16 bytes x 6.74B params alone is 108 GB


def test_json_contract_has_latency_and_bounds():
    data = json.loads(
        invoke(
            "eval", "resnet50", "--device", "a100", "--dtype", "bf16", "--runtime", "roofline", "--format", "json"
        ).stdout
    )
    assert data["totals"]["latency_s"] == pytest.approx(sum(r["latency_s"] for r in data["layers"]), rel=1e-12)
    for row in data["layers"]:
        assert row["bound"] in {"compute", "memory", "balanced", "none"}
        assert row["latency_s"] == pytest.approx(max(row["compute_s"], row["memory_s"]), rel=1e-12)
    assert data["totals"]["flops"] == 8_178_368_512  # counts unchanged next to the times
    assert data["device"]["ridge_flop_per_byte"] == pytest.approx(312e12 / 2039e9)


def test_symbolic_latency_equals_the_numbers():
    graph = helpers.graph("llama")
    device = devices.find("a100")
    roof = roofline.roof_for(device, "bf16")
    fixed = {v.name: v.default for v in graph.arch.variables.values() if v.name != "B"}
    fixed.update({"S": sympy.Integer(1), "ctx": sympy.Integer(100)})
    closed, layers = roofline.symbolic_estimate(compile.symbolic_nodes(graph, fixed), roof, "bf16")
    B = graph.arch.variables["B"].symbol
    for batch in (1, 7, 300):
        exact = roofline.estimate(compile.evaluate(graph, {"B": batch, "S": 1, "ctx": 100}), device, roof, "bf16")
        assert closed["latency_s"].xreplace({B: batch}) == sympy.Rational(exact.latency_s.numerator,
                                                                          exact.latency_s.denominator)  # fmt: skip
    # the MLP turns compute-bound where the numbers say it does
    gate = next(r for r in layers if r["name"].endswith("mlp.gate_proj"))
    turn = gate["compute_bound_from"]["B"]
    for batch, bound in ((turn - 1, "memory"), (turn, "compute")):
        result = compile.evaluate(graph, {"B": batch, "S": 1, "ctx": 100})
        est = roofline.estimate(result, device, roof, "bf16")
        index = next(i for i, n in enumerate(result.nodes) if n.path.endswith("mlp.gate_proj"))
        assert est.layers[index].bound == bound


def test_free_option_prints_crossovers():
    result = invoke(
        "eval",
        "llama",
        "--device",
        "a100",
        "--dtype",
        "bf16",
        "--phase",
        "decode",
        "--free",
        "B",
        "--runtime",
        "roofline",
    )
    assert result.exit_code == 0, result.stderr
    assert "Closed form (free: B)" in result.stdout
    assert "mlp.gate_proj turns compute-bound at B >= " in result.stdout
    result = invoke("eval", "llama", "--phase", "decode", "--free", "S")
    assert result.exit_code == 1 and "--free S conflicts" in result.stderr


def test_waves_derate_gemms():
    a100 = devices.find("a100")
    # 4096 x 4096 on 108 SMs: 1,024 tiles of 128 x 128 in 10 waves -> 1024 / 1080
    assert roofline.gemm_utilization(1, 4096, 4096, (128, 128), 108) == Fraction(1024, 1080)
    # exactly one full wave: 108 tiles of 128 x 128 = 12 x 9 tiles
    assert roofline.gemm_utilization(1, 12 * 128, 9 * 128, (128, 128), 108) == 1
    # a thin GEMM gets a thin tile (the next power of two): m = 3 -> 4 x 128 tiles, 32 of them
    # in one wave of 108: 3 x 4096 / (108 x 4 x 128) = 12288 / 55296 = 2/9
    assert roofline.gemm_utilization(1, 3, 4096, (128, 128), 108) == Fraction(2, 9)
    plain = json.loads(
        invoke(
            "eval", "resnet50", "--device", "a100", "--dtype", "bf16", "--runtime", "roofline", "--format", "json"
        ).stdout
    )
    waved = json.loads(
        invoke("eval", "resnet50", "--device", "a100", "--dtype", "bf16", "--waves", "--format", "json").stdout
    )
    assert waved["totals"]["latency_s"] > plain["totals"]["latency_s"]
    for a, b in zip(plain["layers"], waved["layers"]):
        assert b["compute_s"] >= a["compute_s"] and b["memory_s"] == a["memory_s"]
    assert a100.tile == (128, 128) and a100.units == 108
    result = invoke("eval", "resnet50", "--device", "tpu_v4", "--dtype", "bf16", "--waves")
    assert result.exit_code == 1 and "--waves needs the device's" in result.stderr


def test_device_options_need_a_device():
    result = invoke("eval", "resnet50", "--efficiency", "0.5")
    assert result.exit_code == 1 and "--efficiency needs --device" in result.stderr
    result = invoke("eval", "resnet50", "--device", "a100", "--target-latency", "fast")
    assert result.exit_code == 1 and "expected seconds like 0.1, 100ms or 250us" in result.stderr


def test_readme_decode_figure():
    """The README's 7.01 ms: Llama-2-7B, one token after 2,047, A100 bf16, worked by hand.

    Streamed weights: 6,738,415,616 params - the 131,072,000-entry embedding table (one row is
    read) = 6,607,343,616 x 2 B = 13,214,687,232 B. KV cache read: 2 x 32 layers x 2,047 tokens x
    4,096 x 2 B = 1,073,217,536 B. At 2.039 TB/s: 14,287,904,768 / 2.039e12 = 7.0073 ms; the
    activations and the new token's cache entries add about 3 µs.
    """
    data = json.loads(
        invoke(
            "eval",
            "llama",
            "--device",
            "a100",
            "--dtype",
            "bf16",
            "--phase",
            "decode",
            "--set",
            "ctx=2047",
            "--runtime",
            "roofline",
            "--format",
            "json",
        ).stdout  # fmt: skip
    )
    by_hand = (13_214_687_232 + 1_073_217_536) / 2.039e12
    assert data["totals"]["latency_s"] == pytest.approx(by_hand, rel=1e-3)
    assert f"{data['totals']['latency_s'] * 1e3:.2f} ms per token" in README.read_text(encoding="utf-8")
