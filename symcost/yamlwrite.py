"""Writing symcost YAML text by hand, for the importers (``import hf``, ``import torch``, ``import onnx``).

Generated files are meant to be read and edited by people, so they are written line by line, with
comments, in flow style for a layer (one layer, one line) rather than dumped by PyYAML. Every string
that did not come from symcost itself is quoted as JSON (a subset of YAML), so no config or module
name can open a new key, a comment or a tag.

>>> scalar({"name": "layer1.0.conv1", "op": "conv2d", "kernel_size": 3, "bias": False})
'{name: layer1.0.conv1, op: conv2d, kernel_size: 3, bias: false}'
>>> scalar("yes"), scalar("a: b"), scalar(0.1)
('"yes"', '"a: b"', '0.1')
>>> out = Lines()
>>> out.add("layers:")
>>> out.layer(2, name="fc", op="linear", in_features=2048, out_features=1000)
>>> print(out.text(), end="")
layers:
  - {name: fc, op: linear, in_features: 2048, out_features: 1000}
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.*+/() -]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.12f}".rstrip("0").rstrip(".")
        return text if text else "0"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS and not text.endswith(" "):
        return text
    return json.dumps(text)


def text(value: str) -> str:
    return json.dumps(value)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str = "", indent: int = 0) -> None:
        self.lines.append(" " * indent + text if text else "")

    def layer(self, indent: int, **spec: Any) -> None:
        self.add("- " + scalar(spec), indent)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
