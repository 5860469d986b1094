"""The one place where text becomes a sympy expression.

``sympify``/``parse_expr`` call ``eval`` and rebind names (``N`` is sympy's numeric-evaluation
function, ``S`` its singleton registry, ``E``/``I`` are constants), so symcost never hands them
file or command-line text. Instead, :func:`parse` walks Python's ``ast`` and accepts only:

- integer literals, and decimal literals read exactly from their text (``1.1`` is ``11/10``,
  never the float nearest to it; exponent notation, strings, bools and complex numbers are refused);
- names the caller declared, each mapped to a sympy expression;
- ``+ - * / // % **``, unary ``-``/``+`` and parentheses (``/`` is exact rational division,
  ``//`` is ``floor(a/b)``, ``**`` needs a small integer literal exponent);
- calls of ``floor ceil min max abs gcd round int ceil_div make_divisible experts_read`` with
  positional arguments (``round`` is Python's, halves to even; ``int`` truncates toward zero;
  ``make_divisible`` is torchvision's ``_make_divisible``; ``experts_read`` is a mixture of experts'
  expected routed-expert elements under uniform routing), exact on rationals;
- with ``allow_compare=True``: ``== != < <= > >=`` (chains too) and ``and``/``or``/``not``.

Everything else (attribute access, subscripts, lambdas, comprehensions, keywords, dunders, unknown
names) is refused with an :class:`~symcost.errors.ExprError` that says where.

>>> import sympy
>>> H, p = sympy.Symbol("H", integer=True, positive=True), sympy.Symbol("p", integer=True)
>>> parse("(H + 2*p - 3)//2 + 1", {"H": H, "p": p}).subs({H: 224, p: 1})
112
>>> parse("make_divisible(32 * 1.1, 8)", {}), parse("round(2.5) + int(-1.5)", {})
(32, 1)
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy
from sympy.core.logic import fuzzy_and, fuzzy_or

from .errors import ExprError, Location, did_you_mean

MAX_LENGTH = 2000
MAX_BRACKET_DEPTH = 32
MAX_AST_DEPTH = 64
MAX_EXPONENT = 64
MAX_LITERAL = 10**40
MAX_DECIMALS = 40  # digits after a decimal point
#: Bounds on what an expression may build, not only on what is written: ``((2**64)**64)**64`` has
#: small literals and a 10**(10**5)-digit value. Every intermediate result is checked: its integers
#: and rationals at most MAX_RESULT_DIGITS decimal digits, its powers at most MAX_DEGREE (sympy folds
#: ``(x**64)**64`` into ``x**4096``), its tree at most MAX_NODES nodes.
MAX_RESULT_DIGITS = 400
MAX_DEGREE = 256
MAX_NODES = 5000
_MAX_RESULT_BITS = int(MAX_RESULT_DIGITS * 3.3219280948873626)
_DECIMAL = re.compile(r"^(?:[0-9][0-9_]*)?\.(?:[0-9][0-9_]*)?$")


@dataclass(frozen=True)
class Variadic:
    """``*name`` in a shape: any number of dims whose product is the symbol ``name``."""

    name: str
    symbol: sympy.Symbol

    def __str__(self) -> str:
        return f"*{self.name}"


class gcd(sympy.Function):
    """Greatest common divisor of two integers, kept symbolic until both are numbers.

    (``sympy.gcd`` is the polynomial gcd: ``sympy.gcd(H, O)`` is 1 for symbols, which would be
    wrong here.) Adaptive pooling's window lengths need it: they sum to ``S + O - gcd(S, O)``.

    >>> gcd(sympy.Integer(12), sympy.Integer(18))
    6
    """

    is_integer = True
    is_positive = True

    @classmethod
    def eval(cls, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
        if a.is_Integer and b.is_Integer:
            return sympy.Integer(math.gcd(int(a), int(b)))
        if a == b:
            return a
        if a == 1 or b == 1:  # gcd(x + 1, 1) in an adaptive pool's window count
            return sympy.Integer(1)
        return None


class _Extremum(sympy.Function):
    """``min``/``max`` of integer expressions: exact on numbers, left as written on symbols.

    sympy's own Min/Max reason about every pair of symbolic arguments each time they are built
    (and ``xreplace`` rebuilds them): 0.2 s for one pooling formula. These evaluate only once
    every argument is a number, which is when symcost needs the value.
    """

    _pick: Any = None

    @classmethod
    def eval(cls, *args: sympy.Expr) -> sympy.Expr | None:
        if all(a.is_number for a in args):
            return cls._pick(args)
        return None

    def _eval_is_integer(self) -> bool | None:
        return fuzzy_and(a.is_integer for a in self.args)

    def _eval_is_nonnegative(self) -> bool | None:
        if self._pick is max:
            return fuzzy_or(a.is_nonnegative for a in self.args)
        return fuzzy_and(a.is_nonnegative for a in self.args)

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        name = r"\max" if self._pick is max else r"\min"
        text = name + r"\left(" + ", ".join(printer._print(a) for a in self.args) + r"\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"  # a power: sympy's printer passes the exponent


class min_(_Extremum):  # noqa: N801 - printed as min(...)
    _pick = min


class max_(_Extremum):  # noqa: N801 - printed as max(...)
    _pick = max


def _fraction(value: sympy.Expr) -> Fraction | None:
    """``value`` as an exact Fraction when it is a rational number, else None (still symbolic)."""
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    return None


class _Exact(sympy.Function):
    """A function that stays as written on symbols and evaluates exactly, with Fractions, once all
    its arguments are rational numbers (``round(H/3)`` stays; ``round(7/2)`` is 4)."""

    shown = ""

    @classmethod
    def eval(cls, *args: sympy.Expr) -> sympy.Expr | None:
        numbers = [_fraction(a) for a in args]
        if all(n is not None for n in numbers):
            return cls._exact(*numbers)
        return cls._symbolic(*args)

    @classmethod
    def _exact(cls, *args: Fraction) -> sympy.Expr | None:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def _symbolic(cls, *args: sympy.Expr) -> sympy.Expr | None:
        return None

    def _eval_is_integer(self) -> bool | None:
        return True

    def _sympystr(self, printer: Any) -> str:
        return f"{self.shown}(" + ", ".join(printer._print(a) for a in self.args) + ")"

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        shown = self.shown.replace("_", r"\_")
        text = rf"\operatorname{{{shown}}}\left(" + ", ".join(printer._print(a) for a in self.args) + r"\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"  # ceil_div(a, b)**2 in a closed form


def _as_number(value: Fraction | int) -> sympy.Expr:
    value = Fraction(value)
    return sympy.Rational(value.numerator, value.denominator)


class round_(_Exact):  # noqa: N801 - printed as round(...)
    """Python's ``round(x)``: the nearest integer, halves to the even one.

    >>> round_(sympy.Rational(5, 2)), round_(sympy.Rational(7, 2)), round_(sympy.Rational(-5, 2))
    (2, 4, -2)
    """

    shown = "round"

    @classmethod
    def _exact(cls, x: Fraction) -> sympy.Expr:
        return sympy.Integer(round(x))

    @classmethod
    def _symbolic(cls, x: sympy.Expr) -> sympy.Expr | None:
        return x if x.is_integer else None


class int_(_Exact):  # noqa: N801 - printed as int(...)
    """Python's ``int(x)`` of a number: truncation toward zero.

    >>> int_(sympy.Rational(7, 2)), int_(sympy.Rational(-7, 2))
    (3, -3)
    """

    shown = "int"

    @classmethod
    def _exact(cls, x: Fraction) -> sympy.Expr:
        return sympy.Integer(int(x))

    @classmethod
    def _symbolic(cls, x: sympy.Expr) -> sympy.Expr | None:
        return x if x.is_integer else None


class ceil_div(_Exact):  # noqa: N801 - the name builders use
    """``ceil_div(a, b)`` = ceil(a / b), the number of b-sized tiles that cover a.

    >>> ceil_div(sympy.Integer(7), sympy.Integer(2)), ceil_div(sympy.Integer(8), sympy.Integer(2))
    (4, 4)
    """

    shown = "ceil_div"

    @classmethod
    def _exact(cls, a: Fraction, b: Fraction) -> sympy.Expr | None:
        if b == 0:
            raise ExprError(f"division by zero: ceil_div({a}, 0)")
        return sympy.Integer(-(-a // b))

    @classmethod
    def _symbolic(cls, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
        return a if b == 1 and a.is_integer else None

    def _eval_is_positive(self) -> bool | None:
        a, b = self.args
        return fuzzy_and([a.is_positive, b.is_positive])


class make_divisible(_Exact):  # noqa: N801 - torchvision's name
    """torchvision's ``_make_divisible(v, divisor, min_value=None)`` (torchvision/models/_utils.py),
    which rounds MobileNet and EfficientNet channel counts to a multiple of ``divisor``:
    ``new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)``, plus one more
    ``divisor`` if that lost more than 10% of ``v``. Here in exact arithmetic (0.9 is 9/10).

    >>> make_divisible(sympy.Rational(176, 10), sympy.Integer(8))      # 16 channels x 1.1
    16
    >>> make_divisible(sympy.Integer(4), sympy.Integer(8)), make_divisible(sympy.Integer(20), sympy.Integer(8), sympy.Integer(32))
    (8, 32)
    """

    shown = "make_divisible"

    @classmethod
    def _exact(cls, v: Fraction, divisor: Fraction, min_value: Fraction | None = None) -> sympy.Expr | None:
        if divisor == 0:
            raise ExprError(f"division by zero: make_divisible({v}, 0)")
        new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
        if new_v < Fraction(9, 10) * v:
            new_v += divisor
        return _as_number(new_v)

    def _eval_is_integer(self) -> bool | None:
        return fuzzy_and(a.is_integer for a in self.args[1:])

    def _eval_is_positive(self) -> bool | None:
        return self.args[1].is_positive


class experts_read(_Exact):  # noqa: N801 - printed as experts_read(...)
    """Elements read from a mixture of experts' routed experts in one pass, under uniform routing:
    ``experts_read(E, k, T, P)`` = ceil(P * E * (1 - (1 - k/E)**T)), the expected number of distinct
    experts (of E, each of P elements) that T tokens touch when each token picks k distinct experts
    uniformly at random and independently, times P, rounded up to a whole element.

    The probability that one expert is missed by one token is 1 - k/E, by all T tokens (1 - k/E)**T;
    the expectation is exact (a rational), so only the last rounding is approximate (below one
    element). One token reads exactly k experts; many tokens tend to all E. When
    (1 - k/E)**T * E * P is provably below 1 (T large), the value is E*P exactly without forming
    the power, so prefill-sized T stays fast.

    >>> experts_read(*map(sympy.Integer, (8, 2, 1, 100)))     # one token: k = 2 experts
    200
    >>> experts_read(*map(sympy.Integer, (8, 2, 2, 100)))     # 8*(1 - (3/4)**2) = 3.5 experts
    350
    >>> experts_read(*map(sympy.Integer, (8, 2, 3, 10)))      # 8*(1 - 27/64) = 4.625 -> 46.25 -> 47
    47
    >>> experts_read(*map(sympy.Integer, (8, 2, 10**9, 10)))  # every expert: 80
    80
    """

    shown = "experts_read"

    @classmethod
    def _exact(cls, experts: Fraction, k: Fraction, tokens: Fraction, size: Fraction) -> sympy.Expr | None:
        if any(v.denominator != 1 or v < 0 for v in (experts, k, tokens, size)) or k > experts or experts == 0:
            return None  # stays unevaluated; an evaluation then reports it as not a whole number
        total = int(experts * size)
        if tokens == 0 or k == 0:
            return sympy.Integer(0)
        miss = 1 - k / experts  # one token misses a given expert
        if miss == 0:
            return sympy.Integer(total)
        # m: the fewest tokens that halve the miss probability (m <= E); after T tokens it is at most
        # 2**-(T // m), and once that is below 1/total the expected elements lie in (total - 1, total).
        m, power = 1, miss
        while power > Fraction(1, 2):
            m, power = m + 1, power * miss
        if int(tokens) // m > total.bit_length():
            return sympy.Integer(total)
        value = size * experts * (1 - miss ** int(tokens))
        return sympy.Integer(-(-value.numerator // value.denominator))


FUNCTIONS: dict[str, tuple[Any, int, int | None]] = {
    # name: (sympy callable, fewest arguments, most arguments or None for any)
    "floor": (sympy.floor, 1, 1),
    "ceil": (sympy.ceiling, 1, 1),
    "min": (min_, 2, None),
    "max": (max_, 2, None),
    "abs": (sympy.Abs, 1, 1),
    "gcd": (gcd, 2, 2),
    "round": (round_, 1, 1),
    "int": (int_, 1, 1),
    "ceil_div": (ceil_div, 2, 2),
    "make_divisible": (make_divisible, 2, 3),
    "experts_read": (experts_read, 4, 4),
}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
}
_COMPARE = {
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
    ast.Lt: sympy.Lt,
    ast.LtE: sympy.Le,
    ast.Gt: sympy.Gt,
    ast.GtE: sympy.Ge,
}


def parse(
    text: Any,
    names: Mapping[str, sympy.Basic],
    *,
    loc: Location | None = None,
    allow_compare: bool = False,
) -> sympy.Basic:
    """Turn ``text`` into a sympy expression over ``names``, or raise a located ExprError.

    ``text`` may also be a plain ``int`` (YAML reads ``0`` as one). ``loc`` is where the text
    starts; errors point into it by column.
    """
    if isinstance(text, float) and isinstance(getattr(text, "text", None), str):
        text = text.text  # a YAML decimal (width: 1.1): read exactly from what was written
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ExprError(f"expected an integer expression, got {type(text).__name__} {text!r}", loc)
    if isinstance(text, int):
        if abs(text) > MAX_LITERAL:
            raise ExprError("integer literal too large", loc)
        return sympy.Integer(text)
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters", loc)
    if not text.strip():
        raise ExprError("empty expression", loc)
    _check_brackets(text, loc)
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" (1and2) would print to the user's stderr
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = loc.shifted((exc.offset or 1) - 1) if loc else None
        raise ExprError(f"not a valid expression: {text.strip()!r}", where) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(f"not a valid expression: {text.strip()[:60]!r}", loc) from None
    return _Builder(names, loc, allow_compare, text.strip()).build(tree.body, 0)


def reserved(name: str) -> str | None:
    """Why ``name`` cannot be a variable that expressions read, or None when it can.

    >>> reserved("lambda"), reserved("max"), reserved("H")
    ("'lambda' is a reserved word of the expression syntax", "'max' is a function of the expression syntax", None)
    """
    import keyword

    if keyword.iskeyword(name):
        return f"'{name}' is a reserved word of the expression syntax"
    if name in FUNCTIONS:
        return f"'{name}' is a function of the expression syntax"
    if name.startswith("_"):
        return f"'{name}' starts with '_', which expressions do not accept"
    return None


def check_size(value: sympy.Basic, loc: Location | None = None, what: str = "expression") -> sympy.Basic:
    """``value``, or an :class:`ExprError` when it is larger than the bounds above allow.

    >>> check_size(sympy.Integer(2) ** 64)
    18446744073709551616
    >>> check_size(sympy.Integer(2) ** 4096)
    Traceback (most recent call last):
    ...
    symcost.errors.ExprError: expression's value has more than 400 digits
    """
    nodes = 0
    stack = [value]
    while stack:
        node = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ExprError(f"{what} grows past {MAX_NODES:,} terms", loc)
        if node.is_Rational:
            if max(abs(int(node.p)).bit_length(), int(node.q).bit_length()) > _MAX_RESULT_BITS:
                raise ExprError(f"{what}'s value has more than {MAX_RESULT_DIGITS} digits", loc)
            continue
        if node.is_Pow and node.exp.is_Rational and abs(node.exp) > MAX_DEGREE:
            raise ExprError(f"{what} has a power of degree {node.exp} (at most {MAX_DEGREE})", loc)
        stack.extend(node.args)
    return value


def _check_brackets(text: str, loc: Location | None) -> None:
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                where = loc.shifted(index) if loc else None
                raise ExprError(f"brackets nested deeper than {MAX_BRACKET_DEPTH}", where)
        elif char in ")]}":
            depth -= 1


class _Builder:
    def __init__(self, names: Mapping[str, sympy.Basic], loc: Location | None, allow_compare: bool, text: str = ""):
        self.names = names
        self.text = text
        self.loc = loc
        self.allow_compare = allow_compare

    def _at(self, node: ast.AST) -> Location | None:
        return self.loc.shifted(getattr(node, "col_offset", 0)) if self.loc else None

    def fail(self, message: str, node: ast.AST) -> ExprError:
        col = getattr(node, "col_offset", 0)
        return ExprError(message, self.loc.shifted(col) if self.loc else None)

    def build(self, node: ast.AST, depth: int) -> sympy.Basic:
        if depth > MAX_AST_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_AST_DEPTH}", node)
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(f"{_describe(node)} is not allowed in an expression", node)
        value = method(node, depth + 1)
        if isinstance(value, sympy.Basic):
            check_size(value, self._at(node))
        return value

    def _Constant(self, node: ast.Constant, depth: int) -> sympy.Basic:
        value = node.value
        if type(value) is float:
            return self._decimal(node)
        if type(value) is not int:
            raise self.fail(f"only integer literals are allowed, not {type(value).__name__} {value!r}", node)
        if abs(value) > MAX_LITERAL:
            raise self.fail("integer literal too large", node)
        return sympy.Integer(value)

    def _decimal(self, node: ast.Constant) -> sympy.Basic:
        """``1.1`` is 11/10, read from the literal's own text: a float would be 1.100000000000000088..."""
        written = (ast.get_source_segment(self.text, node) or "").strip()
        if not _DECIMAL.match(written):
            raise self.fail(
                f"write the number {written or node.value!r} as a decimal like 0.001, not in exponent notation", node
            )
        whole, _, decimals = written.replace("_", "").partition(".")
        if len(decimals) > MAX_DECIMALS:
            raise self.fail(f"a decimal literal may have at most {MAX_DECIMALS} digits after the point", node)
        value = Fraction(int(whole or "0") * 10 ** len(decimals) + int(decimals or "0"), 10 ** len(decimals))
        if abs(value) > MAX_LITERAL:
            raise self.fail("decimal literal too large", node)
        return _as_number(value)

    def _Name(self, node: ast.Name, depth: int) -> sympy.Basic:
        name = node.id
        if name.startswith("_"):
            raise self.fail(f"names starting with '_' are not allowed: {name!r}", node)
        if name in self.names:
            return self.names[name]
        if name in FUNCTIONS:
            raise self.fail(f"'{name}' is a function: call it as {name}(...)", node)
        raise self.fail(f"unknown name '{name}'{did_you_mean(name, self.names)}", node)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> sympy.Basic:
        operand = self.build(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return -self._number(operand, node)
        if isinstance(node.op, ast.UAdd):
            return self._number(operand, node)
        if isinstance(node.op, ast.Not) and self.allow_compare:
            return sympy.Not(self._boolean(operand, node))
        raise self.fail(f"operator {_describe(node.op)} is not allowed", node)

    def _BinOp(self, node: ast.BinOp, depth: int) -> sympy.Basic:
        op = type(node.op)
        if op in _BINOPS:
            # a chain a + b - c + ... (or a * b * ...) is one level however long: Python's ast nests it
            # to the left, which is width, not depth; walk it in a loop, not by recursion.
            family = (ast.Add, ast.Sub) if op in (ast.Add, ast.Sub) else (ast.Mult,)
            chain = []
            head: ast.AST = node
            while isinstance(head, ast.BinOp) and isinstance(head.op, family):
                chain.append(head)
                head = head.left
            value = self._number(self.build(head, depth), head)
            for link in reversed(chain):
                right = self._number(self.build(link.right, depth), link.right)
                value = _BINOPS[type(link.op)](value, right)
                if value.is_Rational:  # a symbolic chain is checked once, whole, by build()
                    check_size(value, self._at(link))
            return value
        left = self._number(self.build(node.left, depth), node.left)
        right = self._number(self.build(node.right, depth), node.right)
        if op in (ast.Div, ast.FloorDiv, ast.Mod) and right == 0:
            raise self.fail("division by zero", node)
        if op is ast.Div:
            return left / right
        if op is ast.FloorDiv:
            return sympy.floor(left / right)
        if op is ast.Mod:
            return sympy.Mod(left, right)
        if op is ast.Pow:
            if not (right.is_Integer and 0 <= int(right) <= MAX_EXPONENT):
                raise self.fail(f"exponent must be an integer literal from 0 to {MAX_EXPONENT}", node.right)
            return left**right
        raise self.fail(f"operator {_describe(node.op)} is not allowed", node)

    def _Call(self, node: ast.Call, depth: int) -> sympy.Basic:
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"calling through {_describe(node.func)} is not allowed in an expression", node)
        if node.func.id not in FUNCTIONS:
            shown = node.func.id
            known = did_you_mean(shown, FUNCTIONS)
            raise self.fail(f"unknown function {shown!r}{known}; allowed: {', '.join(FUNCTIONS)}", node)
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node)
        function, fewest, most = FUNCTIONS[node.func.id]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            raise self.fail(
                f"{node.func.id}() takes {fewest}{'' if most == fewest else '+'} argument(s), got {count}", node
            )
        args = [self._number(self.build(arg, depth), arg) for arg in node.args]
        try:
            return function(*args)
        except ExprError as exc:  # ceil_div(4, 0): located at the call
            raise self.fail(exc.message, node) from None

    def _Compare(self, node: ast.Compare, depth: int) -> sympy.Basic:
        if not self.allow_compare:
            raise self.fail("comparisons are allowed only in constraints", node)
        terms = [self._number(self.build(node.left, depth), node.left)]
        terms += [self._number(self.build(c, depth), c) for c in node.comparators]
        parts = []
        for op, left, right in zip(node.ops, terms, terms[1:]):
            if type(op) not in _COMPARE:
                raise self.fail(f"comparison {_describe(op)} is not allowed", node)
            parts.append(_COMPARE[type(op)](left, right))
        return sympy.And(*parts) if len(parts) > 1 else parts[0]

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> sympy.Basic:
        if not self.allow_compare:
            raise self.fail("'and'/'or' are allowed only in constraints", node)
        values = [self._boolean(self.build(v, depth), v) for v in node.values]
        return sympy.And(*values) if isinstance(node.op, ast.And) else sympy.Or(*values)

    def _number(self, value: sympy.Basic, node: ast.AST) -> sympy.Expr:
        if not isinstance(value, sympy.Expr):
            raise self.fail("a comparison cannot be used as a number", node)
        return value

    def _boolean(self, value: sympy.Basic, node: ast.AST) -> sympy.Basic:
        # A number in a condition is true when non-zero, so a 0/1 flag reads as itself: "s == 1 and flag".
        if isinstance(value, sympy.Expr):
            return sympy.Ne(value, 0)
        return value


