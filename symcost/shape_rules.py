"""Output shapes of the ops whose shapes no fixed pattern can state: torch's shape ops and broadcasting.

A formula with ``shape_rule: NAME`` (``formulas/reshape.yaml``, ``permute``, ``cat``, ``add`` ...) gets
its output shapes in an architecture from the rule ``NAME`` here, with torch's semantics: the same
arguments (``shape``, ``dims``, ``dim``, ``sizes``, ``keepdim`` ...), negative dims counted from the
end, one ``-1`` inferred, and a refusal (a located error) exactly where torch refuses. A rule also
binds the formula's symbols (``numel``, ``numel_a`` ...), so that its costs follow from the formula file.

>>> import sympy
>>> N = sympy.Symbol("N", integer=True, positive=True)
>>> call = RuleCall("layer 'v' (reshape)", None, ((N, sympy.Integer(4), sympy.Integer(6)),), ("x",),
...                 {"shape": ["N", -1]}, {"N": N})
>>> RULES["reshape"](call).outputs
{'y': (N, 24)}

Sizes may be symbolic; what cannot be decided until values are bound (``C % 4 == 0``) becomes a
check that :func:`symcost.compile.evaluate` applies with the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy

from . import expr
from .errors import Location, ShapeError

Shape = tuple[sympy.Expr, ...]


#: Two dims are compared by expanding their difference; one whose expansion would exceed this many
#: terms ((H + W + 1)**256 has 33,153) is left undecided, to be checked at the values, instead.
MAX_EXPANDED_TERMS = 20_000


def expanded_terms(e: sympy.Basic) -> int:
    """An upper bound on the number of terms of ``sympy.expand(e)``, computed without expanding.

    >>> H, W = sympy.symbols("H W")
    >>> expanded_terms((H + W + 1) ** 2), expanded_terms((H + 1) * (W + 1)), expanded_terms((H + W + 1) ** 256)
    (6, 4, 33153)
    """
    import math

    if e.is_Add:
        return sum(expanded_terms(a) for a in e.args)
    if e.is_Mul:
        total = 1
        for factor in e.args:
            total *= expanded_terms(factor)
            if total > 10 * MAX_EXPANDED_TERMS:
                break
        return total
    if e.is_Pow and e.exp.is_Integer and e.exp > 1:
        k, n = expanded_terms(e.base), int(e.exp)
        if k == 1:
            return 1
        return math.comb(n + k - 1, k - 1) if k <= 64 else 10 * MAX_EXPANDED_TERMS
    return 1


def equal(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    """True/False when sympy can decide that two dims are (un)equal, else None (also when deciding
    would mean expanding past :data:`MAX_EXPANDED_TERMS` terms)."""
    if a == b:
        return True
    if a.is_Rational and b.is_Rational:
        return False
    if expanded_terms(a) + expanded_terms(b) > MAX_EXPANDED_TERMS:
        return None
    difference = sympy.expand(a - b)
    if difference == 0:
        return True
    if difference.is_number:
        return False
    if difference.is_zero is False:
        return False
    return None


def show(shape: Sequence[Any]) -> str:
    """``[1, 64, H/2, W/2]``: a shape as torch prints its sizes, symbols kept."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass
class RuleResult:
    outputs: dict[str, Shape]
    symbols: dict[str, sympy.Expr]
    checks: list[tuple[sympy.Basic, str | Callable[[], str]]] = field(default_factory=list)


