"""The former name of :mod:`symcost.evaluation` (it shadowed the builtin ``compile``); kept so
``from symcost.compile import evaluate`` goes on working.

>>> from symcost import compile, evaluation
>>> compile.evaluate is evaluation.evaluate
True
"""

from __future__ import annotations

from .evaluation import *  # noqa: F403
from .evaluation import (
    NodeResult,
    Result,
    check_decided,
    evaluate,
    failed_check,
    keep_free,
    resolve,
    sum_nodes,
    symbolic_nodes,
    symbolic_totals,
)

__all__ = ["NodeResult", "Result", "check_decided", "evaluate", "failed_check", "keep_free", "resolve", "sum_nodes",
           "symbolic_nodes", "symbolic_totals"]  # fmt: skip
