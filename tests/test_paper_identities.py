"""symcost's closed forms reproduce published cost formulas, as exact sympy identities.

The papers' closed forms (Kaplan et al. 2020 Table 1; Narayanan et al. 2021 section 5.1; Chowdhery et al. 2022 App. B; Hoffmann et al. 2022; Ma et al. 2018 section 3; Howard et al. 2017 section 3). Each test takes symcost's closed form (``compile.symbolic_totals``
over a bundled architecture, or a formula's costs with attributes bound symbolically), subtracts the
paper's formula and every place where symcost counts something the paper does not (each written out
as a named term with its meaning), and asserts that ``sympy.expand`` of what remains is exactly 0: an
identity in every free variable, not a check at a few points. Each test also asserts that the
difference is *not* 0 without the named terms (where there are any), so dropping one fails the test,
and checks one published size numerically, the arithmetic in a comment.

Conventions (docs/conventions.md): FLOPs = 2 x MACs of conv/matmul/attention; bias adds, norms,
activations and softmax are elementwise work reported apart, not FLOPs (the papers omit them too);
bias and norm *parameters* are parameters (the papers omit them); causal attention is counted as the
full S x S square unless the attention layer sets ``exact_causal``.
"""

from __future__ import annotations

import functools

import sympy

from symcost import arch as arch_module
from symcost import compile, cost, formulas, registry, shapes
from symcost.shapes import Graph
from tests.helpers import graph

ARCHS = registry.data_dir("archs")


@functools.cache
def _graph(name: str, exact_causal: bool = False) -> Graph:
    """A bundled architecture; with ``exact_causal``, its attention counts only the visible pairs."""
    if not exact_causal:
        return graph(name)
    text = (ARCHS / f"{name}.yaml").read_text(encoding="utf-8")
    if exact_causal:
        assert text.count("causal: true,") == 1, "expected one attention layer to switch"
        text = text.replace("causal: true,", "causal: true, exact_causal: true,")
    return shapes.build(arch_module.load_text(text, f"{name}.yaml"))


def _symbols(graph: Graph) -> dict[str, sympy.Symbol]:
    """The architecture's variables as the symbols its closed forms use (positive integers)."""
    return {name: var.symbol for name, var in graph.arch.variables.items()}


def _free(graph: Graph, *names: str, **values: int) -> dict[str, sympy.Expr]:
    """Closed-form totals with ``names`` kept free even where their default is an expression
    (``head_dim: d_model/n_head``, ``d_ff: 4*d_model``), and ``values`` given."""
    v = _symbols(graph)
    return compile.symbolic_totals(graph, {n: v[n] for n in names} | values)


# ---- 1. Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Table 1 --------------------


def test_kaplan_non_embedding_params():
    """Kaplan et al. 2020, Table 1, "Total (Non-Embedding)": N = 2*d_model*n_layer*(2*d_attn + d_ff),
    the attention q/k/v/out weights (4*d_model*d_attn) and the MLP's two (2*d_model*d_ff) per layer; the
    paper leaves out biases and norms (section 2.1: "excluding biases and other sub-leading terms") and
    all vocabulary and positional embeddings (section 1.3). GPT-2 with d_attn = n_head*head_dim and d_ff
    free."""
    g = _graph("gpt2")
    v = _symbols(g)
    d_model, n_layer, d_ff, vocab, n_positions = (v[k] for k in ("d_model", "n_layer", "d_ff", "vocab", "n_positions"))
    d_attn = v["n_head"] * v["head_dim"]
    params = _free(g, "head_dim", "d_ff", ctx=0)["params"]

    kaplan = 2 * d_model * n_layer * (2 * d_attn + d_ff)
    # the embeddings Kaplan's N excludes: wte (also the lm_head's weight: tied, counted once) and wpe
    token_embedding = vocab * d_model
    position_embedding = n_positions * d_model
    # biases: q, k, v (3*d_attn) and out_proj (d_model); mlp.c_fc (d_ff) and mlp.c_proj (d_model)
    biases = n_layer * (3 * d_attn + d_model + d_ff + d_model)
    # LayerNorm weight and bias (2*d_model each): ln_1 and ln_2 in every layer, and the final ln_f
    norms = (2 * n_layer + 1) * 2 * d_model

    non_embedding = params - token_embedding - position_embedding
    assert sympy.expand(non_embedding - kaplan - biases - norms) == 0
    assert sympy.expand(non_embedding - kaplan) != 0  # the bias and norm terms are needed

    # d_attn = d_model, d_ff = 4*d_model (GPT-2's defaults): 12*n_layer*d_model^2
    params = compile.symbolic_totals(g, {"ctx": 0})["params"]
    biases = n_layer * (3 * d_model + d_model + 4 * d_model + d_model)  # the same biases at these sizes
    assert sympy.expand(params - token_embedding - position_embedding - 12 * n_layer * d_model**2 - biases - norms) == 0

    # GPT-2 small: 12*12*768^2 = 84,934,656 by Kaplan's formula. symcost: 124,439,808 params
    # - wte 50257*768 = 38,597,376 - wpe 1024*768 = 786,432 = 85,056,000
    # = 84,934,656 + biases 12*(3*768 + 768 + 3072 + 768) = 82,944 + norms 25*2*768 = 38,400.
    # (Per layer only, 7,087,872*12 = 85,054,464 = 84,934,656 + 119,808; ln_f adds 1,536.)
    total = compile.evaluate(g).totals["params"]
    assert total == 124_439_808
    assert total - 38_597_376 - 786_432 == 85_056_000 == 12 * 12 * 768**2 + 82_944 + 38_400