@dataclass
class RuleCall:
    """One layer's call of a rule: its input shapes and its arguments as written."""

    where: str  # "layer 'blocks.0.attn.qkv' (reshape)"
    loc: Location | None
    inputs: tuple[Shape, ...]
    input_names: tuple[str, ...]
    args: Mapping[str, Any]  # raw YAML values of the rule arguments (defaults filled in)
    names: Mapping[str, sympy.Basic]  # variables and block arguments, for expressions
    checks: list[tuple[sympy.Basic, str | Callable[[], str]]] = field(default_factory=list)

    # ---- errors and checks -----------------------------------------------------------
    def fail(self, message: str) -> ShapeError:
        return ShapeError(f"{self.where}: {message}", self.loc)

    # Messages are built only when needed (a callable): printing symbolic shapes for checks that
    # pass would cost more than the whole shape propagation of a large model.
    def require(self, condition: sympy.Basic, message: str | Callable[[], str]) -> None:
        """Refuse now where ``condition`` is false; check it once values are bound where undecided."""
        if isinstance(condition, bool):
            condition = sympy.true if condition else sympy.false
        if condition is sympy.true:
            return
        if condition is sympy.false:
            raise self.fail(message() if callable(message) else message)
        self.checks.append((condition, message))  # the message is built if the check ever fails

    def same(self, a: sympy.Expr, b: sympy.Expr, message: str | Callable[[], str]) -> None:
        verdict = equal(a, b)
        if verdict is True:
            return
        # undecided: keep the equation as written; evaluating it again would redo equal()'s work
        self.require(sympy.false if verdict is False else sympy.Eq(a, b, evaluate=False), message)

    # ---- arguments ---------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return self.args.get(key) is not None

    def expr(self, key: str, raw: Any = None) -> sympy.Expr:
        raw = self.args.get(key) if raw is None else raw
        if isinstance(raw, bool):
            raise self.fail(f"'{key}' must be an integer, got {str(raw).lower()}")
        if raw is None:
            raise self.fail(f"needs '{key}'")
        return expr.parse(raw, self.names, loc=self.loc)

    def number(self, key: str, raw: Any = None) -> int:
        """An argument that must be a number when the graph is built (a dim index, a count)."""
        value = self.expr(key, raw)
        if not value.is_Integer:
            raise self.fail(f"'{key}' must be a whole number once block arguments are known, got {value}")
        return int(value)

    def exprs(self, key: str) -> list[sympy.Expr]:
        raw = self.args.get(key)
        if raw is None:
            raise self.fail(f"needs '{key}'")
        items = raw if isinstance(raw, list) else [raw]
        return [self.expr(key, item) for item in items]

    def numbers(self, key: str) -> list[int]:
        raw = self.args.get(key)
        if raw is None:
            raise self.fail(f"needs '{key}'")
        items = raw if isinstance(raw, list) else [raw]
        return [self.number(key, item) for item in items]

    def flag(self, key: str) -> bool:
        raw = self.args.get(key)
        if raw is None:
            return False
        if isinstance(raw, bool):
            return raw
        value = self.expr(key)
        if value not in (0, 1):
            raise self.fail(f"'{key}' must be true or false, got {raw!r}")
        return bool(value)

    def dim(self, value: int, rank: int, key: str = "dim") -> int:
        """torch's dim wrapping: -1 is the last of ``rank`` dims; out of range is torch's error."""
        if not -rank <= value < rank:
            raise self.fail(
                f"{key} {value} is out of range for a {rank}-D input {show(self.inputs[0])} "
                f"(torch: expected a dim in [{-rank}, {rank - 1}])"
            )
        return value % rank

    def one(self) -> Shape:
        if len(self.inputs) != 1:
            raise self.fail(f"takes 1 input, got {len(self.inputs)}")
        return self.inputs[0]


def _numel(shape: Sequence[sympy.Expr]) -> sympy.Expr:
    return sympy.Mul(*shape) if shape else sympy.Integer(1)


def _view(call: RuleCall, out: Shape, **extra: sympy.Expr) -> RuleResult:
    """A view or a copy of the one input: its costs need only ``numel``."""
    return RuleResult({"y": tuple(out)}, {"numel": _numel(call.inputs[0]), **extra}, call.checks)


# ---- reshape and friends ------------------------------------------------------------------


def _infer(call: RuleCall, sizes: list[sympy.Expr], numel: sympy.Expr, what: str) -> list[sympy.Expr]:
    """Sizes with one ``-1`` inferred so that their product is ``numel`` (torch.Tensor.view's rule)."""
    holes = [i for i, s in enumerate(sizes) if s == -1]
    if len(holes) > 1:
        raise call.fail(f"{what}only one dimension can be inferred (-1), got {show(sizes)}")
    for size in sizes:
        if size.is_number and size != -1 and (size < 1 or not size.is_Integer):
            raise call.fail(f"{what}invalid size {size} in {show(sizes)}: sizes are whole numbers >= 1 (or one -1)")
        if not size.is_number and size.is_integer is not True:  # d/heads: whole only for some values
            call.require(
                sympy.Eq(sympy.floor(size), size, evaluate=False),
                lambda size=size: f"{what}invalid size {size} in {show(sizes)}: sizes are whole numbers >= 1",
            )
    known = _numel([s for s in sizes if s != -1])
    if holes:
        inferred = sympy.cancel(numel / known)
        if inferred.is_number and not inferred.is_Integer:
            raise call.fail(f"shape {show(sizes)} is invalid for input of size {numel} (torch's view rule)")
        if not inferred.is_number and inferred.is_integer is not True:
            call.require(
                sympy.Eq(sympy.Mod(numel, known), 0), lambda: f"shape {show(sizes)} must divide {numel} elements"
            )
            inferred = numel / known
        sizes = [inferred if i == holes[0] else s for i, s in enumerate(sizes)]
    else:
        call.same(_numel(sizes), numel, lambda: f"shape {show(sizes)} is invalid for input of size {numel}")
    return sizes


