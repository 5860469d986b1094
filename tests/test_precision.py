"""Mixed precision: weights, activations and the KV cache each at their own format (symcost/precision.py).

Every expected number here is hand arithmetic from the block layouts (llama.cpp ggml-common.h) and the
layers' formulas (linear: read = inputs + weights; kv_cache: the S new keys read and written; sdpa:
q, k and v read, the output written), written out above each assertion.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from typer.testing import CliRunner

import symcost
from symcost import precision
from symcost.cli import app
from symcost.errors import UsageError

# One projection, a KV cache and attention over it: at B = 1, S = 1, ctx = 3
#   k_proj (linear 8 -> 8, no bias): reads x (8, activation) and its weight (64), writes 8 (activation)
#   k_view, k_heads: views, no traffic
#   keys (kv_cache, 2 heads of 4): reads the new key (8, activation), writes it into the cache (8, KV);
#     the cache after the step holds 2 x (3 + 1) x 4 = 32 elements
#   attention (sdpa): reads q (8, activation) and the cached k and v, 2 x (2 x 4 x 4) = 64 (KV), writes 8
# weights read 64; activations read 8 + 8 + 8 = 24, written 8 + 8 = 16; KV read 64, written 8.
TINY = """
name: tiny_cache
summary: one projection, a KV cache and attention over it
variables: {B: 1, S: 1, ctx: 3}
inputs: {x: [B, S, 8]}
layers:
  - {op: linear, name: k_proj, out_features: 8, bias: false}
  - {op: view, name: k_view, shape: [B, S, 2, 4]}
  - {op: transpose, name: k_heads, dim0: 1, dim1: 2}
  - {op: kv_cache, name: keys, past: ctx}
  - {op: sdpa, name: attention, in: [k_heads, keys, keys]}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("arch") / "tiny_cache.yaml"
    path.write_text(TINY)
    return str(path)


def test_bits_per_weight_are_the_block_layouts():
    # ggml-common.h: block_q8_0 = fp16 d + 32 int8 = 34 bytes per 32 weights: 34*8/32 = 8.5
    assert precision.bits("q8_0") == Fraction(17, 2)
    # block_q4_0 = fp16 d + 16 bytes of nibbles = 18 bytes per 32: 4.5
    assert precision.bits("q4_0") == Fraction(9, 2)
    # block_q4_K = fp16 d, dmin (4) + scales[12] + qs[128] = 144 bytes per 256: 4.5
    assert precision.bits("q4_k") == precision.bits("q4_k_m") == Fraction(9, 2)
    # block_q5_K = 4 + 12 + qh[32] + qs[128] = 176 bytes per 256: 5.5
    assert precision.bits("q5_k_m") == Fraction(11, 2)
    # block_q6_K = ql[128] + qh[64] + scales[16] + fp16 d = 210 bytes per 256: 6.5625
    assert precision.bits("q6_k") == Fraction(105, 16)
    # block_q3_K = hmask[32] + qs[64] + scales[12] + d (2) = 110 per 256; block_q2_K = 16 + 64 + 4 = 84 per 256
    assert (precision.bits("q3_k"), precision.bits("q2_k")) == (Fraction(55, 16), Fraction(21, 8))
    # NVFP4: 16 e2m1 values and one e4m3 scale: (64 + 8)/16 = 4.5; MXFP4: (128 + 8)/32 = 4.25
    assert (precision.bits("nvfp4"), precision.bits("mxfp4")) == (Fraction(9, 2), Fraction(17, 4))
    assert precision.bits("fp8_e4m3") == precision.bits("fp8_e5m2") == 8


def test_mixed_formats_name_their_approximation():
    assert precision.FORMATS["q4_k_m"].approximation
    assert not precision.FORMATS["q4_k"].approximation and not precision.FORMATS["q8_0"].approximation
    notes = precision.Precision.of("bf16", weight="q4_k_m").notes()
    assert len(notes) == 1 and "Q4_K_M" in notes[0] and "4.5" in notes[0]