def test_kaplan_forward_flops_per_token():
    """Kaplan et al. 2020, Table 1: C_forward = 2N + 2*n_layer*n_ctx*d_attn per token. Its "Attention:
    Mask" row, 2*n_layer*n_ctx*d_attn, is half of the full-square QK^T + AV count (4*n_layer*n_ctx*d_attn
    per token): each query sees n_ctx/2 keys on average. Its "De-embed" row, 2*d_model*n_vocab, is
    listed but not in the non-embedding total. n_ctx is the sequence S (no KV cache, ctx = 0)."""
    g = _graph("gpt2")
    v = _symbols(g)
    B, S, d_model, n_layer, d_ff, vocab = (v[k] for k in ("B", "S", "d_model", "n_layer", "d_ff", "vocab"))
    d_attn = v["n_head"] * v["head_dim"]
    n_ctx = S
    N = 2 * d_model * n_layer * (2 * d_attn + d_ff)  # Kaplan's non-embedding params (test above)
    kaplan = 2 * N + 2 * n_layer * n_ctx * d_attn
    # the lm_head's logits, Kaplan's "De-embed" row, outside C_forward
    de_embed = 2 * d_model * vocab

    # symcost's default: the full square. The masked half (upper triangle) is counted as well.
    per_token = sympy.expand(_free(g, "head_dim", "d_ff", ctx=0)["flops"] / (B * S))
    causal_half = 2 * n_layer * n_ctx * d_attn
    assert sympy.expand(per_token - kaplan - de_embed - causal_half) == 0
    assert sympy.expand(per_token - kaplan - de_embed) != 0  # fails if the full square were halved

    # exact_causal: S*(S + 1)/2 visible pairs per head, (S + 1)/2 keys per query on average, not S/2:
    # the diagonal (each query sees itself) is one key more per two queries than Kaplan's n_ctx/2.
    per_token = sympy.expand(_free(_graph("gpt2", exact_causal=True), "head_dim", "d_ff", ctx=0)["flops"] / (B * S))
    diagonal = 2 * n_layer * d_attn
    assert sympy.expand(per_token - kaplan - de_embed - diagonal) == 0

    # GPT-2 small, S = 1024: 291,648,307,200 FLOPs / 1024 tokens = 284,812,800 per token
    # = Kaplan 2*84,934,656 + 2*12*1024*768 = 169,869,312 + 18,874,368 = 188,743,680
    # + de_embed 2*768*50257 = 77,194,752 + causal_half 2*12*1024*768 = 18,874,368.
    flops = compile.evaluate(g).totals["flops"]
    assert flops == 291_648_307_200
    assert flops // 1024 == 284_812_800 == 188_743_680 + 77_194_752 + 18_874_368


# ---- 2. Megatron-LM (Narayanan et al. 2021, section 5.1) --------------------------------------------


