"""Twins of the further norm, pooling, interpolation, padding and dropout formulas that the ``torch:``
grammar cannot state alone.

- ``layernorm_channels_first``: torchvision's ``LayerNorm2d`` (``torchvision.models.convnext``), an
  ``nn.LayerNorm`` subclass that permutes to channels-last and back; torchvision is not a dependency,
  so :class:`LayerNorm2d` restates its forward.
- ``localresponsenorm``, pooling, padding: these modules take no ``device`` argument (and the padding
  modules a text-free but positional ``value``), so they are built without one; the input is on meta.
- ``lp_pool*``: ``norm_type`` is a float the grammar cannot state; 2 is used (no count depends on it).
- ``max_unpool2d``: the indices input is ``int64``.
- ``upsample_*``, ``interpolate_*``: ``nn.Upsample`` takes a text ``mode``.
- ``stochastic_depth``: torchvision's ``stochastic_depth`` function, restated in :func:`stochastic_depth`.

Each builder takes the drawn values (plus ``"_args"``, the formula's evaluated ``torch.args``) and
returns ``(callable, input tensors)`` on the meta device. A ``*spatial`` dim is fed as one dim, as the
formula's output shape states it, and :class:`AsMap` views it as two (``split``) around the layer, so
that the layer itself runs on a 4-dim map.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .twins import META, builder

# isort: split
# .twins first: importing it loads every builders_*.py, builders_elementwise included, so that a test that imports
# this module before .twins (test_peer_conventions, for LayerNorm2d) finds builders_elementwise complete.
from .builders_elementwise import split

SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _empty(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=META)


def _map(values: dict[str, Any], dims: int) -> torch.Tensor:
    """The ``[N, C, *spatial]`` input of a formula with explicit spatial symbols."""
    return _empty(values["N"], values["C"], *(values[s] for s in SPATIAL[dims]))


class AsMap(nn.Module):
    """Run ``layer`` on ``[N, C, a, b]`` (``a*b = spatial``, ``split``) for an ``[N, C, spatial]`` input."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, spatial = x.shape
        return self.layer(x.view(n, c, *split(spatial))).flatten(2)


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: a LayerNorm over C of an [N, C, H, W] map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """torchvision.ops.stochastic_depth: a residual branch dropped per sample ("row") or for the batch."""
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: :func:`stochastic_depth` with the module's training flag."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)


# --- normalization ---------------------------------------------------------------------------------


@builder
def layernorm_channels_first_twin(values: dict[str, Any]):
    module = AsMap(LayerNorm2d(**values["_args"], device=META))
    return module, [_empty(values["N"], values["C"], values["spatial"])]


@builder
def localresponsenorm_twin(values: dict[str, Any]):
    module = AsMap(nn.LocalResponseNorm(**values["_args"]))
    return module, [_empty(values["N"], values["C"], values["spatial"])]


# --- pooling ---------------------------------------------------------------------------------------


def _pool(module_name: str, dims: int, values: dict[str, Any], *positional: Any):
    return getattr(nn, module_name)(*positional, **values["_args"]), [_map(values, dims)]


@builder
def adaptive_max_pool1d_twin(values: dict[str, Any]):
    return _pool("AdaptiveMaxPool1d", 1, values)


@builder
def adaptive_max_pool3d_twin(values: dict[str, Any]):
    return _pool("AdaptiveMaxPool3d", 3, values)


@builder
def lp_pool1d_twin(values: dict[str, Any]):
    return _pool("LPPool1d", 1, values, 2)


@builder
def lp_pool2d_twin(values: dict[str, Any]):
    return _pool("LPPool2d", 2, values, 2)


@builder
def lp_pool3d_twin(values: dict[str, Any]):
    return _pool("LPPool3d", 3, values, 2)


@builder
def fractional_max_pool2d_twin(values: dict[str, Any]):
    return _pool("FractionalMaxPool2d", 2, values)


@builder
def max_unpool2d_twin(values: dict[str, Any]):
    module, [x] = _pool("MaxUnpool2d", 2, values)
    return module, [x, torch.zeros(x.shape, dtype=torch.long, device=META)]


# --- interpolation ---------------------------------------------------------------------------------


def _upsample(values: dict[str, Any], dims: int, mode: str):
    return nn.Upsample(**values["_args"], mode=mode), [_map(values, dims)]


@builder
def upsample_nearest1d(values: dict[str, Any]):
    return _upsample(values, 1, "nearest")


@builder
def upsample_nearest3d(values: dict[str, Any]):
    return _upsample(values, 3, "nearest")


@builder
def upsample_linear1d(values: dict[str, Any]):
    return _upsample(values, 1, "linear")


@builder
def upsample_bicubic2d(values: dict[str, Any]):
    return _upsample(values, 2, "bicubic")


@builder
def upsample_trilinear3d(values: dict[str, Any]):
    return _upsample(values, 3, "trilinear")


@builder
def interpolate_nearest2d_size(values: dict[str, Any]):
    return _upsample(values, 2, "nearest")


@builder
def interpolate_bilinear2d_size(values: dict[str, Any]):
    return _upsample(values, 2, "bilinear")


@builder
def interpolate_bicubic2d_size(values: dict[str, Any]):
    return _upsample(values, 2, "bicubic")


# --- padding ---------------------------------------------------------------------------------------


def _pad(module_name: str, dims: int, values: dict[str, Any], *value: float):
    return getattr(nn, module_name)(values["_args"]["padding"], *value), [_map(values, dims)]


@builder
def pad_constant1d(values: dict[str, Any]):
    return _pad("ConstantPad1d", 1, values, 0.0)


@builder
def pad_constant2d(values: dict[str, Any]):
    return _pad("ConstantPad2d", 2, values, 0.0)


@builder
def pad_constant3d(values: dict[str, Any]):
    return _pad("ConstantPad3d", 3, values, 0.0)


@builder
def pad_reflect1d(values: dict[str, Any]):
    return _pad("ReflectionPad1d", 1, values)


@builder
def pad_reflect2d(values: dict[str, Any]):
    return _pad("ReflectionPad2d", 2, values)


@builder
def pad_reflect3d(values: dict[str, Any]):
    return _pad("ReflectionPad3d", 3, values)


@builder
def pad_replicate1d(values: dict[str, Any]):
    return _pad("ReplicationPad1d", 1, values)


@builder
def pad_replicate2d(values: dict[str, Any]):
    return _pad("ReplicationPad2d", 2, values)


@builder
def pad_replicate3d(values: dict[str, Any]):
    return _pad("ReplicationPad3d", 3, values)


@builder
def pad_circular1d(values: dict[str, Any]):
    return _pad("CircularPad1d", 1, values)


@builder
def pad_circular2d(values: dict[str, Any]):
    return _pad("CircularPad2d", 2, values)


@builder
def pad_circular3d(values: dict[str, Any]):
    return _pad("CircularPad3d", 3, values)


# --- dropout-like ----------------------------------------------------------------------------------


@builder
def stochastic_depth_twin(values: dict[str, Any]):
    args = values["_args"]
    module = StochasticDepth(0.2, "row" if args["row"] else "batch").train(args["training"])
    return module, [_empty(values["N"], values["rest"])]