def test_tiny_bytes_by_hand(tiny):
    parts = precision.totals(symcost.evaluate(tiny).result)
    assert parts == {"weight_read": 64, "act_read": 24, "kv_read": 64, "act_write": 16, "kv_write": 8}
    r = symcost.evaluate(tiny, dtype="bf16", weight_dtype="q4_0", kv_dtype="fp8")
    # weights 64 x 4.5 / 8 = 36; activations (24 + 16) x 2 = 80; KV (64 + 8) x 1 = 72: 188 bytes
    assert r.totals["traffic_bytes"] == 36 + 80 + 72
    assert r.totals["model_bytes"] == r.totals["params_bytes"] == 36  # 64 x 4.5 / 8
    assert r.totals["kv_cache_bytes"] == 32  # 32 elements x 1 byte
    # all bf16: (64 + 24 + 64 + 16 + 8) x 2 = 352
    assert symcost.evaluate(tiny, dtype="bf16").totals["traffic_bytes"] == 352


def test_fractional_bytes_round_up_once(tiny):
    # 64 weights x 6.5625 bits = 420 bits = 52.5 bytes: the model size is 53 whole bytes
    assert symcost.evaluate(tiny, dtype="fp16", weight_dtype="q6_k").totals["model_bytes"] == 53
    # traffic: 64 x 6.5625 / 8 + (24 + 16 + 64 + 8) x 2 = 52.5 + 224 = 276.5 -> 277
    assert symcost.evaluate(tiny, dtype="fp16", weight_dtype="q6_k").totals["traffic_bytes"] == 277


def test_uniform_is_the_single_dtype_path(tiny):
    plain = symcost.estimate("llama3_8b", device="h100", dtype="bf16", phase="decode")
    named = symcost.estimate(
        "llama3_8b", device="h100", dtype="bf16", phase="decode", weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16"
    )
    assert plain.totals == named.totals and plain.performance == named.performance


def test_llama_cache_read_is_kv_traffic():
    """archs/llama.yaml (Llama-2-7B, fused attention with kv_cache: true) decoding one token over 1,000:
    each of 32 layers reads 1,000 cached keys and values of 32 heads x 128 (2 x 1000 x 4096) and writes
    the new token's (2 x 4096)."""
    parts = precision.totals(symcost.evaluate("llama", S=1, ctx=1000).result)
    assert parts["kv_read"] == 32 * 2 * 1000 * 4096
    assert parts["kv_write"] == 32 * 2 * 4096


def test_llama3_8b_q4_k_m_against_the_published_gguf():
    """Model size at Q4_K = 8,030,261,248 x 4.5 / 8 = 4,517,021,952 bytes. The published
    Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf (bartowski/Meta-Llama-3.1-8B-Instruct-GGUF) is 4.92 GB: llama.cpp's
    Q4_K_M recipe (llama_tensor_get_type) keeps output.weight (128,256 x 4,096 = 525,336,576) at Q6_K, and
    attn_v (4,096 x 1,024) and ffn_down (14,336 x 4,096) at Q6_K in the 16 of 32 layers use_more_bits picks
    (the first and last 4, and every third between), each 6.5625 - 4.5 = 2.0625 bits more; its 65 norm
    vectors of 4,096 stay F32 (27.5 bits more). That adds 135,438,336 + 259,522,560 + 915,200 bytes:
    4,912,898,048, the file's size less its tokenizer metadata. symcost costs every weight as Q4_K (stated
    in its output): 8% under the file."""
    r = symcost.evaluate("llama3_8b", dtype="bf16", weight_dtype="q4_k_m")
    assert r.totals["model_bytes"] == 8_030_261_248 * 9 // 16 == 4_517_021_952
    extra_bits = Fraction(33, 16)  # 6.5625 - 4.5
    output = 128_256 * 4_096 * extra_bits / 8
    more_bits = [i for i in range(32) if i < 4 or i >= 28 or (i - 4) % 3 == 2]
    layers = len(more_bits) * (4_096 * 1_024 + 14_336 * 4_096) * extra_bits / 8
    norms = 65 * 4_096 * Fraction(55, 2) / 8
    assert (len(more_bits), output, layers, norms) == (16, 135_438_336, 259_522_560, 915_200)
    recipe = r.totals["model_bytes"] + output + layers + norms
    published = 4.92e9
    assert recipe == 4_912_898_048 and abs(recipe - published) / published < 0.005
    assert 0.9 < r.totals["model_bytes"] / published < 0.93
    assert r.data["precision"]["notes"] and "Q4_K_M" in r.data["precision"]["notes"][0]


