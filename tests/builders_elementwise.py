"""Twins of the elementwise, embedding and shape formulas that the ``torch:`` grammar cannot state alone.

- ``embedding``: the ids must be ``torch.long``, not the default float.
- ``upsample_*``: ``nn.Upsample`` takes a text ``mode`` and no ``device`` argument.

Each builder takes the drawn values (plus ``"_args"``, the formula's evaluated ``torch.args``) and
returns ``(callable, input tensors)`` on the meta device.
"""

from __future__ import annotations

from typing import Any

import torch

from .twins import META, builder


def split(n: int) -> tuple[int, int]:
    """``n`` as two dims, smallest factor above 1 first: ``12 -> (2, 6)``, ``7 -> (7, 1)``, ``1 -> (1, 1)``."""
    for d in range(2, n + 1):
        if n % d == 0:
            return d, n // d
    return 1, 1


def _empty(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=META)


@builder
def embedding(values: dict[str, Any]):
    module = torch.nn.Embedding(**values["_args"], device=META)
    return module, [_empty(values["batch"], dtype=torch.long)]


def _upsample(values: dict[str, Any], mode: str, **extra: Any):
    module = torch.nn.Upsample(scale_factor=values["_args"]["scale_factor"], mode=mode, **extra)
    return module, [_empty(values["N"], values["C"], values["H"], values["W"])]


@builder
def upsample_nearest2d(values: dict[str, Any]):
    return _upsample(values, "nearest")


@builder
def upsample_bilinear2d(values: dict[str, Any]):
    return _upsample(values, "bilinear", align_corners=values["_args"]["align_corners"])
