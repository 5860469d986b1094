"""A formula file → a frozen, validated :class:`Formula`; and its exact evaluation.

A formula is one primitive layer's cost as closed forms over named symbols: shape symbols
(``N``, ``C_in``, ``H`` ...), attribute symbols (``kernel_h``, ``groups``, ``bias`` ...) and
named intermediate quantities (``H_out``). The YAML grammar is documented in
``docs/formulas.md``; ``formulas/conv2d.yaml`` is the worked example.

>>> from symcost import formulas
>>> conv = formulas.conv2d
>>> r = conv.evaluate(N=1, C_in=3, H=224, W=224, C_out=64, kernel=3, stride=2, padding=1)
>>> r.outputs["y"], r.macs, r.flops, r.params
((1, 64, 112, 112), 21676032, 43352064, 1792)

(``112*112*64*3*3*3 = 21,676,032`` MACs; ``2x`` that is 43,352,064 FLOPs; ``64*3*3*3 + 64``
parameters.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy

from . import cost, expr
from .errors import FormulaError, Location, did_you_mean
from .expr import Variadic as Variadic  # a shape's ``*name``: part of the expression language
from .yamlio import Mapping as YMapping
from .yamlio import Sequence as YSequence
from .yamlio import check_keys, mapping_at, text_at, texts_at

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TOP_KEYS = {
    "name", "summary", "category", "doc", "symbols", "attributes", "inputs", "where",
    "constraints", "outputs", "costs", "elementwise", "notes", "sources", "torch",
    "no_torch_twin", "examples", "gemm", "peers", "shape_rule", "rule_args",
}  # fmt: skip
#: ``gemm``: how the layer's output is tiled by a GEMM kernel: ``batch`` independent ``M x N``
#: output matrices (for the opt-in tile/wave-quantization utilization of the roofline).
GEMM_KEYS = ("batch", "M", "N")
_SYMBOL_KEYS = {"doc", "test", "min", "arg"}
_RULE_ARG_KEYS = {"doc", "kind", "default"}
#: What a shape rule's argument holds (see :mod:`symcost.shape_rules`).
RULE_ARG_KINDS = {
    "dim": "one dim index, negative from the end (-1: the last)",
    "dims": "a dim index or a list of them",
    "size": "an integer expression",
    "sizes": "a list of integer expressions (-1: inferred, where the op allows it)",
    "number": "any number, integer or decimal (a constant that changes no count)",
    "text": "a word from the listed choices",
    "flag": "true or false",
}
_ATTR_KEYS = {"type", "axes", "min", "max", "default", "doc", "test"}
_TWIN_KEYS = {"module", "function", "builder", "args", "inputs", "note"}
_EXAMPLE_KEYS = {"set", "expect", "note"}

Shape = tuple[Any, ...]
"""A symbolic shape: sympy expressions, and at most one :class:`Variadic` for ``*name`` dims."""


@dataclass(frozen=True)
class ShapeSymbol:
    """A shape symbol (``N``, ``C_in``, ``H``): a positive integer with a meaning."""

    name: str
    doc: str
    symbol: sympy.Symbol
    test: tuple[int, int]
    #: The argument an architecture must state this size under, as torch requires it
    #: (``normalized_shape`` of nn.LayerNorm): a layer that leaves it out is an error, not a guess.
    arg: str | None = None


@dataclass(frozen=True)
class Attribute:
    """A layer attribute. Per-axis attributes (``axes: [h, w]``) own one symbol per axis."""

    name: str
    kind: str  # "int" | "bool"
    axes: tuple[str, ...]
    minimum: int | None
    maximum: int | None
    default: Any  # None: required; an int/bool, or a tuple per axis
    doc: str
    test: tuple[int, int]
    symbols: tuple[sympy.Symbol, ...]

    @property
    def symbol_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.symbols)

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class RuleArg:
    """An argument of a shape rule (``shape: [N, -1, 64]`` for reshape): read by the rule, not a symbol."""

    name: str
    kind: str  # a key of RULE_ARG_KINDS
    doc: str
    default: Any  # None: required (or optional where the rule says so); else the YAML value


@dataclass(frozen=True)
class Constraint:
    check: sympy.Basic
    text: str
    message: str
    loc: Location | None


@dataclass(frozen=True)
class TorchTwin:
    """How the tests build the same layer in torch (read by tests only, never by the engine)."""

    module: str | None
    function: str | None
    builder: str | None
    args: Mapping[str, Any]
    inputs: Mapping[str, Shape]
    note: str


@dataclass(frozen=True)
class Example:
    values: Mapping[str, Any]
    expect: Mapping[str, int]
    note: str


@dataclass(frozen=True)
class Evaluation:
    """Exact integer costs of one formula at one point. ``flops`` follows ``convention``."""

    formula: str
    values: Mapping[str, int]
    outputs: Mapping[str, tuple[int, ...]]
    macs: int
    flops: int
    params: int
    buffers: int
    read: int
    write: int
    elementwise: Mapping[str, int]
    convention: str
    cache: int = 0  # elements of state kept between calls (a KV cache)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The first (usually only) output's shape."""
        return next(iter(self.outputs.values()))

    def _repr_html_(self) -> str:  # Jupyter: a table of the exact counts
        from .display import evaluation_html

        return evaluation_html(self)

    def _repr_latex_(self) -> str:
        from .display import evaluation_latex

        return evaluation_latex(self)

    def as_dict(self) -> dict[str, Any]:
        return {
            "formula": self.formula,
            "convention": self.convention,
            "values": dict(self.values),
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "macs": self.macs,
            "flops": self.flops,
            "params": self.params,
            "buffers": self.buffers,
            "read": self.read,
            "write": self.write,
            "cache": self.cache,
            "elementwise": dict(self.elementwise),
        }


