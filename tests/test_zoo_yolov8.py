"""YOLOv8 n/s/m/l/x (archs/yolov8*.yaml) equal a torch.nn copy of Ultralytics' model exactly.

The reference below is written with torch.nn following Ultralytics' source (ultralytics 8.4,
``ultralytics/cfg/models/v8/yolov8.yaml``, ``nn/tasks.py`` parse_model and DetectionModel._predict_once,
``nn/modules/conv.py`` Conv, ``nn/modules/block.py`` Bottleneck, C2f, SPPF and DFL, ``nn/modules/head.py``
Detect with the v8 ("legacy") class branch, ``utils/tal.py`` make_anchors and dist2bbox); ultralytics is
not a dependency. It was cross-checked once against ultralytics 8.4.190 itself (installed apart, not
kept): for all five scales at 1x3x640x640 and 2x3x320x480, ``DetectionModel('yolov8{s}.yaml').eval()``
and this reference have the same module names and per-module parameter counts, the same
``sum(p.numel())`` (DFL's fixed conv included), buffers, FlopCounterMode FLOPs (per module too), output
shape and the same elementwise counts below.

Built on the meta device and counted with FlopCounterMode on a meta input, symcost's totals must equal
FlopCounterMode's FLOPs (the convolutions, DFL's 1x1 conv included), ``sum(p.numel())``, the buffers
(BatchNorm running statistics) and the output shape [N, 4 + nc, anchors], at 640x640 and at 320x480.
FlopCounterMode counts no elementwise op, so the elements written by torch's silu/sigmoid, add/sub,
mul/div, softmax, batch-norm, max-pool and conv-bias kernels are counted apart and must equal symcost's
elementwise counts: a missing shortcut, activation or decode step fails.

Detect in eval mode (export False) returns (y, preds); y, the decoded [N, 4 + nc, A] tensor, is the
output compared. Anchors and strides are built by make_anchors from the feature sizes and cached on the
module (``self.shape``): a steady-state forward builds none, so the reference runs once before counting
and symcost holds them as ``constant`` tensors (no parameters, no buffers, no cost).

Published numbers (Ultralytics):
- parameters of the unfused model, ``ultralytics/cfg/models/v8/yolov8.yaml`` scales comments and the model
  summary: n 3,157,200; s 11,166,560; m 25,902,640; l 43,691,520; x 68,229,648 (gradients 16 fewer: DFL's
  conv weight, ``requires_grad_(False)``, is a parameter but not trained). After ``model.fuse()`` (each
  BatchNorm folded into its conv: 2C parameters become a C bias) the summary prints 3,151,904;
  11,156,544; 25,886,080; 43,668,288; 68,200,608.
- GFLOPs in the same comments (unfused): 8.9, 28.8, 79.3, 165.7, 258.5; in the docs' table
  (docs.ultralytics.com/models/yolov8, "FLOPs (B)" at 640, fused model): 8.7, 28.6, 78.9, 165.2, 257.8.
  Ultralytics' get_flops is 2 x thop's total, profiled at a stride-sized 32x32 input and scaled by
  (640/32)^2, exact here since every count is linear in H*W at multiples of 32. thop 0.1.1 counts conv
  MACs without bias, 1 per nearest-upsample output (count_upsample), 4 per BatchNorm element (unfused
  only; count_normalization) and nothing for SiLU, max-pool, cat, softmax or the decode. So the docs'
  number is FlopCounterMode's FLOPs + 2 x the upsampled elements, and the comments' adds 8 per BatchNorm
  element: symcost's thop convention, x 2. Both are checked to one decimal, as published. (ultralytics
  8.4 with ultralytics-thop 2.2 counts the upsample as 0: its fused yolov8l is 165.148 GFLOPs, printed
  165.1; the docs' 165.2 needs the upsample's 0.008 GFLOPs. The other nine numbers agree either way.)
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import sympy
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from symcost import cost
from symcost.arch import load_path
from symcost.compile import Result, evaluate, symbolic_totals
from symcost.report import latex_expr
from symcost.shapes import Graph, build

from .torch_reference import torch_counts as measure

ARCHS = Path(__file__).resolve().parent.parent / "archs"
META = torch.device("meta")


# --- ultralytics/nn/modules/conv.py, block.py -----------------------------------------------------


class Conv(nn.Module):
    """conv2d (no bias, padding k//2), BatchNorm2d, SiLU. initialize_weights sets BN eps 1e-3, momentum
    0.03 and SiLU inplace; Ultralytics shares one SiLU instance (Conv.default_act) across all Convs,
    which changes no count."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Concat(nn.Module):
    def __init__(self, dimension: int = 1):
        super().__init__()
        self.d = dimension

    def forward(self, x):
        return torch.cat(x, self.d)


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, k=(3, 3), e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class DFL(nn.Module):
    def __init__(self, c1: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)  # weight arange(c1): fixed
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


# --- ultralytics/utils/tal.py, nn/modules/head.py -------------------------------------------------


def make_anchors(feats, strides, grid_cell_offset=0.5):
    anchor_points, stride_tensor = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        _, _, h, w = feats[i].shape
        sx = torch.arange(end=w, device=device, dtype=dtype) + grid_cell_offset
        sy = torch.arange(end=h, device=device, dtype=dtype) + grid_cell_offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        anchor_points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(anchor_points), torch.cat(stride_tensor)


def dist2bbox(distance, anchor_points, xywh=True, dim=-1):
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        c_xy = (x1y1 + x2y2) / 2
        wh = x2y2 - x1y1
        return torch.cat([c_xy, wh], dim)
    return torch.cat((x1y1, x2y2), dim)


class Detect(nn.Module):
    """Ultralytics Detect with legacy = True (parse_model sets it for v8 configs: cv3 is Conv, Conv,
    Conv2d, not the DWConv branch of YOLO11), end2end False, in eval mode."""

    def __init__(self, nc: int = 80, reg_max: int = 16, ch: tuple = ()):
        super().__init__()
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.stride = [8.0, 16.0, 32.0]  # DetectionModel measures them with a 256x256 forward
        self.shape = None
        c2, c3 = max((16, ch[0] // 4, self.reg_max * 4)), max(ch[0], min(self.nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch
        )
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, self.nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max)

    def forward(self, x):
        bs = x[0].shape[0]
        boxes = torch.cat([self.cv2[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], dim=-1)
        scores = torch.cat([self.cv3[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)], dim=-1)
        shape = x[0].shape
        if self.shape != shape:  # built once per input shape and cached
            self.anchors, self.strides = (a.transpose(0, 1) for a in make_anchors(x, self.stride, 0.5))
            self.shape = shape
        dbox = dist2bbox(self.dfl(boxes), self.anchors.unsqueeze(0), xywh=True, dim=1) * self.strides
        return torch.cat((dbox, scores.sigmoid()), 1)  # Ultralytics returns (y, preds) unless exporting


# --- ultralytics/cfg/models/v8/yolov8.yaml and nn/tasks.py ----------------------------------------

#: [from, repeats, module, args]
YOLOV8 = [
    [-1, 1, Conv, [64, 3, 2]],  # 0-P1/2
    [-1, 1, Conv, [128, 3, 2]],  # 1-P2/4
    [-1, 3, C2f, [128, True]],
    [-1, 1, Conv, [256, 3, 2]],  # 3-P3/8
    [-1, 6, C2f, [256, True]],
    [-1, 1, Conv, [512, 3, 2]],  # 5-P4/16
    [-1, 6, C2f, [512, True]],
    [-1, 1, Conv, [1024, 3, 2]],  # 7-P5/32
    [-1, 3, C2f, [1024, True]],
    [-1, 1, SPPF, [1024, 5]],  # 9
    [-1, 1, nn.Upsample, [None, 2, "nearest"]],
    [[-1, 6], 1, Concat, [1]],
    [-1, 3, C2f, [512]],  # 12
    [-1, 1, nn.Upsample, [None, 2, "nearest"]],
    [[-1, 4], 1, Concat, [1]],
    [-1, 3, C2f, [256]],  # 15 (P3/8)
    [-1, 1, Conv, [256, 3, 2]],
    [[-1, 12], 1, Concat, [1]],
    [-1, 3, C2f, [512]],  # 18 (P4/16)
    [-1, 1, Conv, [512, 3, 2]],
    [[-1, 9], 1, Concat, [1]],
    [-1, 3, C2f, [1024]],  # 21 (P5/32)
    [[15, 18, 21], 1, Detect, ["nc"]],
]

#: scale -> [depth, width, max_channels] (yolov8.yaml)
SCALES = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}


def make_divisible(x: float, divisor: int) -> int:
    """ultralytics/utils/ops.py: the smallest multiple of divisor >= x (not torchvision's rounding)."""
    return math.ceil(x / divisor) * divisor


class DetectionModel(nn.Module):
    def __init__(self, scale: str, nc: int = 80):
        super().__init__()
        depth, width, max_channels = SCALES[scale]
        ch, layers, save = [3], [], []
        for i, (f, n, m, args) in enumerate(YOLOV8):
            args = [nc if a == "nc" else a for a in args]
            n = max(round(n * depth), 1) if n > 1 else n  # depth gain
            if m in (Conv, C2f, SPPF):
                c1, c2 = ch[f], make_divisible(min(args[0], max_channels) * width, 8)
                args = [c1, c2, *args[1:]]
                if m is C2f:
                    args.insert(2, n)  # the repeats go to C2f's n
                    n = 1
            elif m is Concat:
                c2 = sum(ch[x] for x in f)
            elif m is Detect:
                args.extend([16, [ch[x] for x in f]])  # reg_max (the config's default), channels in
            else:
                c2 = ch[f]
            assert n == 1  # every repeated layer of yolov8.yaml is a C2f
            module = m(*args)
            module.i, module.f = i, f
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
            layers.append(module)
            if i == 0:
                ch = []
            ch.append(c2)
        self.model = nn.Sequential(*layers)
        self.save = sorted(save)

    def forward(self, x):  # _predict_once
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


# --- counting -------------------------------------------------------------------------------------


class ElementwiseCounter(TorchDispatchMode):
    """symcost's elementwise categories from the aten ops torch runs: output elements, times the
    category's per-element cost (softmax 3, affine batch norm 4, max pool the window)."""

    def __init__(self):
        super().__init__()
        self.counts = dict.fromkeys(("activation", "add", "mul", "softmax", "norm", "pool", "bias"), 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func)
        first = out[0] if isinstance(out, tuple) else out
        if name in ("aten.silu.default", "aten.silu_.default", "aten.sigmoid.default"):
            self.counts["activation"] += first.numel()
        elif name in ("aten.add.Tensor", "aten.add_.Tensor", "aten.sub.Tensor"):
            self.counts["add"] += first.numel()
        elif name in ("aten.mul.Tensor", "aten.div.Tensor"):
            self.counts["mul"] += first.numel()
        elif name == "aten._softmax.default":
            self.counts["softmax"] += 3 * first.numel()
        elif name in ("aten.native_batch_norm.default", "aten._native_batch_norm_legit_no_training.default"):
            self.counts["norm"] += 4 * first.numel()
        elif name.startswith("aten.max_pool2d"):
            kernel = args[1]
            self.counts["pool"] += first.numel() * kernel[0] * kernel[-1]
        elif name == "aten.convolution.default" and args[2] is not None:
            self.counts["bias"] += first.numel()
        return out


@functools.cache
def graph(arch: str) -> Graph:
    return build(load_path(ARCHS / f"{arch}.yaml"))


@functools.cache
def reference(scale: str) -> nn.Module:
    with META:
        return DetectionModel(scale).eval()


@functools.cache
def torch_counts(scale: str, shape: tuple[int, int, int]) -> tuple[dict, tuple[int, ...], dict]:
    model = reference(scale)
    n, h, w = shape
    x = torch.empty(n, 3, h, w, device=META)
    model(x)  # builds and caches the anchors for this shape, as Detect does on its first call
    return measure(model, x, counter=ElementwiseCounter())


def ours(scale: str, shape: tuple[int, int, int]) -> Result:
    n, h, w = shape
    return evaluate(graph(f"yolov8{scale}"), {"N": n, "H": h, "W": w})


SHAPES = [(1, 640, 640), (2, 320, 480)]
PAIRS = [(scale, shape) for scale in SCALES for shape in SHAPES]


@pytest.mark.parametrize(("scale", "shape"), PAIRS, ids=[f"yolov8{s}-{'x'.join(map(str, sh))}" for s, sh in PAIRS])
def test_yolov8_equals_torch(scale, shape):
    totals, out_shape, _ = torch_counts(scale, shape)
    r = ours(scale, shape)
    got = {key: r.totals.get(key, 0) for key in totals}
    assert got == totals, f"yolov8{scale} at N, H, W = {shape}"
    n, h, w = shape
    anchors = sum((h // s) * (w // s) for s in (8, 16, 32))
    assert list(r.outputs.values()) == [out_shape] == [(n, 84, anchors)]


@pytest.mark.parametrize("scale", list(SCALES))
def test_layers_name_torch_modules(scale):
    """Every layer with parameters or FLOPs is the Ultralytics module of the same name, same counts."""
    _, _, per_module = torch_counts(scale, SHAPES[0])
    model = reference(scale)
    modules = dict(model.named_modules())
    checked = 0
    for node in ours(scale, SHAPES[0]).nodes:
        if not (node.values["params"] or node.values["flops"]):
            continue
        assert node.count == 1, node.path
        assert node.path in modules, f"yolov8{scale}: no module named {node.path}"
        assert sum(p.numel() for p in modules[node.path].parameters()) == node.values["params"], node.path
        assert per_module.get(f"DetectionModel.{node.path}", 0) == node.values["flops"], node.path
        checked += 1
    assert checked == sum(1 for m in modules.values() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)))


#: Ultralytics' published numbers: parameters (unfused, fused), GFLOPs unfused (yolov8.yaml scales
#: comments) and fused (docs.ultralytics.com/models/yolov8)
PUBLISHED = {
    "n": (3_157_200, 3_151_904, 8.9, 8.7),
    "s": (11_166_560, 11_156_544, 28.8, 28.6),
    "m": (25_902_640, 25_886_080, 79.3, 78.9),
    "l": (43_691_520, 43_668_288, 165.7, 165.2),
    "x": (68_229_648, 68_200_608, 258.5, 257.8),
}


@pytest.mark.parametrize("scale", list(PUBLISHED))
def test_published_numbers(scale):
    params, fused_params, gflops_unfused, gflops_fused = PUBLISHED[scale]
    g = graph(f"yolov8{scale}")
    r = evaluate(g)
    assert (r.values["N"], r.values["H"], r.values["W"]) == (1, 640, 640), "the file's defaults are the published shape"
    totals, _, _ = torch_counts(scale, (1, 640, 640))
    assert r.totals["params"] == totals["params"] == params
    model = reference(scale)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == params - 16  # "gradients"
    # fusing keeps each conv and turns its BatchNorm's weight and bias (2C) into a conv bias (C)
    channels = sum(node.values["params"] // 2 for node in r.nodes if node.op == "batchnorm2d")
    assert r.totals["params"] - channels == fused_params
    # thop (Ultralytics' get_flops): 2 x (conv MACs + upsample outputs [+ 4 per BatchNorm element unfused])
    upsample = sum(math.prod(node.output) for node in r.nodes if node.op == "upsample_nearest2d")
    assert round((r.totals["flops"] + 2 * upsample) / 1e9, 1) == gflops_fused
    thop = evaluate(g, convention=cost.preset("thop")).totals["flops"]
    assert thop == r.totals["macs"] + upsample + r.totals["elementwise.norm"]
    assert round(2 * thop / 1e9, 1) == gflops_unfused


def test_scales_are_one_family():
    """Each scale is the family file with its scale's multipliers re-defaulted, nothing else."""
    family = load_path(ARCHS / "yolov8.yaml")
    for scale, (depth, width, max_channels) in SCALES.items():
        arch = load_path(ARCHS / f"yolov8{scale}.yaml")
        assert (arch.family, arch.layers, arch.blocks) == (family.family, family.layers, family.blocks)
        changed = {k: v.default for k, v in arch.variables.items() if v.default != family.variables[k].default}
        expected = {"depth_pct": round(depth * 100), "width_pct": round(width * 100), "max_channels": max_channels}
        assert changed == {k: v for k, v in expected.items() if v != family.variables[k].default}


def test_closed_forms_in_the_width():
    """With width_pct, max_channels, N, H and W free, the totals are closed forms holding squares of the
    scaled channels (ceil_div(...)**2): they print, LaTeX included (eval --symbolic), and give yolov8s's
    numbers at its width."""
    closed = symbolic_totals(graph("yolov8n"), {"nc": 80, "reg_max": 16})
    text = latex_expr(closed["params"])
    assert r"\operatorname{ceil\_div}" in text and r"\right)^{2}" in text
    names = {s.name: s for s in closed["flops"].free_symbols}
    at_s = {names["width_pct"]: 50, names["max_channels"]: 1024, names["N"]: 1, names["H"]: 640, names["W"]: 640}
    assert closed["params"].xreplace(at_s) == PUBLISHED["s"][0]
    assert closed["flops"].xreplace(at_s) == sympy.Integer(torch_counts("s", (1, 640, 640))[0]["flops"])
