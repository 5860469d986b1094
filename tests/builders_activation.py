"""Twins of the activation formulas that the ``torch:`` grammar cannot state alone.

- ``gelu_tanh``: ``F.gelu`` takes the text argument ``approximate='tanh'``.
- ``quick_gelu``: torch has no function for it; CLIP and transformers' ``QuickGELUActivation``
  write ``x * torch.sigmoid(1.702 * x)``, a float constant.
- ``softmax2d``: ``nn.Softmax2d`` takes no ``device`` argument.

Each builder takes the drawn values (plus ``"_args"``, the formula's evaluated ``torch.args``) and
returns ``(callable, input tensors)`` on the meta device.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .twins import META, builder


@builder
def gelu_tanh(values: dict[str, Any]):
    return (lambda x: F.gelu(x, approximate="tanh")), [torch.empty(values["numel"], device=META)]


@builder
def quick_gelu(values: dict[str, Any]):
    return (lambda x: x * torch.sigmoid(1.702 * x)), [torch.empty(values["numel"], device=META)]


@builder
def softmax2d(values: dict[str, Any]):
    shape = (values["N"], values["C"], values["H"], values["W"])
    return torch.nn.Softmax2d(), [torch.empty(shape, device=META)]
