"""Torch twins of the attention and recurrent formulas (``sdpa``, ``multi_head_attention``),
built on the ``meta`` device, where FlopCounterMode counts SDPA as its two bmms.

Causal masks follow the formulas' convention, aligned bottom-right (query ``i`` of ``S_q`` sees the
``S_kv - S_q + i + 1`` keys up to it, :func:`torch.nn.attention.bias.causal_lower_right`'s mask).
FlopCounterMode counts the full ``S_q x S_kv`` square whatever the mask, so with ``exact_causal``
the twin computes causal attention as one SDPA call per query row over its visible prefix of keys
(the decode steps of a KV cache): its count is then exactly the visible pairs.

With ``kv_cache`` and ``past > 0`` the attention layer's twin takes the cached keys and values of the
``past`` earlier tokens as two more inputs, ``[B, kv_heads, past, head_dim]`` each, and concatenates
them in front of the new tokens' projected keys and values (a copy: FlopCounterMode counts it 0), so
the ``S_q`` queries attend over ``past + S_kv`` keys with the causal mask still aligned bottom-right.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .twins import META, builder


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    exact_causal: bool,
    window: int = 0,
    first_position: int | None = None,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v over [B, H, S, D] tensors, grouped-query when k has fewer heads.

    With a sliding ``window`` and exact counting, query row i (at absolute position
    ``first_position + i``) sees only the keys of the last ``window`` positions up to it; ``k`` and
    ``v`` then hold the kept cache and the new tokens, the last key at the last query's position."""
    gqa = q.shape[1] != k.shape[1]
    s_q, s_kv = q.shape[2], k.shape[2]
    if causal and exact_causal:
        # Row i sees keys [0, S_kv - S_q + i]: the i-th decode step over a cache of that length; with a window,
        # only the last `window` of them.
        rows = []
        for i in range(s_q):
            end = s_kv - s_q + i + 1
            start = max(0, end - window) if window else 0
            rows.append(
                F.scaled_dot_product_attention(
                    q[:, :, i : i + 1], k[:, :, start:end], v[:, :, start:end], enable_gqa=gqa
                )
            )
        return torch.cat(rows, dim=2)
    if causal and s_q <= s_kv:
        # causal_lower_right's mask, materialized: its CausalBias subclass cannot be created under
        # FlopCounterMode's dispatch mode.
        mask = torch.ones(s_q, s_kv, dtype=torch.bool, device=q.device).tril(s_kv - s_q)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
    # Causal with S_q > S_kv has no bottom-right meaning (early queries would see no key): torch's
    # top-left mask stands in; the full-square count does not depend on where the mask sits.
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)


@builder
def sdpa(values: dict[str, Any]):
    b, h_q, h_kv, s_q, s_kv, d, d_v = (values[n] for n in ("B", "H_q", "H_kv", "S_q", "S_kv", "D", "D_v"))
    q = torch.empty(b, h_q, s_q, d, device=META)
    k = torch.empty(b, h_kv, s_kv, d, device=META)
    v = torch.empty(b, h_kv, s_kv, d_v, device=META)
    causal, exact = bool(values["causal"]), bool(values["exact_causal"])
    return (lambda q, k, v: attend(q, k, v, causal, exact)), [q, k, v]


class MultiHeadAttention(nn.Module):
    """An attention layer from four nn.Linear projections and SDPA (grouped-query when kv_heads < heads)."""

    def __init__(
        self,
        embed: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        bias: bool = True,
        causal: bool = False,
        exact_causal: bool = False,
        kv_cache: bool = False,
        device: torch.device = META,
        biases: tuple[bool, bool, bool, bool] | None = None,
        window: int = 0,
    ):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.causal, self.exact_causal, self.kv_cache = causal, exact_causal, kv_cache
        # with kv_cache, the keys and values of every token so far after the last call (not a buffer)
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.window = window
        bias_q, bias_k, bias_v, bias_o = biases if biases is not None else (bias,) * 4
        self.q_proj = nn.Linear(embed, heads * head_dim, bias=bias_q, device=device)
        self.k_proj = nn.Linear(embed, kv_heads * head_dim, bias=bias_k, device=device)
        self.v_proj = nn.Linear(embed, kv_heads * head_dim, bias=bias_v, device=device)
        self.out_proj = nn.Linear(heads * head_dim, embed, bias=bias_o, device=device)

    def _split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x_q: torch.Tensor,
        x_kv: torch.Tensor,
        past_k: torch.Tensor | None = None,
        past_v: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """y for queries x_q over x_kv's new tokens, after the cached ``past_k``/``past_v`` (if given)."""
        q = self._split(self.q_proj(x_q), self.heads)
        k = self._split(self.k_proj(x_kv), self.kv_heads)
        v = self._split(self.v_proj(x_kv), self.kv_heads)
        if (past_k is None) != (past_v is None):
            raise ValueError("give both the cached keys and the cached values, or neither")
        if past_k is not None and not self.kv_cache:
            raise ValueError("cached keys and values need kv_cache=True")
        if past_k is not None and past_v is not None:
            # the cached tokens come first: the new keys are the last S_kv of past + S_kv
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        if self.kv_cache:
            # a sliding-window cache keeps the last window - 1 tokens (transformers' DynamicSlidingWindowLayer)
            self.cache = (k[:, :, 1 - self.window :], v[:, :, 1 - self.window :]) if self.window > 1 else (k, v)
            if self.window == 1:
                self.cache = (k[:, :, :0], v[:, :, :0])
        o = attend(q, k, v, self.causal, self.exact_causal, self.window)
        b, _, s_q, _ = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(b, s_q, self.heads * self.head_dim))


@builder
def multi_head_attention(values: dict[str, Any]):
    module = MultiHeadAttention(
        values["E"],
        values["heads"],
        values["kv_heads"],
        values["head_dim"],
        bias=bool(values["bias"]),
        causal=bool(values["causal"]),
        exact_causal=bool(values["exact_causal"]),
        kv_cache=bool(values.get("kv_cache", False)),
        biases=tuple(bool(values.get(f"bias_{p}", values["bias"])) for p in "qkvo"),
        window=int(values.get("window", 0)),
    )
    b, e, past = values["B"], values["E"], int(values.get("past", 0))
    if module.window:
        past = min(past, module.window - 1)  # the cached tokens a sliding-window layer still holds
    x_q = torch.empty(b, values["S_q"], e, device=META)
    x_kv = torch.empty(b, values["S_kv"], e, device=META)
    if past == 0:
        return module, [x_q, x_kv]
    # the cached keys and values of the past tokens, per KV head
    cached = [torch.empty(b, values["kv_heads"], past, values["head_dim"], device=META) for _ in range(2)]
    return module, [x_q, x_kv, *cached]


@builder
def kv_cache(values: dict[str, Any]):
    """transformers' cache update on meta: a prompt of ``past`` tokens was cached (a sliding-window
    layer kept ``full[:, :, -window + 1:]`` of it, as DynamicSlidingWindowLayer.update does), and the
    new tokens are concatenated after it; the output is what the attention reads."""
    b, h, d, past, window = (int(values[n]) for n in ("B", "H", "D", "past", "window"))
    cached = torch.empty(b, h, past, d, device=META)
    if window:
        cached = cached[:, :, -window + 1 :, :]
    return (lambda new: torch.cat([cached, new], dim=-2)), [torch.empty(b, h, values["S"], d, device=META)]
