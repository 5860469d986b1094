"""The DenseNet family (121, 161, 169, 201): one parametric file and three extends files, equal to torch.

The reference below is written with torch.nn following torchvision/models/densenet.py (_DenseLayer, _DenseBlock,
_Transition, DenseNet and the four builders' growth_rate, block_config, num_init_features), with its module names
and forward: torch.cat of the whole feature list in every dense layer (bn_function) and at every block's end. A
DenseNet written as a running concat (one cat per layer, of the previous cat and the new features) has the same
params and FLOPs but fails the copy counts. tests/zoo_harness.py says what is compared (params, buffers, FLOPs,
output shape, elementwise and copy counts, module names, torchvision's published meta).
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from tests.zoo_harness import Zoo, cli_eval, ours

# --- torchvision.models.densenet ----------------------------------------------------------------


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, prev_features: list[Tensor]) -> Tensor:
        # bn_function: torch.cat of the whole list, every layer (drop_rate 0: no dropout)
        bottleneck_output = self.conv1(self.relu1(self.norm1(torch.cat(prev_features, 1))))
        return self.conv2(self.relu2(self.norm2(bottleneck_output)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int):
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}", _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size)
            )

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
    ):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features = num_features // 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


# --- the cases -----------------------------------------------------------------------------------

#: torchvision/models/densenet.py builders: (growth_rate, block_config, num_init_features)
CONFIGS = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}

#: the published 1x3x224x224 for all; DenseNet-121 also at 250x199: 63x50 after pool0, transitions floor
#: 63 -> 31 -> 15 -> 7 and 50 -> 25 -> 12 -> 6 (the three bigger ones only at 224, to keep the suite fast)
ZOO = Zoo(
    {
        arch: (
            (lambda c=config: DenseNet(*c)),
            [(1, 224, 224), (2, 250, 199)] if arch == "densenet121" else [(1, 224, 224), (1, 160, 192)],
        )
        for arch, config in CONFIGS.items()
    }
)

#: torchvision/models/densenet.py weights meta (IMAGENET1K_V1): num_params and _ops (GMACs); FlopCounterMode FLOPs
#: at 1x3x224x224 as 2 x the MACs worked out in each architecture file's header
PUBLISHED = {
    # DenseNet121_Weights: "num_params": 7978856, "_ops": 2.834
    "densenet121": (7_978_856, 2.834, 2 * 2_834_161_664),
    # DenseNet161_Weights: "num_params": 28681000, "_ops": 7.728
    "densenet161": (28_681_000, 7.728, 2 * 7_727_907_072),
    # DenseNet169_Weights: "num_params": 14149480, "_ops": 3.36
    "densenet169": (14_149_480, 3.36, 2 * 3_359_843_328),
    # DenseNet201_Weights: "num_params": 20013928, "_ops": 4.291
    "densenet201": (20_013_928, 4.291, 2 * 4_291_365_888),
}


test_arch_equals_torch, test_layers_name_torch_modules, test_published_numbers = ZOO.tests(PUBLISHED)


def test_densenet121_concatenates_the_whole_list_in_every_layer():
    """DenseNet-121's cats at 224: each layer's torch.cat of all earlier features, plus each block's closing cat.

    A block with n0 input channels, growth 32, L layers on an SxS map writes sum_{j=0..L} (n0 + 32*j)*S*S elements
    in its L + 1 cats; a running concat would write n0*S*S fewer per block (no one-tensor cat in the first layer).
    """
    blocks = [(64, 6, 56), (128, 12, 28), (256, 24, 14), (512, 16, 7)]
    per_layer = sum((n0 + 32 * j) * s * s for n0, layers, s in blocks for j in range(layers))
    closing = sum((n0 + 32 * layers) * s * s for n0, layers, s in blocks)
    running = sum((n0 + 32 * j) * s * s for n0, layers, s in blocks for j in range(1, layers + 1))
    assert (per_layer, closing, running) == (9_094_400, 1_455_104, 10_173_184)
    assert per_layer + closing - running == 64 * 56 * 56 + 128 * 28 * 28 + 256 * 14 * 14 + 512 * 7 * 7 == 376_320
    r = ours("densenet121")
    cats = {node.path: node for node in r.nodes if node.op == "concat"}
    assert len(cats) == 58 + 4
    assert sum(node.values["write"] for path, node in cats.items() if path.endswith(".cat0")) == 64 * 56 * 56 + (
        128 * 28 * 28 + 256 * 14 * 14 + 512 * 7 * 7
    )
    assert sum(node.values["write"] for node in cats.values()) == per_layer + closing
    # denselayer24 reads cat23: the block input and the 23 layers before it
    assert cats["features.denseblock3.cat23"].output == (1, 256 + 23 * 32, 14, 14)
    assert cats["features.denseblock4.cat16"].output == (1, 1024, 7, 7)
    assert ZOO.torch_counts("densenet121", (1, 224, 224))[0]["cat_calls"] == 58 + 4


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_every_block_has_one_cat_per_layer_and_one_at_its_end(arch):
    """cat0 .. cat(L) in a block of L layers: the template keeps exactly the cats and layers the block uses."""
    growth, config, _ = CONFIGS[arch]
    r = ours(arch)
    for b, layers in enumerate(config, start=1):
        prefix = f"features.denseblock{b}."
        cats = sorted(int(n.path[len(prefix) + 3 :]) for n in r.nodes if n.path.startswith(f"{prefix}cat"))
        dense = {n.path.split(".")[2] for n in r.nodes if n.path.startswith(f"{prefix}denselayer")}
        assert cats == list(range(layers + 1)), arch
        assert dense == {f"denselayer{i}" for i in range(1, layers + 1)}, arch
    last = next(n for n in r.nodes if n.path == "features.norm5")
    assert last.output[1] == ZOO.reference(arch).classifier.in_features


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_each_cat_reads_the_block_input_and_every_earlier_layer(arch):
    """torchvision's list, not a running concat: catJ's inputs are the block input and denselayer1 .. denselayerJ's
    new features (a running concat, cat of cat(J-1) and denselayerJ, copies as much but holds other tensors)."""
    r = ours(arch)
    paths = {n.index: n.path for n in r.nodes}
    block_inputs = [
        "features.pool0",
        "features.transition1.pool",
        "features.transition2.pool",
        "features.transition3.pool",
    ]
    checked = 0
    for b, block_input in enumerate(block_inputs, start=1):
        prefix = f"features.denseblock{b}."
        for node in (n for n in r.nodes if n.path.startswith(f"{prefix}cat")):
            j = int(node.path[len(prefix) + 3 :])
            layers = [f"{prefix}denselayer{i}.conv2" for i in range(1, j + 1)]
            assert [paths[source] for source in node.sources] == [block_input, *layers], node.path
            checked += 1
    assert checked == sum(CONFIGS[arch][1]) + 4


def test_a_block_longer_than_the_template_is_refused():
    """The dense-block template holds 48 layers (DenseNet-201's denseblock3); 49 is refused, not truncated."""
    result = cli_eval("densenet121", "--set", "block_config_3=49")
    assert result.exit_code != 0
    assert "denselayer49" in result.output


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_cli_eval_by_name_prints_the_published_params(arch):
    result = cli_eval(arch)
    assert result.exit_code == 0, result.output
    assert f"{PUBLISHED[arch][0]:,}" in result.output
