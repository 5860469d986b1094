"""One error type for everything a user can get wrong, each carrying where it happened.

The CLI catches :class:`SymcostError` once and prints ``Error: file:line:col: message``::

    >>> from symcost.errors import Location, FormulaError
    >>> str(FormulaError("groups must divide C_in", Location("formulas/conv2d.yaml", 12, 5)))
    'formulas/conv2d.yaml:12:5: groups must divide C_in'
"""

from __future__ import annotations

import contextvars
import copy
import difflib
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Location:
    """A 1-based place in a file (or in a command-line argument, ``file="--set"``)."""

    file: str
    line: int | None = None
    col: int | None = None

    def shifted(self, cols: int) -> Location:
        """The same place, ``cols`` columns further right (a sub-expression of a scalar)."""
        if self.col is None:
            return self
        return Location(self.file, self.line, self.col + cols)

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


class SymcostError(Exception):
    """Base of every error symcost raises on purpose; ``str()`` is the user's line."""

    def __init__(self, message: str, loc: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}" if self.loc else self.message


class ExprError(SymcostError):
    """An expression that the safe parser refuses."""


class YamlError(SymcostError):
    """YAML that is malformed, too large, or uses tags and aliases symcost does not accept."""


class FormulaError(SymcostError):
    """A formula file that breaks the schema, or attribute values that break its constraints."""


class ArchError(SymcostError):
    """An architecture file that breaks the grammar."""


class ShapeError(SymcostError):
    """Shapes that do not fit together as they propagate through a graph."""


class DeviceError(SymcostError):
    """A device file that breaks the schema, or a device that lacks what a command asks of it."""


class UsageError(SymcostError):
    """A command-line argument symcost cannot use."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A suffix like `` (did you mean 'conv2d'?)``, or ``""`` when nothing is close. Names that
    are all as close as the best are all offered, so no one of them is picked at random.

    >>> did_you_mean("conv2", ["conv1d", "conv2d", "linear"])
    " (did you mean 'conv2d'?)"
    >>> did_you_mean("batchnorm", ["batchnorm1d", "batchnorm2d", "batchnorm3d", "layernorm"])
    " (did you mean 'batchnorm1d', 'batchnorm2d' or 'batchnorm3d'?)"
    """
    candidates = list(known)
    close = difflib.get_close_matches(name, candidates, n=len(candidates) or 1, cutoff=0.6)
    if not close:
        return ""
    ratio = difflib.SequenceMatcher(None, close[0], name).ratio()
    best = sorted(c for c in close if difflib.SequenceMatcher(None, c, name).ratio() == ratio)
    shown = [f"'{c}'" for c in best]
    return f" (did you mean {shown[0] if len(shown) == 1 else ', '.join(shown[:-1]) + ' or ' + shown[-1]}?)"


# ---- the Python API's words ------------------------------------------------------------------------

#: Set while a command of the ``symcost`` command line runs: its errors name its options (``--set``).
#: A Python caller gave ``values=``, not ``--set``: :func:`speaks_api` rewrites the option names into
#: the parameters of :mod:`symcost.api` when no command is running.
IN_COMMAND: contextvars.ContextVar[bool] = contextvars.ContextVar("symcost_in_command", default=False)

#: Each command-line option, and the Python parameter that stands for it.
API_WORDS = {
    "--memory-efficiency": "memory_efficiency",
    "--efficiency": "efficiency",
    "--target-latency": "target_latency",
    "--device-file": "device_files",
    "--device": "device",
    "--set": "values",
    "--over": "over",
    "--free": "free",
    "--for": "variable",
    "--from": "start_from",
    "--count-elementwise": "count_elementwise",
    "--convention": "convention",
    "--metric": "metrics",
    "--overlap": "overlap",
    "--optimizer": "optimizer",
    "--phase": "phase",
    "--dtype": "dtype",
    "--assume": "assume",
    "--leading": "leading",
    "--symbolic": "symbolic",
    "--waves": "waves",
    "--limit": "limit",
    "--step": "step",
    "--depth": "depth",
}
_OPTION = re.compile(r"(?<![\w-])(" + "|".join(re.escape(o) for o in API_WORDS) + r")(?![\w-])")


def in_api_words(exc: SymcostError) -> SymcostError:
    """``exc`` as a Python caller reads it: ``--set`` is ``values``, ``--efficiency`` is ``efficiency``.

    >>> str(in_api_words(SymcostError("--efficiency must be in (0, 1], got 2", Location("--set"))))
    'values: efficiency must be in (0, 1], got 2'
    """
    new = copy.copy(exc)
    new.message = _OPTION.sub(lambda m: API_WORDS[m.group(1)], exc.message)
    if exc.loc is not None and exc.loc.file in API_WORDS:
        new.loc = Location(API_WORDS[exc.loc.file], exc.loc.line, exc.loc.col)
    new.args = (new.message,)
    return new


def speaks_api(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a public Python function: its errors name its parameters, not the command line's options."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SymcostError as exc:
            if IN_COMMAND.get():
                raise
            raise in_api_words(exc) from None

    return wrapper