def test_megatron_forward_and_training_flops():
    """Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using
    Megatron-LM", section 5.1 (B batch, s sequence, l layers, h hidden, V vocabulary, MLP 4h):
    forward 24*B*s*l*h^2 + 4*B*s^2*l*h + 2*B*s*h*V (full-square attention, as symcost's default);
    a training iteration without activation recomputation 72*B*s*l*h^2*(1 + s/(6h) + V/(12*l*h)) =
    3 x forward (symcost's cost.TRAINING_FACTOR); with recomputation 96*B*s*l*h^2*(1 + s/(6h) +
    V/(16*l*h)) = 4 x the transformer layers' forward + 3 x the logit layer's (the logits are not
    recomputed: 96/16 = 6 = 3 x 2 for the V term), so it is NOT 4 x the whole forward."""
    g = _graph("gpt2")
    v = _symbols(g)
    B, s, l, h, V = (v[k] for k in ("B", "S", "n_layer", "d_model", "vocab"))  # noqa: E741
    forward = compile.symbolic_totals(g, {"ctx": 0})["flops"]

    megatron_forward = 24 * B * s * l * h**2 + 4 * B * s**2 * l * h + 2 * B * s * h * V
    assert sympy.expand(forward - megatron_forward) == 0

    training = cost.TRAINING_FACTOR * forward
    without_recompute = 72 * B * s * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h))
    assert sympy.expand(training - without_recompute) == 0

    # symcost has no recomputation option: Megatron's rerun of the layers' forward before the
    # backward is the forward minus the logit layer (lm_head, 2*B*s*h*V), which is not recomputed
    logit_layer = 2 * B * s * h * V
    recomputation = forward - logit_layer
    with_recompute = 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h))
    assert sympy.expand(training + recomputation - with_recompute) == 0
    assert sympy.expand((cost.TRAINING_FACTOR + 1) * forward - with_recompute) != 0  # not 4 x forward
    # the recomputed part is exactly symcost's transformer blocks
    blocks = sum(
        (per["flops"] for path, per in compile.symbolic_nodes(g, {"ctx": 0}) if path.startswith("transformer.h.")),
        sympy.Integer(0),
    )
    assert sympy.expand(blocks - recomputation) == 0

    # GPT-2 small, B = 1, s = 1024: 24*1024*12*768^2 = 173,946,175,488 + 4*1024^2*12*768 =
    # 38,654,705,664 + 2*1024*768*50257 = 79,047,426,048 -> forward 291,648,307,200; x3 =
    # 874,944,921,600; with recomputation + 173,946,175,488 + 38,654,705,664 = 1,087,545,802,752.
    fwd = compile.evaluate(g).totals["flops"]
    assert fwd == 173_946_175_488 + 38_654_705_664 + 79_047_426_048 == 291_648_307_200
    assert cost.TRAINING_FACTOR * fwd == 874_944_921_600
    assert cost.TRAINING_FACTOR * fwd + fwd - 79_047_426_048 == 1_087_545_802_752


# ---- 3. PaLM (Chowdhery et al. 2022, Appendix B); Chinchilla (Hoffmann et al. 2022) -----------------


def _llama_training():
    """Llama (untied lm_head, no biases, RMSNorm, SwiGLU, GQA) with n_kv_head, head_dim, d_ff free:
    training FLOPs, the parameters in matmuls, and the symbols."""
    g = _graph("llama")
    v = _symbols(g)
    totals = _free(g, "head_dim", "d_ff", "n_kv_head", ctx=0)
    # parameters outside matmuls: embed_tokens (a lookup; the untied lm_head is a matmul and stays
    # in N) and the RMSNorm weights (input_layernorm and post_attention_layernorm per layer, model.norm)
    embed_tokens = v["vocab"] * v["d_model"]
    norms = (2 * v["n_layer"] + 1) * v["d_model"]
    matmul_params = totals["params"] - embed_tokens - norms
    return g, v, cost.TRAINING_FACTOR * totals["flops"], matmul_params


