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

from .twins import builder

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
