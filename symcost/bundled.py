"""Where symcost's own data lives, and the one lookup of a bundled name.

The ``formulas``, ``archs`` and ``devices`` folders sit beside the package in a checkout or an
editable install, and inside it (``symcost/_data/KIND``) in a built wheel. A bundled name is the
stem of a file in one of them:

>>> path("archs", "resnet50").name
'resnet50.yaml'
>>> "a100" in names("devices")
True
"""

from __future__ import annotations

from pathlib import Path

from .errors import FormulaError, UsageError, did_you_mean

_PACKAGE = Path(__file__).resolve().parent
KINDS = ("formulas", "archs", "devices", "runtimes")


def data_dir(kind: str) -> Path:
    """The bundled ``formulas``, ``archs`` or ``devices`` folder, in a wheel or in a checkout."""
    for candidate in (_PACKAGE / "_data" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FormulaError(f"the bundled '{kind}' folder is missing from this installation of symcost")


def names(kind: str) -> list[str]:
    """Every bundled name of a kind, sorted (``names("archs")`` lists ``resnet50``, ``gpt2``, ...)."""
    return sorted(p.stem for p in data_dir(kind).glob("*.yaml"))


def find(kind: str, name: str) -> Path | None:
    """The bundled file called ``name`` (``archs/resnet50.yaml``), or None."""
    if not name.isidentifier():
        return None
    candidate = data_dir(kind) / f"{name}.yaml"
    return candidate if candidate.is_file() else None


def path(kind: str, name: str) -> Path:
    """The bundled file called ``name``; an unknown name suggests the closest."""
    found = find(kind, name)
    if found is None:
        singular = {"archs": "architecture", "devices": "device", "formulas": "formula"}[kind]
        raise UsageError(f"no {singular} file or bundled {singular} '{name}'{did_you_mean(name, names(kind))}")
    return found