@dataclass(frozen=True, eq=False)
class Formula:
    """One primitive layer's costs in closed form. Load with :func:`symcost.registry.get`.

    Costs are sympy expressions in the formula's base symbols (``where`` quantities expanded),
    ready for ``sympy.solve``, ``diff`` or ``subs``; :attr:`symbols` maps names to the symbols.
    """

    name: str
    summary: str
    category: str
    doc: str
    path: str
    shape_symbols: Mapping[str, ShapeSymbol]
    attributes: Mapping[str, Attribute]
    inputs: Mapping[str, Shape]
    where: Mapping[str, tuple[sympy.Symbol, sympy.Expr]]  # name -> (symbol, compact definition)
    constraints: tuple[Constraint, ...]
    outputs_compact: Mapping[str, Shape]
    costs_compact: Mapping[str, sympy.Expr]
    elementwise_compact: Mapping[str, sympy.Expr]
    gemm_compact: Mapping[str, sympy.Expr]  # batch, M, N (empty: not a GEMM-class layer)
    peers_compact: Mapping[str, sympy.Expr]  # tool -> its count of this layer (cost.PEER_TOOLS)
    notes: tuple[str, ...]
    sources: tuple[str, ...]
    torch: TorchTwin | None
    no_torch_twin: str
    examples: tuple[Example, ...]
    _expand: Mapping[sympy.Symbol, sympy.Expr] = field(repr=False)
    #: The engine rule that gives this op's output shapes in an architecture (``symcost.shape_rules``):
    #: shape ops (reshape, permute, split, cat, ...) and broadcasting elementwise ops, whose output
    #: shapes no fixed pattern can state. ``inputs``/``outputs`` then state only what the costs need.
    shape_rule: str | None = None
    rule_args: Mapping[str, RuleArg] = field(default_factory=dict)

    # ---- notebook display (symcost.display) ---------------------------------------------
    def _repr_html_(self) -> str:  # Jupyter: summary, symbols, closed forms as `symcost derive` prints them
        from .display import formula_html

        return formula_html(self)

    def _repr_latex_(self) -> str:  # outputs and costs as one align* block (`derive --format latex`)
        from .display import formula_latex

        return formula_latex(self)

    # ---- symbols -------------------------------------------------------------------------
    @cached_property
    def symbols(self) -> dict[str, sympy.Symbol]:
        """Every free symbol a user may bind, by name: shapes first, then attributes."""
        out = {name: s.symbol for name, s in self.shape_symbols.items()}
        for attr in self.attributes.values():
            for sym in attr.symbols:
                out[sym.name] = sym
        return out

    def symbol_doc(self, name: str) -> str:
        if name in self.shape_symbols:
            return self.shape_symbols[name].doc
        for attr in self.attributes.values():
            if name in attr.symbol_names:
                if len(attr.axes) > 0:
                    return f"{attr.doc} (axis {name.rsplit('_', 1)[1]})"
                return attr.doc
        if name in self.where:
            return "derived: " + str(self.where[name][1])
        return ""

    # ---- closed forms (where-quantities expanded) ---------------------------------------
    def expand(self, e: Any) -> Any:
        """Replace ``where`` symbols (``H_out``) by their definitions in base symbols."""
        if isinstance(e, Variadic):
            return e
        return e.xreplace(self._expand) if isinstance(e, sympy.Basic) else e

    @cached_property
    def costs(self) -> dict[str, sympy.Expr]:
        return {k: self.expand(v) for k, v in self.costs_compact.items()}

    @cached_property
    def gemm(self) -> dict[str, sympy.Expr]:
        """The output as ``batch`` independent ``M x N`` GEMM outputs (empty if not GEMM-class)."""
        return {k: self.expand(v) for k, v in self.gemm_compact.items()}

    @cached_property
    def elementwise(self) -> dict[str, sympy.Expr]:
        return {k: self.expand(v) for k, v in self.elementwise_compact.items()}

    @cached_property
    def peers(self) -> dict[str, sympy.Expr]:
        """How thop, ptflops and fvcore count this layer, where that is not its ``macs``."""
        return {k: self.expand(v) for k, v in self.peers_compact.items()}

    @property
    def macs(self) -> sympy.Expr:
        return self.costs["macs"]

    @property
    def flops(self) -> sympy.Expr:
        """FLOPs under the default convention (``2 * macs``, FlopCounterMode's)."""
        return cost.flops(self.macs, self.elementwise)

    def flops_under(self, convention: cost.Convention) -> sympy.Expr:
        return cost.flops(self.macs, self.elementwise, convention, self.peers)

    @property
    def params(self) -> sympy.Expr:
        return self.costs["params"]

    @property
    def buffers(self) -> sympy.Expr:
        return self.costs["buffers"]

    @property
    def read(self) -> sympy.Expr:
        return self.costs["read"]

    @property
    def write(self) -> sympy.Expr:
        return self.costs["write"]

    @cached_property
    def outputs(self) -> dict[str, Shape]:
        return {k: tuple(self.expand(d) for d in v) for k, v in self.outputs_compact.items()}

    @property
    def output_shape(self) -> Shape:
        """The first (usually only) output's symbolic shape."""
        return next(iter(self.outputs.values()))

    # ---- binding values ------------------------------------------------------------------
    def normalize_values(
        self,
        values: Mapping[str, Any],
        *,
        partial: bool,
        defaults: bool = True,
        source: str = "",
        prefix: str | None = None,
    ) -> dict[str, Any]:
        """Map user names (``kernel=3``, ``kernel=(3, 5)``, ``kernel_h=3``) to symbol values.

        Values are ints/bools or sympy expressions (for symbolic binding). With ``defaults``,
        attribute defaults fill what is not given; with ``partial=False`` every symbol must end
        up bound. The one attribute binder: ``derive --set``, ``formula.evaluate`` and an
        architecture's layers (``shapes.bind_formula``, whose messages start with ``prefix``,
        "layer 'fc' (linear): ") all check values here, with the same words.
        """
        where = f"{source}: " if source else ""
        if prefix is not None:
            where = prefix
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key in self.attributes:
                attr = self.attributes[key]
                if attr.axes and isinstance(value, (tuple, list)):
                    if len(value) != len(attr.axes):
                        raise FormulaError(
                            f"{where}{self.name}: attribute '{key}' takes {len(attr.axes)} values "
                            f"({', '.join(attr.symbol_names)}), got {len(value)}"
                        )
                    for name, item in zip(attr.symbol_names, value):
                        out[name] = item
                else:
                    for name in attr.symbol_names:
                        out[name] = value
            elif key in self.symbols:
                out[key] = value
            else:
                known = list(self.symbols) + list(self.attributes)
                raise FormulaError(f"{where}{self.name}: unknown name '{key}'{did_you_mean(key, known)}")
        if defaults:
            for attr in self.attributes.values():
                if attr.default is None:
                    continue
                if isinstance(attr.default, str):  # another attribute's value, axis by axis
                    for name, ref in zip(attr.symbol_names, self.attributes[attr.default].symbol_names):
                        if ref in out:
                            out.setdefault(name, out[ref])
                    continue
                for name in attr.symbol_names:
                    out.setdefault(name, attr.default)
        for name, value in out.items():
            out[name] = self._check_value(name, value, where)
        if not partial:
            missing = [n for n in self.symbols if n not in out]
            if missing:
                listed = ", ".join(f"{n} ({self.symbol_doc(n)})" for n in missing)
                raise FormulaError(f"{where}{self.name}: missing value for {listed}")
        return out

    def _attribute_of(self, symbol_name: str) -> Attribute | None:
        for attr in self.attributes.values():
            if symbol_name in attr.symbol_names:
                return attr
        return None

    def _check_value(self, name: str, value: Any, where: str) -> Any:
        attr = self._attribute_of(name)
        label = f"attribute '{attr.name}'" if attr else f"'{name}'"
        # an architecture's prefix names the layer and this formula already ("layer 'fc' (linear): ")
        head = where if where.endswith("): ") else f"{where}{self.name}: "
        if attr and attr.kind == "bool":
            if isinstance(value, bool) or value in (0, 1):
                return sympy.Integer(int(value))
            if isinstance(value, sympy.Basic) and not value.is_number:
                return value
            shown = str(value).lower() if isinstance(value, bool) else value
            raise FormulaError(f"{head}{label} must be true or false, got {shown!r}")
        if isinstance(value, bool):
            raise FormulaError(f"{head}{label} must be a whole number, got the bool {str(value).lower()}")
        if isinstance(value, int):
            value = sympy.Integer(value)
        if not isinstance(value, sympy.Basic):
            raise FormulaError(f"{head}{label} must be a whole number, got {value!r}")
        if value.is_number:
            if not value.is_Integer:
                raise FormulaError(f"{head}{label} must be a whole number, got {value}")
            # a shape symbol is >= 1 unless its file declares `min: 0` (a count that may be none)
            low = attr.minimum if attr else (1 if self.symbols[name].is_positive else 0)
            high = attr.maximum if attr else None
            if attr and name != attr.name:
                label = f"{label} ({name})"
            elif not attr:
                label = f"size '{name}'"
            if low is not None and value < low:
                raise FormulaError(f"{head}{label} must be >= {low}, got {value}")
            if high is not None and value > high:
                raise FormulaError(f"{head}{label} must be <= {high}, got {value}")
        return value

    @cached_property
    def constraint_checks(self) -> tuple[sympy.Basic, ...]:
        """Each constraint's condition with ``where`` quantities expanded (computed once)."""
        return tuple(self.expand(c.check) for c in self.constraints)

    def check_constraints(self, subs: Mapping[sympy.Symbol, sympy.Expr], where: str = "") -> list[Constraint]:
        """Raise on a constraint that is false under ``subs``; return those still undecided."""
        undecided = []
        for constraint, check in zip(self.constraints, self.constraint_checks):
            truth = check.xreplace(subs)
            if truth is sympy.true:
                continue
            if truth is sympy.false:
                raise FormulaError(f"{where}{self.name}: {constraint.message} ({constraint.text})")
            undecided.append(constraint)
        return undecided

    def evaluate(self, convention: cost.Convention = cost.TORCH, /, **values: Any) -> Evaluation:
        """Exact integer costs for concrete values. Per-axis attributes take one int or a tuple.

        >>> from symcost import formulas
        >>> formulas.linear.evaluate(batch=1, in_features=100, out_features=50).flops
        10000
        """
        bound = self.normalize_values(values, partial=False)
        subs = {self.symbols[n]: v for n, v in bound.items()}
        self.check_constraints(subs)
        outputs = {}
        for out_name, shape in self.outputs.items():
            dims = []
            for index, dim in enumerate(shape):
                value = subs[dim.symbol] if isinstance(dim, Variadic) else dim.xreplace(subs)
                number = self._integer(value, f"output '{out_name}' dim {index}")
                if number < 1:
                    raise FormulaError(
                        f"{self.name}: output '{out_name}' would have size {number} in dim {index} "
                        "(is the kernel larger than the padded input?)"
                    )
                dims.append(number)
            outputs[out_name] = tuple(dims)
        counts = {k: self._integer(v.xreplace(subs), k) for k, v in self.costs.items()}
        elementwise = {k: self._integer(v.xreplace(subs), k) for k, v in self.elementwise.items()}
        peers = {k: self._integer(v.xreplace(subs), f"{k}'s count") for k, v in self.peers.items()}
        flops = cost.flops(counts["macs"], elementwise, convention, peers)
        return Evaluation(
            formula=self.name,
            values={n: int(v) for n, v in bound.items()},
            outputs=outputs,
            macs=counts["macs"],
            flops=int(flops),
            params=counts["params"],
            buffers=counts["buffers"],
            read=counts["read"],
            write=counts["write"],
            elementwise=elementwise,
            convention=convention.name,
            cache=counts["cache"],
        )

    def _integer(self, value: sympy.Basic, what: str) -> int:
        if not (isinstance(value, sympy.Expr) and value.is_Integer):
            raise FormulaError(f"{self.name}: {what} did not evaluate to an integer: {value}")
        number = int(value)
        if number < 0:
            raise FormulaError(f"{self.name}: {what} evaluated to a negative count {number}")
        return number

    def bind(self, *, defaults: bool = False, **values: Any) -> Bound:
        """Substitute some values and simplify what remains (``symcost derive --set``).

        Attribute defaults are applied only with ``defaults=True``, so a derivation stays general.

        >>> from symcost import formulas
        >>> b = formulas.conv2d.bind(kernel=3, stride=1, padding=1, dilation=1)
        >>> b.outputs["y"]
        (N, C_out, H, W)
        """
        bound = self.normalize_values(values, partial=True, defaults=defaults, source="--set")
        subs = {self.symbols[n]: v for n, v in bound.items()}
        undecided = self.check_constraints(subs)
        return Bound(self, dict(bound), subs, tuple(undecided))