def reshape(call: RuleCall) -> RuleResult:
    """torch.reshape / Tensor.view: ``shape: [N, -1, heads, head_dim]``, one -1 inferred."""
    x = call.one()
    return _view(call, tuple(_infer(call, call.exprs("shape"), _numel(x), "")))


def flatten(call: RuleCall) -> RuleResult:
    """torch.flatten(x, start_dim, end_dim): dims start..end become one."""
    x = call.one()
    start = call.dim(call.number("start_dim"), len(x), "start_dim")
    end = call.dim(call.number("end_dim"), len(x), "end_dim")
    if start > end:
        raise call.fail(f"flatten() has invalid args: start_dim {start} cannot come after end_dim {end}")
    return _view(call, (*x[:start], _numel(x[start : end + 1]), *x[end + 1 :]))


def unflatten(call: RuleCall) -> RuleResult:
    """torch.unflatten(x, dim, sizes): one dim becomes several (one -1 inferred)."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    sizes = _infer(call, call.exprs("sizes"), x[d], f"unflatten of dim {d} ({x[d]}): ")
    return _view(call, (*x[:d], *sizes, *x[d + 1 :]))


def permute(call: RuleCall) -> RuleResult:
    """torch.permute(x, dims): every dim exactly once, in a new order."""
    x = call.one()
    dims = call.numbers("dims")
    if len(dims) != len(x):
        raise call.fail(f"number of dims don't match: dims {dims} for a {len(x)}-D input {show(x)} (torch's rule)")
    wrapped = [call.dim(d, len(x), "dims entry") for d in dims]
    if len(set(wrapped)) != len(wrapped):
        raise call.fail(f"repeated dim in {dims}")
    return _view(call, tuple(x[d] for d in wrapped))


def transpose(call: RuleCall) -> RuleResult:
    """torch.transpose(x, dim0, dim1): two dims swapped."""
    x = list(call.one())
    a = call.dim(call.number("dim0"), len(x), "dim0")
    b = call.dim(call.number("dim1"), len(x), "dim1")
    x[a], x[b] = x[b], x[a]
    return _view(call, tuple(x))


def squeeze(call: RuleCall) -> RuleResult:
    """torch.squeeze(x[, dim]): drops size-1 dims (only the named ones, where they are 1)."""
    x = call.one()
    if call.has("dim"):
        listed = [call.dim(d, len(x)) for d in call.numbers("dim")]
        if len(set(listed)) != len(listed):
            raise call.fail(f"a dim appears more than once in {call.args['dim']}")
        dims = set(listed)
    else:
        dims = set(range(len(x)))
    keep = []
    for index, size in enumerate(x):
        if index in dims:
            if not size.is_number:
                raise call.fail(
                    f"dim {index} of {show(x)} is {size}, not a number: whether it is dropped depends on "
                    "its value; name the dims to squeeze where they are 1"
                )
            if size == 1:
                continue
        keep.append(size)
    return _view(call, tuple(keep))


def unsqueeze(call: RuleCall) -> RuleResult:
    """torch.unsqueeze(x, dim): a new size-1 dim at ``dim`` (of the result)."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x) + 1)
    return _view(call, (*x[:d], sympy.Integer(1), *x[d:]))


def expand(call: RuleCall) -> RuleResult:
    """Tensor.expand(sizes): size-1 dims broadcast (a view); -1 keeps a dim; new leading dims allowed."""
    x = call.one()
    sizes = call.exprs("sizes")
    if len(sizes) < len(x):
        raise call.fail(f"the number of sizes ({len(sizes)}) must be at least the input's dims ({len(x)}) {show(x)}")
    lead = len(sizes) - len(x)
    out = []
    for index, size in enumerate(sizes):
        if index < lead:
            if size == -1:
                raise call.fail(f"-1 is not allowed in a new leading dim ({index})")
            out.append(size)
            continue
        have = x[index - lead]
        if size == -1 or equal(size, have) is True:
            out.append(have)
        elif have == 1:
            out.append(size)
        else:
            call.same(
                size,
                have,
                lambda size=size, have=have, index=index: (
                    f"the expanded size {size} must match the existing size {have} at non-singleton dim {index}"
                ),
            )
            out.append(have)
    return _view(call, tuple(out))


