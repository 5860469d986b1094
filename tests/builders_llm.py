"""Torch twins of the LLM formulas (``moe``, ...).

The mixture of experts runs on CPU with random weights and inputs, so the routing is real: each
expert's F.linear runs over the tokens that chose it, as transformers' eager experts do
(``MixtralExperts.forward``). FlopCounterMode then counts sum over experts of tokens_e * weights,
which is T*top_k*weights whatever the routing: the count symcost states.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .twins import META, builder

CPU = torch.device("cpu")


class MoE(nn.Module):
    """A sparse MoE block: router, top-k routed experts (fused gate_up as transformers 5 stores them), shared MLP."""

    def __init__(self, d: int, experts: int, top_k: int, d_ff: int, values: dict[str, Any]):
        super().__init__()
        self.glu, self.top_k, self.experts = bool(values["glu"]), top_k, experts
        self.sigmoid, self.norm_topk = bool(values["sigmoid_router"]), bool(values["norm_topk"])
        self.router = nn.Parameter(torch.randn(experts, d))
        self.up = nn.Parameter(torch.randn(experts, (1 + self.glu) * d_ff, d))  # gate and up, or fc1
        self.down = nn.Parameter(torch.randn(experts, d, d_ff))
        if values["correction_bias"]:
            self.register_buffer("correction", torch.zeros(experts))
        shared = values["shared_ff"]
        self.shared = None
        if shared:
            self.shared = nn.ModuleList(nn.Linear(d, shared, bias=False) for _ in range(1 + self.glu))
            self.shared_down = nn.Linear(shared, d, bias=False)
        self.shared_gate = nn.Linear(d, 1, bias=False) if values["shared_gate"] else None

    def mlp(self, x: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
        h = F.linear(x, up)
        if self.glu:
            gate, up_half = h.chunk(2, dim=-1)
            h = F.silu(gate) * up_half
        else:
            h = F.gelu(h)
        return F.linear(h, down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = F.linear(x, self.router)
        scores = logits.sigmoid() if self.sigmoid else logits.softmax(dim=-1)
        choice = scores + self.correction if hasattr(self, "correction") else scores
        index = choice.topk(self.top_k, dim=-1).indices
        weights = scores.gather(1, index)
        if self.norm_topk:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        for e in range(self.experts):
            token, slot = torch.where(index == e)
            if token.numel():
                y = self.mlp(x[token], self.up[e], self.down[e]) * weights[token, slot, None]
                out.index_add_(0, token, y)
        if self.shared is not None:
            h = self.shared[0](x)
            h = F.silu(h) * self.shared[1](x) if self.glu else F.gelu(h)
            s = self.shared_down(h)
            if self.shared_gate is not None:
                s = torch.sigmoid(self.shared_gate(x)) * s
            out = out + s
        return out


@builder
def moe(values: dict[str, Any]):
    torch.manual_seed(values["T"] * 31 + values["experts"])
    with torch.no_grad():
        module = MoE(values["d"], values["experts"], values["top_k"], values["d_ff"], values)
    x = torch.randn(values["T"], values["d"], device=CPU)
    return module, [x]


def _row_blocks(s: int, keys: int, exact: bool) -> list[tuple[slice, int]]:
    """(query rows, keys they see): all rows over all keys, or with exact causal counting one row at a
    time over its visible prefix (bottom-right aligned: row i sees keys - s + i + 1 keys)."""
    if exact:
        return [(slice(i, i + 1), keys - s + i + 1) for i in range(s)]
    return [(slice(0, s), keys)]


class LatentAttention(nn.Module):
    """DeepSeek's multi-head latent attention in transformers' layout, plain or weight-absorbed."""

    def __init__(self, v: dict[str, Any], device: torch.device = META):
        super().__init__()
        e, h = v["E"], v["heads"]
        self.heads, self.nope, self.rope, self.v_dim = h, v["qk_nope_head_dim"], v["qk_rope_head_dim"], v["v_head_dim"]
        self.rank, self.q_rank, bias = v["kv_lora_rank"], v["q_lora_rank"], bool(v["bias"])
        self.exact = bool(v["causal"]) and bool(v["exact_causal"])
        self.absorbed = bool(v["absorbed"])
        qk = self.nope + self.rope
        if self.q_rank:
            self.q_a_proj = nn.Linear(e, self.q_rank, bias=bias, device=device)
            self.q_a_layernorm = nn.RMSNorm(self.q_rank, device=device)
            self.q_b_proj = nn.Linear(self.q_rank, h * qk, bias=False, device=device)
        else:
            self.q_proj = nn.Linear(e, h * qk, bias=False, device=device)
        self.kv_a_proj_with_mqa = nn.Linear(e, self.rank + self.rope, bias=bias, device=device)
        self.kv_a_layernorm = nn.RMSNorm(self.rank, device=device)
        self.kv_b_proj = nn.Linear(self.rank, h * (self.nope + self.v_dim), bias=False, device=device)
        self.o_proj = nn.Linear(h * self.v_dim, e, bias=bias, device=device)
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, past_c: torch.Tensor | None = None, past_rot: torch.Tensor | None = None):
        b, s, _ = x.shape
        h = self.heads
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if self.q_rank else self.q_proj(x)
        q = q.view(b, s, h, self.nope + self.rope).transpose(1, 2)
        q_nope, q_rot = q.split([self.nope, self.rope], dim=-1)
        c, k_rot = self.kv_a_proj_with_mqa(x).split([self.rank, self.rope], dim=-1)
        c = self.kv_a_layernorm(c)
        if past_c is not None and past_rot is not None:
            c, k_rot = torch.cat([past_c, c], dim=1), torch.cat([past_rot, k_rot], dim=1)
        self.cache = (c, k_rot)
        keys = c.shape[1]
        c4, rot4 = c[:, None], k_rot[:, None]  # [B, 1, keys, .]: one latent and one rotary key for all heads
        outs = []
        if self.absorbed:
            w = self.kv_b_proj.weight.view(h, self.nope + self.v_dim, self.rank)
            w_uk, w_uv = w[:, : self.nope], w[:, self.nope :]
            q_lat = q_nope @ w_uk  # [B, H, S, rank]
            for rows, end in _row_blocks(s, keys, self.exact):
                scores = q_lat[:, :, rows] @ c4[:, :, :end].transpose(-1, -2)
                scores = scores + q_rot[:, :, rows] @ rot4[:, :, :end].transpose(-1, -2)
                outs.append(scores.softmax(-1) @ c4[:, :, :end])
            out = torch.cat(outs, dim=2) @ w_uv.transpose(-1, -2)  # [B, H, S, v]
        else:
            kv = self.kv_b_proj(c).view(b, keys, h, self.nope + self.v_dim).transpose(1, 2)
            k_nope, value = kv.split([self.nope, self.v_dim], dim=-1)
            key = torch.cat([k_nope, rot4.expand(b, h, keys, self.rope)], dim=-1)
            query = torch.cat([q_nope, q_rot], dim=-1)
            for rows, end in _row_blocks(s, keys, self.exact):
                scores = query[:, :, rows] @ key[:, :, :end].transpose(-1, -2)
                outs.append(scores.softmax(-1) @ value[:, :, :end])
            out = torch.cat(outs, dim=2)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, h * self.v_dim))


@builder
def multi_head_latent_attention(values: dict[str, Any]):
    module = LatentAttention(values)
    b, s, past = values["B"], values["S"], int(values.get("past", 0))
    x = torch.empty(b, s, values["E"], device=META)
    if past == 0:
        return module, [x]
    past_c = torch.empty(b, past, values["kv_lora_rank"], device=META)
    past_rot = torch.empty(b, past, values["qk_rope_head_dim"], device=META)
    return module, [x, past_c, past_rot]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@builder
def rotary(values: dict[str, Any]):
    b, s, d = values["batch"], values["S"], values["D"]
    cos, sin = torch.empty(s, d, device=META), torch.empty(s, d, device=META)
    return (lambda x: x * cos + rotate_half(x) * sin), [torch.empty(b, s, d, device=META)]


@builder
def softcap(values: dict[str, Any]):
    return (lambda x: torch.tanh(x / 30.0) * 30.0), [torch.empty(values["numel"], device=META)]


class RelativePositionBias(nn.Module):
    def __init__(self, buckets: int, heads: int):
        super().__init__()
        self.relative_attention_bias = nn.Embedding(buckets, heads, device=META)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.relative_attention_bias(positions).permute(2, 0, 1).unsqueeze(0)


@builder
def relative_position_bias(values: dict[str, Any]):
    module = RelativePositionBias(values["buckets"], values["heads"])
    return module, [torch.zeros(values["S_q"], values["S_kv"], dtype=torch.long, device=META)]