@dataclass(frozen=True)
class Bound:
    """A formula with some symbols bound; expressions simplified (see :meth:`Formula.bind`)."""

    formula: Formula
    values: Mapping[str, Any]
    subs: Mapping[sympy.Symbol, Any]
    constraints: tuple[Constraint, ...]

    def _apply(self, e: Any) -> Any:
        if isinstance(e, Variadic):
            value = self.subs.get(e.symbol)
            return e if value is None else value
        return sympy.simplify(self.formula.expand(e).xreplace(self.subs))

    @cached_property
    def outputs(self) -> dict[str, Shape]:
        return {k: tuple(self._apply(d) for d in v) for k, v in self.formula.outputs_compact.items()}

    @cached_property
    def costs(self) -> dict[str, sympy.Expr]:
        return {k: self._apply(v) for k, v in self.formula.costs_compact.items()}

    @cached_property
    def elementwise(self) -> dict[str, sympy.Expr]:
        return {k: self._apply(v) for k, v in self.formula.elementwise_compact.items()}

    @property
    def macs(self) -> sympy.Expr:
        return self.costs["macs"]

    @property
    def flops(self) -> sympy.Expr:
        """FLOPs under the default convention (``2 * macs``), as :attr:`Formula.flops`.

        >>> from symcost import formulas
        >>> formulas.conv2d.bind(N=1, H=56, W=56, kernel=3, padding=1, stride=1, dilation=1, groups=1).flops
        56448*C_in*C_out
        """
        return cost.flops(self.macs, self.elementwise)

    @property
    def params(self) -> sympy.Expr:
        return self.costs["params"]

    def _repr_html_(self) -> str:  # Jupyter: as Formula's, with the bound values
        from .display import formula_html

        return formula_html(self.formula, self)

    def _repr_latex_(self) -> str:
        from .display import formula_latex

        return formula_latex(self.formula, self)