def _describe(node: ast.AST) -> str:
    names = {
        "Attribute": "attribute access (a.b)",
        "Subscript": "subscript (a[b])",
        "Lambda": "lambda",
        "ListComp": "a list comprehension",
        "SetComp": "a set comprehension",
        "DictComp": "a dict comprehension",
        "GeneratorExp": "a generator expression",
        "IfExp": "a conditional expression",
        "JoinedStr": "an f-string",
        "Starred": "star-unpacking",
        "NamedExpr": "assignment (:=)",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "List": "a list",
        "Tuple": "a tuple",
        "Dict": "a dict",
        "Set": "a set",
        "Slice": "a slice",
        "BitAnd": "&",
        "BitOr": "|",
        "BitXor": "^",
        "LShift": "<<",
        "RShift": ">>",
        "MatMult": "@",
        "Invert": "~",
        "Is": "is",
        "IsNot": "is not",
        "In": "in",
        "NotIn": "not in",
        "Not": "not",
    }
    return names.get(type(node).__name__, type(node).__name__)


class Substitution:
    """``expr.xreplace(subs)`` with one cache shared by every expression of a graph.

    A layer's sizes after a chain of ceil-mode pools are deep trees of floor, min and max, and
    every later layer's costs repeat them: GoogLeNet's nodes share a few hundred subtrees that
    plain xreplace re-evaluates for each node. Evaluating each distinct subtree once makes the
    numeric path linear in the graph's size; one layer's costs share their output sizes likewise.

    >>> import sympy
    >>> H = sympy.Symbol("H", integer=True, positive=True)
    >>> at = Substitution({H: sympy.Integer(224)})
    >>> at(sympy.floor(H / 2) + 1), at(sympy.floor(H / 2) * 3)
    (113, 336)
    """

    def __init__(self, subs: Mapping[sympy.Basic, sympy.Basic]):
        self.cache: dict[sympy.Basic, sympy.Basic] = dict(subs)

    def __call__(self, expression: sympy.Basic) -> sympy.Basic:
        known = self.cache.get(expression)
        if known is not None:
            return known
        if not expression.args:
            return expression
        args = tuple(self(arg) for arg in expression.args)
        try:
            value = expression.func(*args) if args != expression.args else expression
        except ZeroDivisionError:  # sympy's Mod(8, 0)
            raise ExprError("division by zero (a divisor is 0 at these values)") from None
        if value is sympy.zoo or value is sympy.nan:  # 8/(k - 1) at k = 1
            raise ExprError("division by zero (a divisor is 0 at these values)")
        self.cache[expression] = value
        return value