def test_palm_training_flops_per_token():
    """Chowdhery et al. 2022, "PaLM", Appendix B (model FLOPs utilization): training matmul FLOPs per
    token 6N + 12*L*H*Q*T (N parameters in matmuls, L layers, H heads, Q head dim, T sequence length).
    12*L*H*Q*T is 3 x the full-square QK^T + AV (4*H*Q*T per layer per token): PaLM does not halve
    the causal square, symcost's default neither, so there is no attention difference term. With
    n_kv_head free: GQA/MQA (PaLM is multi-query) changes N and the FLOPs alike."""
    g, v, training, N = _llama_training()
    L, H, Q, T = v["n_layer"], v["n_head"], v["head_dim"], v["S"]
    tokens = v["B"] * v["S"]
    per_token = sympy.expand(training / tokens)
    assert sympy.expand(per_token - (6 * N + 12 * L * H * Q * T)) == 0

    # exact_causal halves it (plus the diagonal): 12*L*H*Q*(T + 1)/2; then the masked half is missing
    exact = _free(_graph("llama", exact_causal=True), "head_dim", "d_ff", "n_kv_head", ctx=0)["flops"]
    masked_half = 6 * L * H * Q * (T - 1)
    assert sympy.expand(cost.TRAINING_FACTOR * exact / tokens - (6 * N + 12 * L * H * Q * T) + masked_half) == 0

    # Llama-2-7B, T = 4096: N = 6,738,415,616 - embed_tokens 32000*4096 = 131,072,000 - norms
    # 65*4096 = 266,240 = 6,607,077,376; 6N = 39,642,464,256 + 12*32*32*128*4096 = 6,442,450,944
    # -> 46,084,915,200 per token = 3 x 62,921,270,886,400 forward FLOPs / 4096 tokens.
    r = compile.evaluate(g)
    assert r.totals["params"] - 131_072_000 - 266_240 == 6_607_077_376
    assert cost.TRAINING_FACTOR * r.totals["flops"] == 4096 * 46_084_915_200
    assert 6 * 6_607_077_376 + 12 * 32 * 32 * 128 * 4096 == 46_084_915_200


def test_chinchilla_training_compute():
    """Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla), section 3
    (FLOPs(N, D) ~= 6*N*D, after Kaplan et al.) and Appendix F: training compute over D tokens. It is PaLM's identity over D tokens
    without the attention term, which the approximation drops: here it is stated exactly."""
    _, v, training, N = _llama_training()
    L, H, Q, T = v["n_layer"], v["n_head"], v["head_dim"], v["S"]
    D = v["B"] * v["S"]  # tokens in the step
    # attention scores and weighted values, forward + backward, over D tokens of context T
    attention = 12 * L * H * Q * T * D
    assert sympy.expand(training - 6 * N * D - attention) == 0
    assert sympy.expand(training - 6 * N * D) != 0

    # Llama-2-7B, T = 4096: attention / 6ND = 6,442,450,944 / 39,642,464,256 = 16.3% per token
    assert round(6_442_450_944 / 39_642_464_256, 3) == 0.163


# ---- 4. ShuffleNet V2 (Ma et al. 2018, section 3, G1 and G2) ----------------------------------------


def test_shufflenet_v2_memory_access_cost():
    """Ma et al. 2018, "ShuffleNet V2", section 3: a 1x1 conv c1 -> c2 on an h x w map has
    B = h*w*c1*c2 MACs (FLOPs in the paper's words) and memory access cost MAC = h*w*(c1 + c2) + c1*c2
    elements (input, output, weights); G2, with g groups, MAC = h*w*(c1 + c2) + c1*c2/g. conv2d's
    read + write with batch 1, kernel 1, no bias is exactly that. G1: MAC >= 2*sqrt(h*w*B) + B/(h*w),
    equality iff c1 = c2: the gap is h*w*(sqrt(c1) - sqrt(c2))^2."""
    conv = formulas.conv2d
    h, w, c1, c2, g = (conv.symbols[k] for k in ("H", "W", "C_in", "C_out", "groups"))
    grouped = conv.bind(N=1, kernel=1, stride=1, padding=0, dilation=1, bias=False)
    assert grouped.outputs["y"] == (1, c2, h, w)
    assert sympy.expand(grouped.costs["macs"] - h * w * c1 * c2 / g) == 0
    mac_g2 = grouped.costs["read"] + grouped.costs["write"]
    assert sympy.expand(mac_g2 - (h * w * (c1 + c2) + c1 * c2 / g)) == 0

    plain = conv.bind(N=1, kernel=1, stride=1, padding=0, dilation=1, groups=1, bias=False)
    B = plain.costs["macs"]
    assert sympy.expand(B - h * w * c1 * c2) == 0
    mac = plain.costs["read"] + plain.costs["write"]
    assert sympy.expand(mac - (h * w * (c1 + c2) + c1 * c2)) == 0

    # G1 (symbols are positive, so sqrt(h*w*B) = h*w*sqrt(c1)*sqrt(c2))
    bound = 2 * sympy.sqrt(h * w * B) + B / (h * w)
    gap = h * w * (sympy.sqrt(c1) - sympy.sqrt(c2)) ** 2
    assert sympy.expand(mac - bound - gap) == 0
    assert gap.is_nonnegative
    assert sympy.simplify((mac - bound).subs(c2, c1)) == 0

    # h = w = 56, c1 = c2 = 128: B = 3136*16384 = 51,380,224; MAC = 3136*256 + 16384 = 819,200 =
    # the bound 2*sqrt(3136*51,380,224) + 51,380,224/3136 = 802,816 + 16,384. c1 = 64, c2 = 256 (same
    # B): MAC = 3136*320 + 16384 = 1,019,904 = 819,200 + gap 3136*(8 - 16)^2 = 200,704.
    e = conv.evaluate(N=1, C_in=128, H=56, W=56, C_out=128, kernel=1, bias=False)
    assert (e.macs, e.read + e.write) == (51_380_224, 819_200)
    e = conv.evaluate(N=1, C_in=64, H=56, W=56, C_out=256, kernel=1, bias=False)
    assert (e.macs, e.read + e.write) == (51_380_224, 819_200 + 200_704)
    # G2: groups 4 cut the weights c1*c2/g: 3136*256 + 16384/4 = 806,912
    e = conv.evaluate(N=1, C_in=128, H=56, W=56, C_out=128, kernel=1, groups=4, bias=False)
    assert e.read + e.write == 806_912


