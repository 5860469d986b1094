"""Stable Diffusion 1.5's U-Net (archs/sd15_unet.yaml) equals diffusers' UNet2DConditionModel exactly.

The reference is diffusers' own UNet2DConditionModel built from SD 1.5's unet/config.json on the meta device (no
weights, no hub access) and counted with FlopCounterMode on meta inputs; F.scaled_dot_product_attention runs its
math path there and is counted as its two bmms. Params, buffers, FLOPs, the output shape and the elements written
by adds, activations (SiLU, GELU) and multiplies/divides must equal symcost's, at 1x4x64x64 latents (512x512
images) and at 2x4x32x48, with 77 text tokens; and every diffusers module's parameters and FLOPs (its
submodules included) must equal the sum over symcost's layers named under it. Published: the SD 1.5 UNet has
859,520,964 parameters.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build
from tests.test_archs_cnn import ARCHS, META

diffusers = pytest.importorskip("diffusers")

#: runwayml/stable-diffusion-v1-5 unet/config.json (the keys that differ from diffusers' defaults, and the widths)
SD15_CONFIG = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}
#: the SD 1.5 UNet checkpoint's parameter count
PUBLISHED_PARAMS = 859_520_964
#: (N, H, W, T): the published size (512x512 images, 64x64 latents) and another, both divisible by 8
SHAPES = [(1, 64, 64, 77), (2, 32, 48, 77)]
#: FlopCounterMode on UNet2DConditionModel(**SD15_CONFIG) (diffusers 0.42.1, torch 2.13.0) at SHAPES[0]:
#: conv 443,946,106,880 + addmm 179,152,486,400 + mm 54,122,577,920 + bmm (attention) 126,052,270,080
REFERENCE_FLOPS = 803_273_441_280
#: get_timestep_embedding builds its frequency table with -ln(10000) * arange(160) and a division by 160 (2 x 160
#: elements, a mul and a div); symcost's `constant` does not count the ops that build it.
FREQ_TABLE_OPS = 2 * 160


class ElementwiseCounter(TorchDispatchMode):
    """Output elements of the aten ops behind symcost's elementwise 'add', 'activation' and 'mul' counts."""

    CATEGORIES = {
        "aten.add.Tensor": "add",
        "aten.silu.default": "activation",
        "aten.gelu.default": "activation",
        "aten.mul.Tensor": "mul",
        "aten.div.Tensor": "mul",
    }

    def __init__(self):
        super().__init__()
        self.counts = {"add": 0, "activation": 0, "mul": 0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        category = self.CATEGORIES.get(str(func))
        if category is not None:
            self.counts[category] += out.numel()
        return out


@functools.cache
def graph() -> Graph:
    return build(load_path(ARCHS / "sd15_unet.yaml"))


@functools.cache
def reference() -> torch.nn.Module:
    with META:
        return diffusers.UNet2DConditionModel(**SD15_CONFIG).eval()


@functools.cache
def torch_counts(shape: tuple[int, int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    model = reference()
    n, h, w, t = shape
    sample = torch.empty(n, 4, h, w, device=META)
    timestep = torch.empty(n, device=META)
    text = torch.empty(n, t, 768, device=META)
    with FlopCounterMode(display=False) as counter, ElementwiseCounter() as elementwise:
        y = model(sample, timestep, text).sample
    totals = {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": counter.get_total_flops(),
        **{f"elementwise.{k}": v for k, v in elementwise.counts.items()},
    }
    totals["elementwise.mul"] -= FREQ_TABLE_OPS
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return totals, tuple(y.shape), per_module


@functools.cache
def ours(shape: tuple[int, int, int, int]) -> Result:
    n, h, w, t = shape
    return evaluate(graph(), {"N": n, "H": h, "W": w, "T": t})


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_sd15_unet_equals_diffusers(shape):
    totals, out_shape, _ = torch_counts(shape)
    r = ours(shape)
    got = {key: r.totals.get(key, 0) for key in totals}
    # F.scaled_dot_product_attention's math path scales q and k (aten.mul.Scalar), where symcost's sdpa counts one
    # multiply per score under 'mul': compare the multiplies outside attention.
    got["elementwise.mul"] -= sum(node.values["elementwise.mul"] for node in r.nodes if node.op == "sdpa")
    assert got == totals
    assert list(r.outputs.values()) == [out_shape]


def test_sd15_unet_modules_match_diffusers():
    """Each diffusers module's params and FLOPs (submodules included) are those of symcost's layers under its name."""
    shape = SHAPES[0]
    _, _, per_module = torch_counts(shape)
    nodes = ours(shape).nodes
    assert all(node.count == 1 for node in nodes)
    checked = 0
    for name, module in reference().named_modules():
        if not name or isinstance(module, torch.nn.ModuleList):  # containers are never called: no FLOPs of their own
            continue
        under = [node for node in nodes if node.path == name or node.path.startswith(name + ".")]
        params = sum(p.numel() for p in module.parameters())
        flops = per_module.get(f"UNet2DConditionModel.{name}", 0)
        assert sum(node.values["params"] for node in under) == params, name
        assert sum(node.values["flops"] for node in under) == flops, name
        checked += bool(params or flops)
    assert checked > 500
    # and every symcost layer with parameters or FLOPs is a diffusers module, or SDPA inside an Attention
    modules = dict(reference().named_modules())
    for node in nodes:
        if node.values["params"] or node.values["flops"]:
            assert node.path in modules or node.op == "sdpa", node.path


def test_sd15_unet_published_numbers():
    r = ours(SHAPES[0])
    assert r.totals["params"] == PUBLISHED_PARAMS == torch_counts(SHAPES[0])[0]["params"]
    assert r.totals["flops"] == REFERENCE_FLOPS == torch_counts(SHAPES[0])[0]["flops"]
    assert (r.values["N"], r.values["H"], r.values["W"], r.values["T"]) == SHAPES[0], "the defaults are SD 1.5's"