# ======================================================================================
# Loading
# ======================================================================================


def shape_symbol(name: str) -> sympy.Symbol:
    """The symbol for a shape dim: a positive integer. Same name, same symbol, in every formula."""
    return sympy.Symbol(name, integer=True, positive=True)


def attribute_symbol(name: str, minimum: int | None) -> sympy.Symbol:
    if minimum is not None and minimum >= 1:
        return sympy.Symbol(name, integer=True, positive=True)
    if minimum is not None and minimum >= 0:
        return sympy.Symbol(name, integer=True, nonnegative=True)
    return sympy.Symbol(name, integer=True)


def load(data: Any, path: str) -> Formula:
    """Validate one parsed formula file (a :class:`symcost.yamlio.Mapping`) into a Formula."""
    top = _mapping(data, "formula file", Location(path, 1, 1))
    _known_keys(top, _TOP_KEYS, "formula")
    name = _string(top, "name", required=True)
    if not _IDENT.match(name):
        raise FormulaError(f"formula name '{name}' must be an identifier", top.loc_of("name"))
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem != name:
        raise FormulaError(f"formula '{name}' must live in a file named {name}.yaml", top.loc_of("name"))

    names: dict[str, sympy.Basic] = {}

    def declare(symbol_name: str, value: sympy.Basic, loc: Location) -> None:
        if not _IDENT.match(symbol_name) or symbol_name.startswith("_"):
            raise FormulaError(f"'{symbol_name}' is not a valid symbol name", loc)
        if symbol_name in names or symbol_name in expr.FUNCTIONS or symbol_name in cost.COST_KEYS:
            raise FormulaError(f"'{symbol_name}' is declared twice or clashes with a reserved name", loc)
        names[symbol_name] = value

    # symbols
    shape_symbols: dict[str, ShapeSymbol] = {}
    symbols = _mapping(top.get("symbols"), "symbols", top.loc_of("symbols"), required=True)
    for sym_name, spec in symbols.items():
        loc = symbols.key_loc(sym_name)
        spec = _mapping(spec, f"symbol '{sym_name}'", symbols.loc_of(sym_name), required=True)
        _known_keys(spec, _SYMBOL_KEYS, f"symbol '{sym_name}'")
        low = spec.get("min", 1)
        if low not in (0, 1) or isinstance(low, bool):
            raise FormulaError(f"symbol '{sym_name}': 'min' must be 0 or 1 (the default)", spec.loc_of("min"))
        symbol = (
            shape_symbol(str(sym_name)) if low == 1 else sympy.Symbol(str(sym_name), integer=True, nonnegative=True)
        )
        declare(str(sym_name), symbol, loc)
        shape_symbols[sym_name] = ShapeSymbol(
            sym_name,
            _string(spec, "doc", required=True),
            names[sym_name],
            _test_range(spec, f"symbol '{sym_name}'", low),
            _string(spec, "arg") or None,
        )

    # attributes
    attributes: dict[str, Attribute] = {}
    attrs = _mapping(top.get("attributes", YMapping()), "attributes", top.loc_of("attributes"))
    for attr_name, spec in attrs.items():
        attributes[attr_name] = _attribute(str(attr_name), spec, attrs, declare, attributes)

    # inputs
    inputs = _shapes(top, "inputs", names, declared_only=True)

    # where
    where: dict[str, tuple[sympy.Symbol, sympy.Expr]] = {}
    expand: dict[sympy.Symbol, sympy.Expr] = {}
    where_map = _mapping(top.get("where", YMapping()), "where", top.loc_of("where"))
    for where_name, text in where_map.items():
        definition = expr.parse(text, names, loc=where_map.loc_of(where_name))
        symbol = sympy.Symbol(str(where_name), integer=True)
        declare(str(where_name), symbol, where_map.key_loc(where_name))
        where[where_name] = (symbol, definition)
        expand[symbol] = definition.xreplace(expand)

    # constraints
    constraints = []
    raw_constraints = top.get("constraints", YSequence())
    if not isinstance(raw_constraints, list):
        raise FormulaError("'constraints' must be a list", top.loc_of("constraints"))
    for index, item in enumerate(raw_constraints):
        loc = raw_constraints.loc_of(index)
        item = _mapping(item, "constraint", loc, required=True)
        _known_keys(item, {"check", "message"}, "constraint")
        text = _string(item, "check", required=True)
        check = expr.parse(text, names, loc=item.loc_of("check"), allow_compare=True)
        if isinstance(check, sympy.Expr):
            raise FormulaError("a constraint must be a comparison, like 'C_in % groups == 0'", item.loc_of("check"))
        constraints.append(Constraint(check, text, _string(item, "message", required=True), loc))

    outputs = _shapes(top, "outputs", names, declared_only=False)

    # costs: declared in order, later costs may use earlier ones (read: ... + params)
    raw_costs = _mapping(top.get("costs"), "costs", top.loc_of("costs"), required=True)
    _known_keys(raw_costs, set(cost.COST_KEYS), "costs")
    costs: dict[str, sympy.Expr] = {}
    cost_names = dict(names)
    for key in raw_costs:
        costs[key] = expr.parse(raw_costs[key], cost_names, loc=raw_costs.loc_of(key))
        cost_names[key] = costs[key]
    for key in cost.COST_KEYS:
        if key not in costs:
            if key in cost.OPTIONAL_COST_KEYS:
                costs[key] = sympy.Integer(0)
            else:
                raise FormulaError(f"costs: missing '{key}'", raw_costs.loc)
    costs = {key: costs[key] for key in cost.COST_KEYS}

    raw_elementwise = _mapping(top.get("elementwise", YMapping()), "elementwise", top.loc_of("elementwise"))
    _known_keys(raw_elementwise, set(cost.ELEMENTWISE_CATEGORIES), "elementwise")
    elementwise = {k: expr.parse(v, names, loc=raw_elementwise.loc_of(k)) for k, v in raw_elementwise.items()}

    raw_gemm = _mapping(top.get("gemm", YMapping()), "gemm", top.loc_of("gemm"))
    _known_keys(raw_gemm, set(GEMM_KEYS), "gemm")
    gemm = {k: expr.parse(v, names, loc=raw_gemm.loc_of(k)) for k, v in raw_gemm.items()}
    if gemm and not {"M", "N"} <= set(gemm):
        raise FormulaError("gemm: give 'M' and 'N' (and optionally 'batch')", raw_gemm.loc)
    if gemm:
        gemm.setdefault("batch", sympy.Integer(1))

    # peers: each tool's count of this layer, over the same names plus 'macs'
    raw_peers = _mapping(top.get("peers", YMapping()), "peers", top.loc_of("peers"))
    _known_keys(raw_peers, set(cost.PEER_TOOLS), "peers")
    peer_names = {**names, "macs": costs["macs"]}
    peers = {k: expr.parse(v, peer_names, loc=raw_peers.loc_of(k)) for k, v in raw_peers.items()}

    torch_twin = None
    if "torch" in top:
        torch_twin = _twin(top, names)
    no_twin = _string(top, "no_torch_twin")
    if torch_twin is None and not no_twin:
        raise FormulaError(
            "a formula needs a 'torch' section (how tests build its twin) or a 'no_torch_twin' reason",
            top.loc,
        )

    examples = []
    raw_examples = top.get("examples", YSequence())
    if not isinstance(raw_examples, list):
        raise FormulaError("'examples' must be a list", top.loc_of("examples"))
    for index, item in enumerate(raw_examples):
        item = _mapping(item, "example", raw_examples.loc_of(index), required=True)
        _known_keys(item, _EXAMPLE_KEYS, "example")
        values = _mapping(item.get("set"), "example 'set'", item.loc_of("set"), required=True)
        expect = _mapping(item.get("expect"), "example 'expect'", item.loc_of("expect"), required=True)
        examples.append(Example(dict(values), dict(expect), _string(item, "note")))

    shape_rule, rule_args = _shape_rule(top, names)

    return Formula(
        name=name,
        summary=_string(top, "summary", required=True),
        category=_string(top, "category") or "other",
        doc=_string(top, "doc"),
        path=path,
        shape_symbols=shape_symbols,
        attributes=attributes,
        inputs=inputs,
        where=where,
        constraints=tuple(constraints),
        outputs_compact=outputs,
        costs_compact=costs,
        elementwise_compact=elementwise,
        gemm_compact=gemm,
        peers_compact=peers,
        notes=tuple(_strings(top, "notes")),
        sources=tuple(_strings(top, "sources")),
        torch=torch_twin,
        no_torch_twin=no_twin,
        examples=tuple(examples),
        _expand=expand,
        shape_rule=shape_rule,
        rule_args=rule_args,
    )


