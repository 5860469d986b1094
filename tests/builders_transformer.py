"""Twins of the formulas that vision and language transformers need beside their layers.

- ``prepend_tokens``: a learned ``[1, tokens, D]`` tensor expanded over the batch and concatenated in
  front of the sequence (torchvision ``VisionTransformer``'s ``class_token``, HF ViT's ``cls_token``).
- ``add_learned``: a learned ``[1, *rest]`` tensor added to every sample (ViT's ``pos_embedding``).
- ``flatten_spatial``: ``torch.flatten(x, 2)``, the patch grid to a sequence.

The learned tensors are ``nn.Parameter``s of small ``nn.Module``s, so the twin test counts them with
``sum(p.numel())``. A ``*name`` that the output keeps is one dim (the test compares output shapes with
the formula's, which writes it as one dim); ``flatten_spatial``'s input gets two spatial dims, so the
twin really flattens. Each builder takes the drawn values and returns ``(callable, input tensors)`` on meta.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .builders_elementwise import split
from .twins import META, builder


def _empty(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device=META)


class PrependTokens(nn.Module):
    """torchvision VisionTransformer: ``torch.cat([class_token.expand(n, -1, -1), x], dim=1)``."""

    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(1, tokens, dim, device=META))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tokens.expand(x.shape[0], -1, -1), x], dim=1)


class AddLearned(nn.Module):
    """torchvision's Encoder: ``input + self.pos_embedding`` with a ``[1, *rest]`` parameter."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, *shape, device=META))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


@builder
def prepend_tokens(values: dict[str, Any]):
    module = PrependTokens(values["tokens"], values["D"])
    return module, [_empty(values["N"], values["T"], values["D"])]


@builder
def add_learned(values: dict[str, Any]):
    return AddLearned((values["rest"],)), [_empty(values["N"], values["rest"])]


@builder
def flatten_spatial(values: dict[str, Any]):
    return (lambda x: torch.flatten(x, 2)), [_empty(values["N"], values["C"], *split(values["spatial"]))]