def test_cli_and_api_agree_and_json_carries_the_three(tiny):
    args = ["--dtype", "bf16", "--weight-dtype", "q4_0", "--act-dtype", "fp16", "--kv-dtype", "fp8"]
    out = CliRunner().invoke(app, ["eval", tiny, *args, "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    api = symcost.evaluate(tiny, dtype="bf16", weight_dtype="q4_0", act_dtype="fp16", kv_dtype="fp8")
    assert data["totals"] == json.loads(json.dumps(api.totals))
    assert {k: data["precision"][k] for k in ("compute", "weight", "act", "kv")} == {
        "compute": "bf16", "weight": "q4_0", "act": "fp16", "kv": "fp8"
    }  # fmt: skip
    assert data["precision"]["bits"] == {"weight": "9/2", "act": "16", "kv": "8"}


def test_the_peak_is_the_compute_dtype_s():
    """--dtype picks the device's peak; the storage formats move bytes only."""
    # the pure roofline: latency is bytes over bandwidth, with no per-kernel overhead to blur the ratio
    a = symcost.estimate("llama3_8b", device="h100", dtype="bf16", phase="decode", runtime="roofline")
    b = symcost.estimate("llama3_8b", device="h100", dtype="bf16", phase="decode", weight_dtype="int4",
                         runtime="roofline")  # fmt: skip
    assert a.device["peak_flop_per_s"] == b.device["peak_flop_per_s"]
    # decode is memory-bound: int4 weights move about a quarter of the bf16 bytes, so the latency drops
    assert b.performance["latency_s"] < a.performance["latency_s"] / 3
    # weights: 8,030,261,248 x 4 / 8 = 4,015,130,624 bytes
    assert b.performance["memory_needed_bytes"]["weights"] == 4_015_130_624


def test_sweep_solve_and_compare_take_the_options(tiny):
    runner = CliRunner()
    args = ["--dtype", "bf16", "--weight-dtype", "q4_0", "--kv-dtype", "fp8"]
    out = runner.invoke(app, ["sweep", tiny, "--over", "ctx=3,7", "-m", "traffic_bytes,model_bytes", *args,
                              "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["points"]
    # at ctx = 7 the cached k and v are 2 x (2 x 8 x 4) = 128: 36 + 80 + (128 + 8) = 252
    assert [(r["traffic_bytes"], r["model_bytes"]) for r in rows] == [(188, 36), (252, 36)]
    out = runner.invoke(app, ["solve", tiny, "traffic_bytes >= 252", "--for", "ctx", *args])
    assert out.exit_code == 0, out.output
    assert "ctx = 7" in out.output
    out = runner.invoke(app, ["compare", tiny, tiny, "-m", "traffic_bytes", *args, "--format", "json"])
    assert out.exit_code == 0, out.output
    assert "188" in out.output


def test_bad_formats_are_refused():
    with pytest.raises(UsageError, match="q4_k_m"):
        symcost.evaluate("resnet18", dtype="q4_k_m")  # a storage format cannot compute
    with pytest.raises(UsageError, match="did you mean|choose from"):
        symcost.evaluate("resnet18", weight_dtype="q4_km")
    with pytest.raises(UsageError, match="phase train"):
        symcost.evaluate("resnet18", phase="train", weight_dtype="int4")


def test_runtimes_price_each_storage_format():
    """A non-roofline runtime fuses kernels; mixed precision still reads weights at their format. Fusion
    and L2 save activations only, so int4 weights save the same bytes under tensorrt as under the pure
    roofline (each layer or kernel rounds its bytes up once: at most one byte apart per row)."""

    def saved(runtime: str) -> tuple[int, int]:
        common = dict(device="h100", dtype="bf16", phase="decode", runtime=runtime)
        a = symcost.estimate("llama3_8b", **common)
        b = symcost.estimate("llama3_8b", weight_dtype="int4", **common)
        rows = sum(1 for t in b.roofline.layers if t.bound != "fused")
        return sum(t.bytes for t in a.roofline.layers) - sum(t.bytes for t in b.roofline.layers), rows

    roof, roof_rows = saved("roofline")
    fused, fused_rows = saved("tensorrt")
    # 7 linear weights of 32 layers and the head are read whole, the embedding one row: 1.5 bytes saved each
    assert roof > 7_000_000_000
    assert fused_rows < roof_rows
    assert abs(roof - fused) <= roof_rows + fused_rows