def _shape_rule(top: YMapping, names: Mapping[str, sympy.Basic]) -> tuple[str | None, dict[str, RuleArg]]:
    """``shape_rule: reshape`` and its ``rule_args: {shape: {kind: sizes, doc: ...}}``."""
    if "shape_rule" not in top:
        if "rule_args" in top:
            raise FormulaError("'rule_args' needs a 'shape_rule'", top.loc_of("rule_args"))
        return None, {}
    from .shape_rules import RULES

    rule = _string(top, "shape_rule", required=True)
    if rule not in RULES:
        raise FormulaError(f"unknown shape rule '{rule}'{did_you_mean(rule, RULES)}", top.loc_of("shape_rule"))
    args: dict[str, RuleArg] = {}
    raw = _mapping(top.get("rule_args", YMapping()), "rule_args", top.loc_of("rule_args"))
    for arg_name, spec in raw.items():
        loc = raw.key_loc(arg_name)
        if not isinstance(arg_name, str) or not _IDENT.match(arg_name) or arg_name in names:
            raise FormulaError(f"rule argument '{arg_name}' is not a valid name or clashes with a symbol", loc)
        spec = _mapping(spec, f"rule argument '{arg_name}'", raw.loc_of(arg_name), required=True)
        _known_keys(spec, _RULE_ARG_KEYS, f"rule argument '{arg_name}'")
        kind = _string(spec, "kind", required=True)
        if kind not in RULE_ARG_KINDS:
            raise FormulaError(
                f"rule argument '{arg_name}': kind must be one of {', '.join(RULE_ARG_KINDS)}", spec.loc_of("kind")
            )
        args[arg_name] = RuleArg(arg_name, kind, _string(spec, "doc", required=True), spec.get("default"))
    return rule, args