# ---- 5. MobileNet v1 (Howard et al. 2017, section 3.1) ----------------------------------------------


def test_mobilenet_depthwise_separable_reduction():
    """Howard et al. 2017, "MobileNets", section 3.1, the reduction in computation: depthwise
    (D_K x D_K, one filter per input channel) + pointwise (1x1, M -> N) over a standard D_K x D_K conv
    M -> N, on a D_F x D_F map (stride 1, "same" padding (D_K - 1)/2, D_K odd): 1/N + 1/D_K^2."""
    M, N, D_K, D_F = sympy.symbols("M N D_K D_F", integer=True, positive=True)
    conv = formulas.conv2d
    common = dict(N=1, H=D_F, W=D_F, stride=1, dilation=1, bias=False)
    same = (D_K - 1) / 2
    depthwise = conv.bind(C_in=M, C_out=M, groups=M, kernel=D_K, padding=same, **common)
    pointwise = conv.bind(C_in=M, C_out=N, groups=1, kernel=1, padding=0, **common)
    standard = conv.bind(C_in=M, C_out=N, groups=1, kernel=D_K, padding=same, **common)
    for layer in (depthwise, pointwise, standard):  # "same" padding keeps D_F x D_F
        assert layer.outputs["y"][2:] == (D_F, D_F)
    # the paper's costs: equation 2 (standard), 4 (depthwise), 5's second term (pointwise)
    assert sympy.expand(standard.costs["macs"] - D_K * D_K * M * N * D_F * D_F) == 0
    assert sympy.expand(depthwise.costs["macs"] - D_K * D_K * M * D_F * D_F) == 0
    assert sympy.expand(pointwise.costs["macs"] - M * N * D_F * D_F) == 0
    ratio = (depthwise.costs["macs"] + pointwise.costs["macs"]) / standard.costs["macs"]
    assert sympy.simplify(ratio - (1 / N + 1 / D_K**2)) == 0

    # M = N = 512, D_F = 14, D_K = 3: standard 9*512*512*196 = 462,422,016; depthwise 9*512*196 =
    # 903,168 + pointwise 512*512*196 = 51,380,224 = 52,283,392 = (1/512 + 1/9) x 462,422,016.
    at = dict(N=1, H=14, W=14, bias=False)
    dw = conv.evaluate(C_in=512, C_out=512, groups=512, kernel=3, padding=1, **at).macs
    pw = conv.evaluate(C_in=512, C_out=512, kernel=1, padding=0, **at).macs
    std = conv.evaluate(C_in=512, C_out=512, kernel=3, padding=1, **at).macs
    assert (dw, pw, std) == (903_168, 51_380_224, 462_422_016)
    assert sympy.Rational(dw + pw, std) == sympy.Rational(1, 512) + sympy.Rational(1, 9)
