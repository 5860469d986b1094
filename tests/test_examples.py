"""Every worked example in the catalog, and the blog posts' golden numbers."""

from __future__ import annotations

import pytest

from symcost import formulas, registry

EXAMPLES = [(f.name, i) for f in registry.all_formulas() for i in range(len(f.examples))]


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_catalog_example(name, index):
    formula = registry.get(name)
    example = formula.examples[index]
    result = formula.evaluate(**example.values).as_dict()
    for key, expected in example.expect.items():
        category = key.removeprefix("elementwise.")
        if key == "output":
            got, expected = list(next(iter(result["outputs"].values()))), list(expected)
        elif key in result["outputs"]:
            got, expected = list(result["outputs"][key]), list(expected)
        elif key in result and key != "elementwise":
            got = result[key]
        elif category in result["elementwise"]:
            got = result["elementwise"][category]
        else:
            pytest.fail(f"{name} example {index}: unknown expectation '{key}'")
        assert got == expected, f"{name} example {index}: {key}"


def test_seed_fully_connected():
    # FC 100 -> 50: FLOPs = 2*100*50 = 10,000; params = 100*50 + 50 = 5,050
    r = formulas.linear.evaluate(batch=1, in_features=100, out_features=50)
    assert (r.flops, r.params) == (10_000, 5_050)


def test_seed_convolution():
    # 224x224x3 -> 112x112x64, k3, s2, p1: FLOPs = 112*112*3*3*3*64*2 = 43,352,064 (the note's
    # "about 870 million" is an arithmetic slip); params = 3*3*3*64 + 64 = 1,792
    r = formulas.conv2d.evaluate(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1)
    assert r.outputs["y"] == (1, 64, 112, 112)
    assert (r.flops, r.params) == (43_352_064, 1_792)


def test_seed_batchnorm():
    if "batchnorm2d" not in registry.names():
        pytest.fail("batchnorm2d is part of the catalog")
    from symcost import cost

    # BN over C=64 channels of 1x64x112x112: params = 2*64 = 128 (gamma, beta); FlopCounterMode
    # counts 0 FLOPs; thop's rule (the note's) is 4 per element: 4*64*112*112 = 3,211,264
    r = formulas.batchnorm2d.evaluate(N=1, C=64, H=112, W=112)
    assert r.params == 128 and r.flops == 0
    with_norm = formulas.batchnorm2d.evaluate(cost.TORCH.with_elementwise({"norm"}), N=1, C=64, H=112, W=112)
    assert with_norm.flops == 3_211_264


def test_every_formula_has_an_example():
    missing = [f.name for f in registry.all_formulas() if not f.examples]
    assert not missing, f"formulas without a worked example: {missing}"