# ---- pieces: split, chunk, unbind, slices --------------------------------------------------


def _pieces(call: RuleCall, x: Shape, d: int, sizes: list[sympy.Expr]) -> RuleResult:
    outputs = {str(i): (*x[:d], size, *x[d + 1 :]) for i, size in enumerate(sizes)}
    return RuleResult(outputs, {"numel": _numel(x)}, call.checks)


def split(call: RuleCall) -> RuleResult:
    """torch.split(x, size or sizes, dim): pieces named NAME.0, NAME.1, ... (views)."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    if call.has("sizes") == call.has("size"):
        raise call.fail("give 'size' (each piece, the last may be smaller) or 'sizes' (a list), not both")
    if call.has("sizes"):
        sizes = call.exprs("sizes")
        call.same(
            sum(sizes, sympy.Integer(0)),
            x[d],
            lambda: f"sizes {show(sizes)} must sum to dim {d}'s size {x[d]} of {show(x)}",
        )
        return _pieces(call, x, d, sizes)
    size = call.expr("size")
    total = x[d]
    if total.is_number and size.is_number:
        full, rest = divmod(int(total), int(size))
        sizes = [size] * full + ([sympy.Integer(rest)] if rest else [])
        return _pieces(call, x, d, sizes)
    count = sympy.cancel(total / size)
    if not count.is_Integer:
        raise call.fail(f"how many pieces of {size} dim {d} ({total}) gives must be a number; use 'sizes' or 'chunk'")
    call.require(sympy.Eq(sympy.Mod(total, size), 0), lambda: f"{size} must divide dim {d} ({total})")
    return _pieces(call, x, d, [size] * int(count))


def chunk(call: RuleCall) -> RuleResult:
    """torch.chunk(x, chunks, dim): pieces of ceil(size/chunks); fewer pieces where torch gives fewer."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    chunks = call.number("chunks")
    if chunks < 1:
        raise call.fail(f"chunk expects 'chunks' to be greater than 0, got {chunks}")
    total = x[d]
    if total.is_number:
        each = -(-int(total) // chunks)
        full, rest = divmod(int(total), each)
        return _pieces(call, x, d, [sympy.Integer(each)] * full + ([sympy.Integer(rest)] if rest else []))
    call.require(
        sympy.Eq(sympy.Mod(total, chunks), 0),
        lambda: f"dim {d} ({total}) must be divisible by {chunks} to give {chunks} equal chunks",
    )
    return _pieces(call, x, d, [total / chunks] * chunks)


def unbind(call: RuleCall) -> RuleResult:
    """torch.unbind(x, dim): one piece per index of ``dim``, that dim removed."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    if not x[d].is_number:
        raise call.fail(f"dim {d} is {x[d]}; the number of pieces must be a number")
    out = (*x[:d], *x[d + 1 :])
    return RuleResult({str(i): out for i in range(int(x[d]))}, {"numel": _numel(x)}, call.checks)


def _position(value: sympy.Expr, size: sympy.Expr) -> sympy.Expr:
    """A start or end index: negative numbers count from the end, as in Python slicing."""
    if value.is_number and value < 0:
        value = size + value
    return value


def slice_(call: RuleCall) -> RuleResult:
    """x[..., start:end:step, ...] on one dim (torch.Tensor slicing): a view."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    size = x[d]
    start = _position(call.expr("start"), size)
    end = _position(call.expr("end"), size) if call.has("end") else size
    step = call.number("step")
    if step < 1:
        raise call.fail(f"slice step must be positive, got {step}")
    if start.is_number and size.is_number:
        start = min(max(start, 0), size)
    if end.is_number and size.is_number:
        end = min(max(end, 0), size)
    if end is not size:
        call.require(sympy.Le(end, size), lambda: f"slice end {end} must be at most dim {d}'s size {size}")
    length = sympy.ceiling((end - start) / step)
    call.require(sympy.Ge(length, 1), lambda: f"slice {start}:{end}:{step} of dim {d} ({size}) would be empty")
    return _view(call, (*x[:d], length, *x[d + 1 :]))


def narrow(call: RuleCall) -> RuleResult:
    """torch.narrow(x, dim, start, length): a view of ``length`` positions from ``start``."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    start = _position(call.expr("start"), x[d])
    length = call.expr("length")
    call.require(
        sympy.Le(start + length, x[d]), lambda: f"start ({start}) + length ({length}) exceeds dim {d} ({x[d]})"
    )
    return _view(call, (*x[:d], length, *x[d + 1 :]))


def select(call: RuleCall) -> RuleResult:
    """torch.select(x, dim, index) (x[:, i]): one position of ``dim``, that dim removed (a view)."""
    x = call.one()
    d = call.dim(call.number("dim"), len(x))
    index = call.expr("index")
    size = x[d]
    if index.is_number:
        if size.is_number and not -size <= index < size:
            raise call.fail(f"index {index} is out of range for dim {d} of size {size}")
        if index >= 0:
            call.require(sympy.Lt(index, size), lambda: f"index {index} must be less than dim {d}'s size {size}")
        else:
            call.require(sympy.Le(-index, size), lambda: f"index {index} must be at least -{size}")
    out = (*x[:d], *x[d + 1 :])
    return _view(call, out)


def index_select(call: RuleCall) -> RuleResult:
    """torch.index_select(x, dim, index): a gather along ``dim`` by a 1-D index tensor (a copy)."""
    if len(call.inputs) != 2:
        raise call.fail(f"takes 2 inputs (x and a 1-D index tensor), got {len(call.inputs)}")
    x, index = call.inputs
    if len(index) != 1:
        raise call.fail(f"the index must be 1-D, got {show(index)}")
    d = call.dim(call.number("dim"), len(x))
    out = (*x[:d], index[0], *x[d + 1 :])
    return RuleResult({"y": out}, {"numel": _numel(out), "indices": index[0]}, call.checks)


# ---- joins --------------------------------------------------------------------------------


def _join(call: RuleCall, stack: bool) -> RuleResult:
    if not call.inputs:
        raise call.fail("needs at least one input tensor")
    first = call.inputs[0]
    for shape, name in zip(call.inputs, call.input_names):
        if len(shape) != len(first):
            raise call.fail(
                f"every tensor must have the same number of dims: '{call.input_names[0]}' {show(first)} "
                f"has {len(first)}, '{name}' {show(shape)} has {len(shape)}"
            )
    rank = len(first) + 1 if stack else len(first)
    d = call.dim(call.number("dim"), rank)
    for shape, name in zip(call.inputs, call.input_names):
        for index, (a, b) in enumerate(zip(first, shape)):
            if index == d and not stack:
                continue

            def message(shape=shape, name=name, index=index, a=a, b=b) -> str:
                pair = f"'{call.input_names[0]}' {show(first)} and '{name}' {show(shape)} differ in dim {index}"
                if stack:
                    return f"stack expects each tensor to be equal size: {pair}"
                return f"sizes of tensors must match except in dim {d}: {pair} ({a} vs {b})"

            call.same(a, b, message)
    if stack:
        out = (*first[:d], sympy.Integer(len(call.inputs)), *first[d:])
    else:
        joined = sympy.Add(*(shape[d] for shape in call.inputs))
        out = (*first[:d], joined, *first[d + 1 :])
    return RuleResult({"y": out}, {"numel": _numel(out)}, call.checks)


def cat(call: RuleCall) -> RuleResult:
    """torch.cat(tensors, dim): any number of tensors, equal except in ``dim``."""
    return _join(call, stack=False)


def stack(call: RuleCall) -> RuleResult:
    """torch.stack(tensors, dim): equal shapes, a new dim of size len(tensors)."""
    return _join(call, stack=True)


# ---- copies that keep or regroup the elements ---------------------------------------------

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(call: RuleCall) -> RuleResult:
    """torch.nn.functional.pad(x, pad, mode): ``pad`` lists (left, right) pairs from the last dim back."""
    x = call.one()
    amounts = call.exprs("pad")
    mode = call.args.get("mode") or "constant"
    if mode not in _PAD_MODES:
        raise call.fail(f"pad mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
    if len(amounts) % 2 or len(amounts) // 2 > len(x):
        raise call.fail(
            f"pad: the padding length must be even and at most twice the input's dims, got {len(amounts)} for {show(x)}"
        )
    padded = len(amounts) // 2
    if mode != "constant" and not (1 <= padded <= 3 and len(x) in (padded + 1, padded + 2)):
        raise call.fail(
            f"pad mode '{mode}' pads the last 1, 2 or 3 dims of an input with one or two more dims "
            f"(torch's rule), got {padded} for {show(x)}"
        )
    out = list(x)
    for pair in range(len(amounts) // 2):
        d = len(x) - 1 - pair
        left, right = amounts[2 * pair], amounts[2 * pair + 1]
        if mode == "reflect":
            call.require(
                sympy.And(sympy.Lt(left, x[d]), sympy.Lt(right, x[d])),
                lambda left=left, right=right, d=d: (
                    f"pad mode 'reflect': padding ({left}, {right}) must be less than dim {d}'s size {x[d]}"
                ),
            )
        if mode == "circular":
            call.require(
                sympy.And(sympy.Le(left, x[d]), sympy.Le(right, x[d])),
                lambda left=left, right=right, d=d: (
                    f"pad mode 'circular': padding ({left}, {right}) must be at most dim {d}'s size {x[d]}"
                ),
            )
        if mode != "constant":
            for amount in (left, right):
                if amount.is_number and amount < 0:
                    raise call.fail(f"pad mode '{mode}' takes no negative padding, got {amount}")
        out[d] = x[d] + left + right
        call.require(sympy.Ge(out[d], 1), lambda d=d: f"pad: dim {d} would have size {out[d]}")
    result = _view(call, tuple(out))
    result.symbols["numel_out"] = _numel(out)
    return result


def same_shape(call: RuleCall) -> RuleResult:
    """roll, contiguous, channel_shuffle: the same shape, every element copied."""
    x = call.one()
    if call.has("groups"):
        groups = call.expr("groups")
        if len(x) < 3:
            raise call.fail(f"channel_shuffle needs an input of at least 3 dims [N, C, *], got {show(x)}")
        call.require(sympy.Eq(sympy.Mod(x[1], groups), 0), lambda: f"{groups} groups must divide C = {x[1]}")
    if call.has("shifts"):
        shifts = call.exprs("shifts")
        dims = call.numbers("dims") if call.has("dims") else []
        if dims and len(dims) != len(shifts):
            raise call.fail(f"roll: shifts {len(shifts)} and dims {len(dims)} must be the same length")
        for d in dims:
            call.dim(d, len(x), "dims entry")
    return _view(call, x)


def pixel_shuffle(call: RuleCall) -> RuleResult:
    """torch.nn.PixelShuffle(r): [*, C*r^2, H, W] -> [*, C, H*r, W*r] (a copy)."""
    x = call.one()
    if len(x) < 3:
        raise call.fail(f"pixel_shuffle expects an input of at least 3 dims, got {show(x)}")
    r = call.expr("upscale_factor")
    c, h, w = x[-3:]
    call.require(sympy.Eq(sympy.Mod(c, r**2), 0), lambda: f"channels {c} must be divisible by {r}^2")
    return _view(call, (*x[:-3], c / r**2, h * r, w * r))


def pixel_unshuffle(call: RuleCall) -> RuleResult:
    """torch.nn.PixelUnshuffle(r): [*, C, H*r, W*r] -> [*, C*r^2, H, W] (a copy)."""
    x = call.one()
    if len(x) < 3:
        raise call.fail(f"pixel_unshuffle expects an input of at least 3 dims, got {show(x)}")
    r = call.expr("downscale_factor")
    c, h, w = x[-3:]
    call.require(sympy.Eq(sympy.Mod(h, r), 0), lambda: f"height {h} must be divisible by {r}")
    call.require(sympy.Eq(sympy.Mod(w, r), 0), lambda: f"width {w} must be divisible by {r}")
    return _view(call, (*x[:-3], c * r**2, h / r, w / r))


def reduce(call: RuleCall) -> RuleResult:
    """torch.mean/sum/amax/amin(x, dim, keepdim): the named dims reduced (all without ``dim``)."""
    x = call.one()
    dims = {call.dim(d, len(x)) for d in call.numbers("dim")} if call.has("dim") else set(range(len(x)))
    keepdim = call.flag("keepdim")
    out = tuple(sympy.Integer(1) if i in dims else s for i, s in enumerate(x) if keepdim or i not in dims)
    result = _view(call, out)
    result.symbols["numel_out"] = _numel(out)
    return result


# ---- broadcasting elementwise ops -----------------------------------------------------------


def broadcast_shapes(call: RuleCall, a: Shape, b: Shape, names: tuple[str, str]) -> Shape:
    """torch's broadcasting: align from the right; each pair equal, or one of them 1."""
    rank = max(len(a), len(b))
    pa = (sympy.Integer(1),) * (rank - len(a)) + tuple(a)
    pb = (sympy.Integer(1),) * (rank - len(b)) + tuple(b)
    out: list[sympy.Expr] = []
    # from the last dim back, as torch checks and reports ("at non-singleton dimension 3")
    for index in reversed(range(rank)):
        x, y = pa[index], pb[index]
        if x == 1:
            out.insert(0, y)
        elif y == 1:
            out.insert(0, x)
        else:
            call.same(
                x,
                y,
                lambda index=index, x=x, y=y: (
                    f"'{names[0]}' {show(a)} and '{names[1]}' {show(b)} do not broadcast: dim {index} is {x} vs {y} "
                    "(torch's rule: align shapes from the last dim; each pair of sizes must be equal, or one of them 1)"
                ),
            )
            out.insert(0, x)
    return tuple(out)


def broadcast(call: RuleCall) -> RuleResult:
    """add, sub, mul, div: two tensors broadcast by torch's rules; or a tensor and a learned tensor
    (``learned: [C, 1, 1]``: layer scale, a learned bias, a position embedding); or a tensor and a
    constant (``scalar: 0.5``)."""
    forms = [k for k in ("learned", "scalar") if call.has(k)]
    if len(forms) > 1:
        raise call.fail("give 'learned' (a parameter tensor's shape) or 'scalar' (a constant), not both")
    if forms:
        a = call.one()
        if forms[0] == "scalar":
            raw = call.args["scalar"]
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise call.fail(f"'scalar' is a number, got {raw!r}")
            if isinstance(raw, str):
                call.expr("scalar")  # an expression of the variables; its value changes no count
            return RuleResult(
                {"y": a}, {"numel": _numel(a), "numel_a": _numel(a), "numel_b": 0, "params_b": 0}, call.checks
            )
        learned = tuple(call.exprs("learned"))
        for size in learned:
            if size.is_number and size < 1:
                raise call.fail(f"'learned' is a shape of sizes >= 1, got {show(learned)}")
        out = broadcast_shapes(call, a, learned, (call.input_names[0], "learned"))
        numel_b = _numel(learned)
        symbols = {"numel": _numel(out), "numel_a": _numel(a), "numel_b": numel_b, "params_b": numel_b}
        return RuleResult({"y": out}, symbols, call.checks)
    if len(call.inputs) != 2:
        raise call.fail(
            f"takes 2 inputs, or 1 input with 'learned: [shape]' or 'scalar: value', got {len(call.inputs)}"
        )
    a, b = call.inputs
    out = broadcast_shapes(call, a, b, (call.input_names[0], call.input_names[1]))
    symbols = {"numel": _numel(out), "numel_a": _numel(a), "numel_b": _numel(b), "params_b": 0}
    return RuleResult({"y": out}, symbols, call.checks)


def tensor(call: RuleCall) -> RuleResult:
    """A learned or a stored tensor of a stated shape (``shape: [169, heads]``): Swin's relative
    position bias table, its index, an attention mask. It reads no input: its place in the layer
    list only orders it."""
    shape = tuple(call.exprs("shape"))
    for size in shape:
        if size.is_number and size < 1:
            raise call.fail(f"'shape' is a list of sizes >= 1, got {show(shape)}")
    return RuleResult({"y": shape}, {"numel": _numel(shape)}, call.checks)


RULES: dict[str, Callable[[RuleCall], RuleResult]] = {
    "reshape": reshape,
    "flatten": flatten,
    "unflatten": unflatten,
    "permute": permute,
    "transpose": transpose,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "expand": expand,
    "split": split,
    "chunk": chunk,
    "unbind": unbind,
    "slice": slice_,
    "narrow": narrow,
    "select": select,
    "index_select": index_select,
    "cat": cat,
    "stack": stack,
    "pad": pad,
    "same_shape": same_shape,
    "pixel_shuffle": pixel_shuffle,
    "pixel_unshuffle": pixel_unshuffle,
    "reduce": reduce,
    "broadcast": broadcast,
    "tensor": tensor,
}
