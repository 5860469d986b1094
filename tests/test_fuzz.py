"""Hypothesis fuzzing of symcost's two readers of untrusted text: the expression parser and the YAML loader
(with the architecture reader and the graph build behind it).

The properties are the hostile corpus's (tests/test_hostile.py): whatever the text, symcost returns a value
or raises its own error (one located message, no other exception), nothing is executed (a canary file that
the payloads would create never appears), each example finishes within a time bound, and what an expression
builds stays within :func:`symcost.expr.check_size`'s bounds.

In CI the examples are derandomized and few (tests/conftest.py's profile); ``scripts/fuzz.py`` runs the same
properties for 10**5 examples and more.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import sympy
import yaml
from hypothesis import given
from hypothesis import strategies as st

from symcost import expr
from symcost.cli import error_line  # imported once here, not inside the first example's time
from symcost.errors import SymcostError

#: a payload that would create this file if any text were ever executed
CANARY = Path(tempfile.gettempdir()) / "symcost-fuzz-canary"
PAYLOADS = [
    f"__import__('os').system('touch {CANARY}')",
    f"open('{CANARY}', 'w')",
    f"exec(\"open('{CANARY}', 'w')\")",
    f"eval(\"__import__('os').system('touch {CANARY}')\")",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 0",
    "[x for x in ()]",
]
SECONDS = 5.0  # CPU seconds for one example (CPU time: the same on a loaded machine)

NAMES = {n: sympy.Symbol(n, integer=True, positive=True) for n in ("H", "W", "N", "C_in", "k")}
_leaf = st.one_of(
    st.integers(min_value=-(10**50), max_value=10**50).map(str),
    st.sampled_from(["0", "1", "2", "64", "65", "0.5", "1.1", "1e5", "1_000", "0x10", "1j", "True", "None", "''"]),
    st.sampled_from([*NAMES, "x", "lambda", "__class__", "_H", "floor", "max"]),
    st.sampled_from(PAYLOADS),
)
_ops = ["+", "-", "*", "/", "//", "%", "**", "<", "==", "and", "or", "<<", "@", "|"]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(_ops), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(_ops), children).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
        st.tuples(st.sampled_from([*expr.FUNCTIONS, "open", "eval", "getattr"]), st.lists(children, max_size=4)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        children.map(lambda c: f"-{c}"),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"{c}.real"),
        children.map(lambda c: f"{c}[0]"),
    )


#: Expression texts: a grammar that mostly parses (nested operators, calls, powers), plus any text at all.
expression_texts = st.one_of(
    st.recursive(_leaf, _combine, max_leaves=40),
    st.text(max_size=200),
    st.text(alphabet="()+-*/%0123456789HWNk., _e", max_size=300),
)


def _one_line(exc: SymcostError) -> bool:
    """The error as the command line prints it is one non-empty line without control characters."""
    line = error_line(exc)
    return bool(line) and not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in line)


def check_expression(text: str) -> None:
    """The parser's contract for one text (the properties of the module docstring)."""
    started = time.process_time()
    try:
        value = expr.parse(text, NAMES, allow_compare="<" in text or "==" in text)
    except SymcostError as exc:
        assert _one_line(exc), repr(str(exc))
    else:
        assert isinstance(value, sympy.Basic)
        expr.check_size(value)
    assert time.process_time() - started < SECONDS, text
    assert not CANARY.exists(), text


# YAML: an architecture-shaped document whose fields are drawn from hostile values, dumped, then possibly
# damaged (a control character, an alias, a tag, unbalanced brackets, deep nesting) as raw text.
_scalar = st.one_of(
    expression_texts,
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
_value = st.recursive(
    _scalar,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
    max_leaves=20,
)
_layer = st.fixed_dictionaries(
    {"op": st.sampled_from(["relu", "linear", "conv2d", "add", "concat", "__import__", "layernorm"])},
    optional={
        "out_features": _scalar,
        "C_out": _scalar,
        "kernel": _scalar,
        "repeat": _scalar,
        "name": st.text(max_size=10),
        "in": _value,
    },
)
_document = st.fixed_dictionaries(
    {
        "name": st.one_of(st.text(max_size=20), _scalar),
        "summary": st.text(max_size=40),
        "inputs": st.one_of(st.just({"x": ["N", 4]}), st.dictionaries(st.text(max_size=4), _value, max_size=2)),
        "layers": st.one_of(st.lists(_layer, max_size=4), _value),
    },
    optional={
        "variables": st.dictionaries(st.sampled_from(["N", "H", "lambda", "max", "_x", "k"]), _scalar, max_size=3),
        "extends": st.sampled_from(["resnet50", "../../etc/passwd", "/dev/zero", "seed_fc", "no_such"]),
        "blocks": st.dictionaries(st.text(max_size=6), _value, max_size=2),
        "phases": _value,
    },
)
_damage = st.one_of(
    st.just(""),
    st.sampled_from(
        [
            "\x00",
            "\x1b[2J",
            "\u202e",
            "\t",
            "\ufeff",
            "&a ",
            "*a",
            "!!python/object/apply:os.system ",
            "<<: *a\n",
            "!!binary ",
            "[[[[[[[[",
            "{{{{",
            "---\n",
            "%YAML 1.1\n---\n",
            "? ",
        ]
    ),  # fmt: skip
    st.text(max_size=10),
)


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """YAML texts, most architecture-shaped, some damaged at a random place, some any text at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=300))
    text = yaml.safe_dump(draw(_document), allow_unicode=True, sort_keys=False)
    damage = draw(_damage)
    at = draw(st.integers(0, len(text)))
    return text[:at] + damage + text[at:]


def check_yaml(text: str) -> None:
    """The YAML loader's and architecture reader's contract for one text; what loads is also built."""
    from symcost import arch, shapes

    started = time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        cwd = os.getcwd()
        os.chdir(folder)  # an `extends` resolves beside the file, never in the checkout
        try:
            loaded = arch.load_text(text, os.path.join(folder, "fuzz.yaml"))
            shapes.build(loaded)
        except SymcostError as exc:
            assert _one_line(exc), repr(str(exc))
        finally:
            os.chdir(cwd)
    assert time.process_time() - started < SECONDS, text
    assert not CANARY.exists(), text


@given(expression_texts)
def test_expression_parser_fuzz(text):
    check_expression(text)


@given(yaml_texts())
def test_yaml_loader_fuzz(text):
    check_yaml(text)
