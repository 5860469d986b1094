"""Formula name → :class:`~symcost.formula.Formula`, from the bundled catalog and user folders.

The bundled ``formulas/`` folder is found beside the package in a checkout or an editable install,
and inside the package (``symcost/_data/formulas``) in a built wheel. Users add their own folders
with :func:`add_path`, ``--formulas DIR`` or the ``SYMCOST_FORMULA_PATH`` variable
(``os.pathsep``-separated); a user formula with a bundled name takes precedence.

Each file is read once, on first use, so ``symcost derive conv2d`` reads one file.

>>> get("conv2d").summary
'2-D convolution (torch.nn.Conv2d): rectangular kernels, per-axis stride, padding, dilation, groups, bias'
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .bundled import data_dir as data_dir  # where it lived before symcost.bundled
from .errors import FormulaError, Location, did_you_mean
from .formula import Formula, load
from .yamlio import load_file

_user_paths: list[Path] = []
_cache: dict[Path, Formula] = {}


def add_path(folder: str | Path) -> None:
    """Search ``folder`` for formula files before the bundled catalog."""
    path = Path(folder)
    if not path.is_dir():
        raise FormulaError("formula folder does not exist", Location(str(folder)))
    if path not in _user_paths:
        _user_paths.insert(0, path)


def search_path() -> list[Path]:
    return list(_search_path(tuple(_user_paths), os.environ.get("SYMCOST_FORMULA_PATH", "")))


@functools.cache
def _search_path(user: tuple[Path, ...], env: str) -> tuple[Path, ...]:
    # a model looks formulas up hundreds of times; the folders change only with add_path or the variable
    return (*user, *(Path(p) for p in env.split(os.pathsep) if p), data_dir("formulas"))


def _files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in reversed(search_path()):  # earlier folders win
        for file in sorted(folder.glob("*.yaml")):
            found[file.stem] = file
    return found


def names() -> list[str]:
    """Every formula name, sorted."""
    return sorted(_files())


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def load_path(path: Path) -> Formula:
    """Load (once) the formula file at ``path``."""
    path = path.resolve()
    if path not in _cache:
        shown = _display(path)
        _cache[path] = load(load_file(path, shown), shown)
    return _cache[path]


_by_name: dict[tuple[tuple[Path, ...], str], Formula] = {}


def get(name: str) -> Formula:
    """The formula called ``name``; unknown names suggest the closest."""
    folders = tuple(search_path())
    known = _by_name.get((folders, name))  # a model names the same few ops hundreds of times
    if known is not None:
        return known
    for folder in folders:
        candidate = folder / f"{name}.yaml"
        if candidate.is_file() and name.isidentifier():
            _by_name[(folders, name)] = formula = load_path(candidate)
            return formula
    raise FormulaError(f"unknown formula '{name}'{did_you_mean(name, names())}")


def all_formulas() -> list[Formula]:
    """The whole catalog, loaded and validated."""
    return [load_path(path) for _, path in sorted(_files().items())]