def _attribute(
    name: str, spec: Any, parent: YMapping, declare: Any, declared_attributes: Mapping[str, Attribute]
) -> Attribute:
    loc = parent.loc_of(name)
    spec = _mapping(spec, f"attribute '{name}'", loc, required=True)
    _known_keys(spec, _ATTR_KEYS, f"attribute '{name}'")
    kind = _string(spec, "type", required=True)
    if kind not in ("int", "bool"):
        raise FormulaError(f"attribute '{name}': type must be int or bool, not '{kind}'", spec.loc_of("type"))
    axes_raw = spec.get("axes", [])
    if not isinstance(axes_raw, list) or not all(isinstance(a, str) and _IDENT.match(a) for a in axes_raw):
        raise FormulaError(f"attribute '{name}': axes must be a list of names like [h, w]", spec.loc_of("axes"))
    axes = tuple(axes_raw)
    minimum = _int_or_none(spec, "min")
    maximum = _int_or_none(spec, "max")
    if kind == "bool":
        minimum, maximum = 0, 1
    elif minimum is None:
        minimum = 1
    default = spec.get("default")
    if isinstance(default, str):
        # ``default: kernel``: take another (earlier) attribute's value, axis by axis (pooling's stride).
        other = declared_attributes.get(default)
        if other is None or other.axes != axes or other.kind != kind:
            raise FormulaError(
                f"attribute '{name}': a text default must name an earlier attribute with the same type and axes",
                spec.loc_of("default"),
            )
    elif default is not None:
        if kind == "bool" and not isinstance(default, bool):
            raise FormulaError(f"attribute '{name}': default must be true or false", spec.loc_of("default"))
        if kind == "int" and (isinstance(default, bool) or not isinstance(default, int)):
            raise FormulaError(f"attribute '{name}': default must be an integer", spec.loc_of("default"))
    symbol_names = [f"{name}_{axis}" for axis in axes] if axes else [name]
    symbols = []
    for symbol_name in symbol_names:
        symbol = attribute_symbol(symbol_name, minimum)
        declare(symbol_name, symbol, parent.key_loc(name))
        symbols.append(symbol)
    test = _test_range(spec, f"attribute '{name}'", minimum, kind == "bool")
    return Attribute(
        name, kind, axes, minimum, maximum, default, _string(spec, "doc", required=True), test, tuple(symbols)
    )


