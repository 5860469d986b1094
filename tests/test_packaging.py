"""The bundled catalog travels inside the wheel, and `import symcost` stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_catalog_and_loads_from_it(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("symcost-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "symcost/_data/formulas/conv2d.yaml" in names
        assert "symcost/_data/archs/resnet50.yaml" in names
        # the published configs the bundled Hub models are generated from travel beside them
        assert "symcost/_data/archs/configs/mixtral_8x7b.json" in names
        assert "symcost/_data/archs/configs/README.md" in names
        assert "symcost/_data/devices/a100.yaml" in names
        assert "symcost/_data/runtimes/tensorrt.yaml" in names
        assert "symcost/py.typed" in names
        archive.extractall(tmp_path / "site")
    # Run from an empty folder with only the unpacked wheel on the path: no checkout to fall back on.
    script = (
        "import symcost.registry as r\n"
        "print(r.data_dir('formulas'))\n"
        "print(r.get('conv2d').evaluate(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1).flops)\n"
        "from symcost.arch import load_path\n"
        "from symcost.shapes import build\n"
        "from symcost.compile import evaluate\n"
        "print(evaluate(build(load_path(r.data_dir('archs') / 'resnet50.yaml'))).totals['flops'])\n"
        "from symcost import devices\n"
        "print(devices.find('a100').peak('bf16'), devices.find('a100').path)\n"
        "from symcost import runtimes\n"
        "print(runtimes.find().path)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    if done.returncode != 0 and "No module named" in done.stderr:
        # -S drops site-packages (sympy, yaml); keep them but put the wheel first.
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
        )
    assert done.returncode == 0, done.stderr
    folder, flops, resnet, peak, device_path, runtime_path = done.stdout.split()
    assert runtime_path == "runtimes/tensorrt.yaml"  # the default runtime, from the wheel's data
    assert Path(folder).is_relative_to(tmp_path / "site")
    assert int(flops) == 43_352_064  # 2 * 112*112*64*3*3*3
    assert int(resnet) == 8_178_368_512  # torchvision's 4.089 GMACs, as FLOPs
    assert (int(peak), device_path) == (312 * 10**12, "devices/a100.yaml")  # the datasheet's dense bf16


def test_import_symcost_does_not_import_heavy_libraries():
    script = (
        "import sys, symcost\n"
        "from symcost import formulas\n"
        "formulas.conv2d.flops\n"
        "import symcost.cli\n"
        "heavy = [m for m in ('torch', 'numpy', 'matplotlib', 'pydantic') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
