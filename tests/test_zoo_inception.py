"""archs/inception_v3.yaml equals torchvision's Inception3 exactly.

The reference is written here with torch.nn following torchvision/models/inception.py (Inception3,
InceptionA-E, InceptionAux, BasicConv2d, and inception_v3's handling of the weights: transform_input=True,
aux_logits=True kept, so the model holds AuxLogits, whose forward runs only in training mode). torchvision is
not a dependency. The reference is built on the meta device, in eval mode, and counted with FlopCounterMode
on a meta input at the weights' 299x299 and at another size: symcost's FLOPs, params, buffers and output
shape must equal torch's, and the elements torch's add, mul and relu kernels write must equal symcost's
elementwise 'add', 'mul' and 'activation' counts (the input transform's affine, every BasicConv2d's F.relu).
Every layer with parameters or FLOPs names the torch module (or, for AuxLogits' stored tensors, the torch
parameter) of the same name with the same counts. The published numbers are torchvision's weights meta.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from symcost import cost
from symcost.arch import load_path
from symcost.compile import Result, evaluate
from symcost.shapes import Graph, build

from .test_archs_cnn import _copies
from .test_peer_conventions import _fvcore, _one_thread
from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- torchvision/models/inception.py ------------------------------------------------------------


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(branch7x7x3))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionAux(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
        self.conv1 = BasicConv2d(128, 768, kernel_size=5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class Inception3(nn.Module):
    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False):
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits: nn.Module | None = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=0.5)
        self.fc = nn.Linear(2048, num_classes)

    def _transform_input(self, x):
        if self.transform_input:
            x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
            x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
            x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
            x = torch.cat((x_ch0, x_ch1, x_ch2), 1)
        return x

    def forward(self, x):
        x = self._transform_input(x)
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x)))))
        aux = self.AuxLogits(x) if self.AuxLogits is not None and self.training else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        x = self.fc(torch.flatten(self.dropout(self.avgpool(x)), 1))
        return (x, aux) if self.training and self.aux_logits else x


# --- the cases -----------------------------------------------------------------------------------

#: inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1): transform_input=True, aux_logits=True (the default kept)
WEIGHTS_SETTINGS = {"aux_logits": 1, "transform_input": 1}
#: the settings checked: the weights' (the file's defaults), and the builder without the aux head or the transform
SETTINGS = [WEIGHTS_SETTINGS, {"aux_logits": 0, "transform_input": 0}]
#: the first shape is the weights' crop size (the published numbers), the second another size
SHAPES = [(1, 299, 299), (2, 320, 256)]

#: torchvision/models/inception.py, Inception_V3_Weights.IMAGENET1K_V1 meta: num_params, _ops (GMACs) at 299x299
PUBLISHED = (27_161_264, 5.713)


class ElementwiseCounter(TorchDispatchMode):
    """Output elements of the aten ops behind symcost's elementwise 'add', 'mul' and 'activation' counts."""

    CATEGORIES = {
        "aten.add.Tensor": "add",  # the input transform's shift
        "aten.mul.Tensor": "mul",  # the input transform's scale
        "aten.relu.default": "activation",
        "aten.relu_.default": "activation",  # BasicConv2d: F.relu(x, inplace=True)
    }

    def __init__(self):
        super().__init__()
        self.counts = {"add": 0, "mul": 0, "activation": 0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        category = self.CATEGORIES.get(str(func))
        if category is not None:
            self.counts[category] += out.numel()
        return out


def _key(settings: dict[str, int]) -> tuple[int, int]:
    return settings["aux_logits"], settings["transform_input"]


@functools.cache
def graph(key: tuple[int, int]) -> Graph:
    aux_logits, transform_input = key
    return build(load_path(ARCHS / "inception_v3.yaml"), {"aux_logits": aux_logits, "transform_input": transform_input})


@functools.cache
def reference(key: tuple[int, int]) -> nn.Module:
    aux_logits, transform_input = key
    with META:
        return Inception3(aux_logits=bool(aux_logits), transform_input=bool(transform_input)).eval()


@functools.cache
def torch_counts(key: tuple[int, int], shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    n, h, w = shape
    return measure(reference(key), torch.empty(n, 3, h, w, device=META), counter=ElementwiseCounter())


@functools.cache
def ours(key: tuple[int, int], shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    aux_logits, transform_input = key
    values = {"N": n, "H": h, "W": w, "aux_logits": aux_logits, "transform_input": transform_input}
    return evaluate(graph(key), values)


PAIRS = [(_key(s), shape) for s in SETTINGS for shape in SHAPES]


@pytest.mark.parametrize(
    ("key", "shape"), PAIRS, ids=[f"aux{k[0]}-transform{k[1]}-{'x'.join(map(str, s))}" for k, s in PAIRS]
)
def test_inception_v3_equals_torch(key, shape):
    totals, out_shape, _ = torch_counts(key, shape)
    r = ours(key, shape)
    got = {name: r.totals.get(name, 0) for name in totals}
    assert got == totals, f"inception_v3 (aux_logits, transform_input) = {key} at N, H, W = {shape}"
    assert list(r.outputs.values()) == [out_shape]


def test_layers_name_torch_modules():
    """Every layer with parameters or FLOPs is the torch module of the same name with the same counts; the
    stored AuxLogits tensors are the torch parameters and buffers of the same names and sizes."""
    key = _key(WEIGHTS_SETTINGS)
    _, _, per_module = torch_counts(key, SHAPES[0])
    model = reference(key)
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    checked, stored = 0, set()
    for node in ours(key, SHAPES[0]).nodes:
        if node.op in ("parameter", "buffer"):
            tensor = (parameters if node.op == "parameter" else buffers)[node.path]
            assert tensor.numel() == node.values["params"] + node.values["buffers"], node.path
            stored.add(node.path)
            continue
        if not (node.values["params"] or node.values["flops"]):
            continue
        for path in _copies(node.path, node.count):
            assert path in modules, f"no torch module named {path}"
            module = modules[path]
            assert sum(p.numel() for p in module.parameters()) * node.count == node.values["params"], path
            assert per_module.get(f"Inception3.{path}", 0) * node.count == node.values["flops"], path
            checked += 1
    # every conv, BN and linear outside AuxLogits is a layer; every AuxLogits tensor is a stored tensor
    layers = [m for name, m in modules.items() if not name.startswith("AuxLogits")]
    assert checked == sum(1 for m in layers if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)))
    assert stored == {name for name in [*parameters, *buffers] if name.startswith("AuxLogits.")}


def test_published_numbers():
    """torchvision's num_params exactly, and its _ops (GMACs) = FLOPs / 2e9 rounded to 3 decimals, at 299."""
    params, gmacs = PUBLISHED
    key = _key(WEIGHTS_SETTINGS)
    r = evaluate(graph(key))
    assert (r.values["N"], r.values["H"], r.values["W"]) == SHAPES[0], "the file's defaults are the published shape"
    assert (r.values["aux_logits"], r.values["transform_input"]) == key, "the file's defaults are the weights'"
    assert r.totals["params"] == params
    assert round(r.totals["flops"] / 2e9, 3) == gmacs
    totals, _, _ = torch_counts(key, SHAPES[0])
    assert totals["params"] == params
    assert round(totals["flops"] / 2e9, 3) == gmacs


def test_aux_head_is_held_not_run():
    """The aux head's 3,326,696 parameters count in num_params but none of its work runs at inference:
    conv0 768*128 + 2*128 = 98,560; conv1 128*768*5*5 + 2*768 = 2,459,136; fc 768*1000 + 1000 = 769,000; and
    each BN's running_mean, running_var and num_batches_tracked as buffers, 2*128 + 1 and 2*768 + 1."""
    shape = SHAPES[0]
    with_aux, without = ours((1, 1), shape), ours((0, 0), shape)  # the input transform adds no params or FLOPs
    assert with_aux.totals["params"] - without.totals["params"] == 98_560 + 2_459_136 + 769_000 == 3_326_696
    assert with_aux.totals["buffers"] - without.totals["buffers"] == (2 * 128 + 1) + (2 * 768 + 1)
    assert with_aux.totals["flops"] == without.totals["flops"]


def test_fvcore_at_299():
    """``--convention fvcore`` prints what fvcore 0.1.5 counts on the torch reference at 1x3x299x299 (on CPU with
    zeroed weights, as tests/test_peer_conventions.py runs it): its jit trace sees the functional pools and ReLUs
    that module hooks miss, and counts none of them, as the preset does."""
    cpu = copy.deepcopy(reference(_key(WEIGHTS_SETTINGS))).to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*cpu.parameters(), *cpu.buffers()]:
            tensor.zero_()
    with _one_thread():
        flops = _fvcore(cpu.eval(), torch.zeros(1, 3, 299, 299))[0]
    assert evaluate(graph(_key(WEIGHTS_SETTINGS)), {}, cost.preset("fvcore")).totals["flops"] == flops
