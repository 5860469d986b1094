"""`symcost roofline`: the figure is written in the format its suffix names, and every way it cannot
be (a wrong suffix, no matplotlib) is one `Error:` line, not a traceback."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from symcost import plot
from tests.helpers import invoke

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a PNG must start with."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_has_the_fixed_pixel_size(tmp_path):
    out = tmp_path / "r.png"
    result = invoke("roofline", "resnet50", "--device", "a100", "--dtype", "bf16", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: ")
    size = (round(plot.FIGSIZE[0] * plot.DPI), round(plot.FIGSIZE[1] * plot.DPI))
    assert size == (1200, 750)
    assert png_size(out.read_bytes()) == size


def test_svg_is_xml_and_reproducible(tmp_path):
    first, second = tmp_path / "a.svg", tmp_path / "b.SVG"  # the suffix is matched case-insensitively
    for out in (first, second):
        result = invoke("roofline", "resnet50", "--device", "a100", "--dtype", "bf16", "-o", str(out))
        assert result.exit_code == 0, result.stderr
    root = ET.parse(first).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert first.read_bytes() == second.read_bytes()  # no date, no random ids


def test_llama_decode(tmp_path):
    out = tmp_path / "decode.png"
    result = invoke(
        "roofline", "llama", "--device", "h100", "--dtype", "bf16", "--phase", "decode", "-d", "3", "-o", str(out)
    )
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_wrong_suffix_is_a_usage_error(tmp_path):
    out = tmp_path / "out.txt"
    result = invoke("roofline", "resnet50", "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:")
    assert "png" in result.stderr and "svg" in result.stderr
    assert not out.exists()


def test_missing_directory_is_a_usage_error(tmp_path):
    result = invoke("roofline", "resnet50", "-o", str(tmp_path / "nowhere" / "r.png"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:") and "no directory" in result.stderr


def test_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "matplotlib" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = invoke("roofline", "resnet50", "-o", str(tmp_path / "r.png"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:")
    assert "pip install 'symcost[plot]'" in result.stderr


@pytest.mark.parametrize("path", ["r.png", "R.PDF", "sub/r.svg"])
def test_check_output_accepts(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    plot.check_output(path)


def test_import_does_not_import_matplotlib_or_numpy():
    script = "import sys, symcost.plot\nprint(','.join(m for m in ('matplotlib', 'numpy') if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