def _shapes(top: YMapping, key: str, names: dict[str, sympy.Basic], declared_only: bool) -> dict[str, Shape]:
    raw = _mapping(top.get(key), key, top.loc_of(key), required=True)
    if not raw:
        raise FormulaError(f"'{key}' must name at least one tensor", raw.loc)
    result = {}
    for tensor, dims in raw.items():
        result[str(tensor)] = _shape(dims, raw.loc_of(tensor), names, f"{key} '{tensor}'")
    return result


def _shape(dims: Any, loc: Location, names: Mapping[str, sympy.Basic], what: str) -> Shape:
    if not isinstance(dims, list) or not dims:
        raise FormulaError(f"{what}: a shape is a non-empty list of dims, like [N, C_in, H, W]", loc)
    shape: list[Any] = []
    for index, dim in enumerate(dims):
        dim_loc = dims.loc_of(index) if isinstance(dims, YSequence) else loc
        if isinstance(dim, str) and dim.startswith("*"):
            variadic = dim[1:]
            if any(isinstance(d, Variadic) for d in shape):
                raise FormulaError(f"{what}: at most one *name per shape", dim_loc)
            if variadic not in names or not isinstance(names[variadic], sympy.Symbol):
                raise FormulaError(f"{what}: '*{variadic}' must name a declared symbol", dim_loc)
            shape.append(Variadic(variadic, names[variadic]))
        else:
            shape.append(expr.parse(dim, names, loc=dim_loc))
    return tuple(shape)


def _twin(top: YMapping, names: Mapping[str, sympy.Basic]) -> TorchTwin:
    spec = _mapping(top.get("torch"), "torch", top.loc_of("torch"), required=True)
    _known_keys(spec, _TWIN_KEYS, "torch")
    kinds = [k for k in ("module", "function", "builder") if k in spec]
    if len(kinds) != 1:
        raise FormulaError("torch: give exactly one of module, function or builder", spec.loc)
    args_raw = _mapping(spec.get("args", YMapping()), "torch args", spec.loc_of("args"))
    args: dict[str, Any] = {}
    for key, value in args_raw.items():
        loc = args_raw.loc_of(key)
        if isinstance(value, list):
            args[key] = tuple(expr.parse(v, names, loc=value.loc_of(i)) for i, v in enumerate(value))
        elif isinstance(value, bool) or value is None:
            args[key] = value
        else:
            args[key] = expr.parse(value, names, loc=loc)
    inputs = _shapes(spec, "inputs", dict(names), declared_only=False) if "inputs" in spec else {}
    return TorchTwin(spec.get("module"), spec.get("function"), spec.get("builder"), args, inputs, _string(spec, "note"))


# ---- small validators ------------------------------------------------------------------


def _mapping(value: Any, what: str, loc: Location, required: bool = False) -> YMapping:
    return mapping_at(value, what, loc, FormulaError, optional=not required)


def _known_keys(mapping: YMapping, allowed: Iterable[str], what: str) -> None:
    check_keys(mapping, allowed, what, FormulaError)


def _string(mapping: YMapping, key: str, required: bool = False) -> str:
    return text_at(mapping, key, FormulaError, required)


def _strings(mapping: YMapping, key: str) -> list[str]:
    return texts_at(mapping, key, FormulaError)


def _int_or_none(mapping: YMapping, key: str) -> int | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormulaError(f"'{key}' must be an integer", mapping.loc_of(key))
    return value


def _test_range(spec: YMapping, what: str, minimum: int | None, is_bool: bool = False) -> tuple[int, int]:
    if is_bool:
        return (0, 1)
    value = spec.get("test")
    if value is None:
        raise FormulaError(f"{what}: 'test: [low, high]' (the range property tests draw from) is required", spec.loc)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] > value[1]
        or (minimum is not None and value[0] < minimum)
    ):
        raise FormulaError(f"{what}: test must be [low, high] integers within the domain", spec.loc_of("test"))
    return (value[0], value[1])
