"""A PyTorch ``nn.Module`` as a symbolic architecture: the importer behind ``symcost import torch``.

How it traces, and why. The module's ``forward`` runs once on *fake* tensors (torch's
``FakeTensorMode``: shapes and dtypes, no storage, no device, no GPU) whose sizes are *symbols*
(torch's ``ShapeEnv``): ``x.size(0)`` is the symbol ``N``, ``h // 16`` is ``H//16``. Two hooks watch
that run:

- a ``TorchFunctionMode`` sees every call the user's code makes at the level it was written
  (``F.conv2d``, ``x.view(x.size(0), -1)``, ``torch.cat``, ``F.scaled_dot_product_attention``,
  ``F.multi_head_attention_forward``, ``torch.lstm``), before torch decomposes it into aten ops. That
  is the level of the formula catalog, so one call becomes one layer, and its arguments, symbols
  included, become the layer's attributes as expressions of the variables;
- global module hooks (``register_module_forward_pre_hook``, which add nothing to the user's
  modules) give each call the path of the module it runs in (``layer1.0.conv1``).

``torch.export`` would also give symbolic shapes, but through TorchDynamo (seconds more per model,
and graphs already decomposed below the catalog's level); ``torch.fx`` symbolic tracing gives no
shapes and fails on ``x.view(x.size(0), -1)`` style code. Parameters and buffers are never copied nor
written: fake tensors stand for them inside the run, and an in-place op (BatchNorm's running stats in
training mode) changes only its fake. Nothing is added to the module (the hooks are global and removed
after the run).

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
>>> imported = from_torch(net, inputs={"x": ("N", 3, "H", "W")}, example={"N": 1, "H": 32, "W": 32})
>>> print(imported.to_yaml().split("layers:")[1], end="")
<BLANKLINE>
  - {name: "0", op: conv2d, in: x, C_out: 8, kernel: 3, padding: 1}
  - {name: "1", op: relu}
  - {name: "2", op: flatten, start_dim: 1}
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import Location, UsageError
from ..yamlwrite import Lines, scalar, text
from . import ImporterError, missing_extra

#: The torch release whose semantics the op table follows (the extra pins it).
TORCH_VERSION = "2.13.0"


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        raise missing_extra("torch", "torch") from None
    return torch


# ---- the result ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Imported:
    """An imported module: its YAML text and the architecture it loads as.

    ``unknown`` lists the ops kept as ``unknown`` layers (with ``allow_unknown``), as
    ``(op, module path, count)``; ``constraints`` the conditions the trace relied on.
    """

    name: str
    yaml: str
    unknown: list[tuple[str, str, int]]
    constraints: list[str]
    _arch: Any = None

    def to_yaml(self) -> str:
        """The architecture file's text, as ``symcost import torch -o FILE`` writes it."""
        return self.yaml

    @property
    def arch(self) -> Any:
        """The loaded architecture (:class:`symcost.arch.Arch`): what ``symcost.evaluate`` takes."""
        if self._arch is None:
            from ..arch import load_text

            self._arch = load_text(self.yaml, f"{self.name}.yaml")
        return self._arch

    def __repr__(self) -> str:
        return f"<Imported {self.name}: {self.yaml.count(chr(10) + '  - ')} layers>"


# ---- parsing the user's input specs ----------------------------------------------------------------


def parse_input(spec: str) -> tuple[str, tuple[Any, ...], str]:
    """``"x=[N,3,H,W]"`` or ``"ids=[B,S]:int64"`` -> (name, dims, dtype).

    >>> parse_input("x=[N, 3, H, W]")
    ('x', ('N', 3, 'H', 'W'), 'float32')
    >>> parse_input("ids=[B,S]:int64")
    ('ids', ('B', 'S'), 'int64')
    """
    where = Location("--input")
    name, eq, rest = spec.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier():
        raise UsageError(f"--input takes NAME=[d0,d1,...] (optionally :int64), got {spec!r}", where)
    rest = rest.strip()
    dtype = "float32"
    if ":" in rest:
        rest, dtype = (part.strip() for part in rest.rsplit(":", 1))
    if not (rest.startswith("[") and rest.endswith("]")):
        raise UsageError(f"--input {name}: the shape is a list in brackets, [N,3,H,W], got {rest!r}", where)
    dims: list[Any] = []
    for item in rest[1:-1].split(","):
        item = item.strip()
        if item.isdigit():
            dims.append(int(item))
        elif item.isidentifier():
            dims.append(item)
        else:
            raise UsageError(f"--input {name}: a dim is a whole number or a name, got {item!r}", where)
    return name, tuple(dims), dtype


def load_factory(target: str) -> Any:
    """``FILE.py:FACTORY`` or ``package.module:FACTORY`` -> the module that FACTORY() returns.

    The file is run as Python (it is the user's own model code, as ``python FILE.py`` would run it)."""
    path, colon, factory = target.rpartition(":")
    if not colon or not factory.isidentifier():
        raise UsageError(f"expected FILE.py:FACTORY or package.module:FACTORY, got {target!r}", Location("import"))
    if path.endswith(".py"):
        file = Path(path)
        if not file.is_file():
            raise UsageError(f"no such file: {path}", Location("import"))
        name = f"_symcost_user_{file.stem}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load {path} as Python", Location("import"))
        user = importlib.util.module_from_spec(spec)
        sys.modules[name] = user
        sys.path.insert(0, str(file.resolve().parent))
        try:
            spec.loader.exec_module(user)
        finally:
            sys.path.pop(0)
    else:
        try:
            user = importlib.import_module(path)
        except ModuleNotFoundError as exc:
            raise UsageError(f"cannot import {path}: {exc}", Location("import")) from None
    made = getattr(user, factory, None)
    if made is None:
        raise UsageError(f"{path} has no {factory}", Location("import"))
    return made() if callable(made) and not _is_module(made) else made


def _is_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


# ---- the public entry points -----------------------------------------------------------------------


def from_torch(module: Any, inputs: Mapping[str, Sequence[Any]], example: Mapping[str, int] | None = None, *,
               dtypes: Mapping[str, str] | None = None, name: str | None = None, allow_unknown: bool = False,
               source: str | None = None) -> Imported:  # fmt: skip
    """Trace ``module`` on fake tensors of the shapes ``inputs`` names and write it as an architecture.

    ``inputs`` maps each argument of ``forward`` (in order) to its shape, whose names are the
    variables; ``example`` gives each variable its value for the trace and its default in the file;
    ``dtypes`` marks integer inputs (``{"ids": "int64"}``, token ids). An op with no formula is an
    error listing every such op, unless ``allow_unknown`` (then it is an ``unknown`` layer).
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"expected an nn.Module, got {type(module).__name__}")
    example = dict(example or {})
    specs = {k: tuple(v) for k, v in inputs.items()}
    variables: list[str] = []
    for key, dims in specs.items():
        for d in dims:
            if isinstance(d, str):
                if not d.isidentifier():
                    raise UsageError(f"input {key}: a dim is a whole number or a name, got {d!r}")
                if d not in variables:
                    variables.append(d)
            elif isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise UsageError(f"input {key}: a dim is a positive whole number or a name, got {d!r}")
    for v in variables:
        if v not in example:
            raise UsageError(f"variable {v} needs an example value (--set {v}=...)")
        if isinstance(example[v], bool) or not isinstance(example[v], int) or example[v] < 1:
            raise UsageError(f"variable {v}: the example value must be a positive integer, got {example[v]!r}")
    extra = sorted(set(example) - set(variables))
    if extra:
        raise UsageError(f"--set names {', '.join(extra)}, which no --input shape uses")
    values = {v: example[v] for v in variables}
    tracer = _Tracer(torch, module, specs, values, dict(dtypes or {}))
    tracer.run()
    if any(tracer.example[v] != value for v, value in tracer.specialized.items()):
        # torch fixed a size that was traced at 2 for an example of 1: trace at the example itself
        tracer = _Tracer(torch, module, specs, values, dict(dtypes or {}), exact=True)
        tracer.run()
    if tracer.unknown and not allow_unknown:
        # one line, as every symcost error is: each op with its module path and number of calls
        found = "; ".join(f"{op} at {path or '(top level)'} ({count}x)" for (op, path), count in tracer.unknown.items())
        raise ImporterError(
            f"these torch ops have no formula in symcost's catalog: {found}; write a formula for each "
            "(docs/formulas.md), or pass --allow-unknown to keep them as 'unknown' layers"
        )
    title = name or getattr(module, "__class__", type(module)).__name__.lower()
    yaml_text = tracer.write(title, source or type(module).__qualname__)
    unknown = [(op, path, count) for (op, path), count in tracer.unknown.items()]
    return Imported(title, yaml_text, unknown, tracer.constraints)


def write(target: str, inputs: Sequence[str], values: Mapping[str, int], output: str | None = None, *,
          allow_unknown: bool = False) -> Imported:  # fmt: skip
    """``symcost import torch TARGET --input ... --set ...``: load, trace, write (to ``output`` if given)."""
    _torch()
    specs: dict[str, tuple[Any, ...]] = {}
    dtypes: dict[str, str] = {}
    for spec in inputs:
        key, dims, dtype = parse_input(spec)
        specs[key] = dims
        dtypes[key] = dtype
    if not specs:
        raise UsageError('give the forward\'s inputs: --input "x=[N,3,H,W]"')
    module = load_factory(target)
    if not _is_module(module):
        raise UsageError(f"{target} returned {type(module).__name__}, not an nn.Module")
    imported = from_torch(module, specs, values, dtypes=dtypes, allow_unknown=allow_unknown,
                          source=target)  # fmt: skip
    if output is not None:
        Path(output).write_text(imported.yaml, encoding="utf-8")
    return imported


# ---- symbolic sizes as symcost expressions ----------------------------------------------------------


class _Printer:
    """torch's symbolic size expressions (sympy, with torch's FloorDiv, Mod, ...) as symcost text."""

    def __init__(self, names: Mapping[Any, str]) -> None:
        self.names = names

    def __call__(self, e: Any) -> str:
        import sympy

        kind = type(e).__name__
        args = e.args
        if e.is_Integer:
            return str(int(e))
        if e.is_Symbol:
            if e not in self.names:
                raise ValueError(f"a size depends on {e}, which is no input dim")
            return self.names[e]
        if isinstance(e, sympy.Add):
            return "(" + " + ".join(self(a) for a in args) + ")"
        if isinstance(e, sympy.Mul):
            return "(" + "*".join(self(a) for a in args) + ")"
        if isinstance(e, sympy.Pow) and args[1].is_Integer and args[1] > 0:
            return f"({self(args[0])})**{int(args[1])}"
        if kind in ("FloorDiv", "CleanDiv", "IntTrueDiv") and len(args) == 2:
            return f"({self(args[0])} // {self(args[1])})"
        if kind in ("Mod", "PythonMod") and len(args) == 2:
            return f"({self(args[0])} % {self(args[1])})"
        if kind in ("Max", "Min"):
            return f"{kind.lower()}(" + ", ".join(self(a) for a in args) + ")"
        if kind == "CeilToInt" and type(args[0]).__name__ == "IntTrueDiv":
            return f"ceil_div({self(args[0].args[0])}, {self(args[0].args[1])})"
        raise ValueError(f"no symcost expression for torch's {kind}")


def _clean(text_: str) -> str:
    """Drop the outermost parentheses the printer adds."""
    if text_.startswith("(") and text_.endswith(")"):
        depth = 0
        for i, ch in enumerate(text_):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text_) - 1:
                return text_
        return text_[1:-1]
    return text_


# ---- the tracer -------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Layer:
    op: str
    base: str  # the short name within its module ("relu", "add")
    path: str  # the module path it ran in
    call: int  # which module call it belongs to
    inputs: list[Any]  # refs: ("in", name) or ("layer", index, piece)
    attrs: dict[str, Any]
    params: list[int] = dataclasses.field(default_factory=list)
    tied: int | None = None
    comment: str = ""
    name: str = ""


class _Unsupported(Exception):
    """A call whose arguments no formula states (an op name for the unknown list)."""


class _Tracer:
    def __init__(self, torch: Any, module: Any, specs: dict[str, tuple[Any, ...]], example: dict[str, int],
                 dtypes: dict[str, str], exact: bool = False) -> None:  # fmt: skip
        self.torch = torch
        self.module = module
        self.specs = specs
        self.example = example
        self.dtypes = dtypes
        self.layers: list[_Layer] = []
        self.refs: dict[int, Any] = {}
        self.keep: list[Any] = []  # every traced tensor stays alive, so that no id is reused
        self.unknown: Counter[tuple[str, str]] = Counter()
        self.constraints: list[str] = []
        self.modules = {id(m): n for n, m in module.named_modules()}
        self.leaf = {id(m) for m in module.modules() if not any(True for _ in m.children())}
        self.param_names = {id(p): n for n, p in module.named_parameters()}
        self.buffer_names = {id(b): n for n, b in module.named_buffers()}
        self.param_owner: dict[int, int] = {}  # param id -> layer index
        self.buffer_owner: dict[int, int] = {}
        self.stack: list[tuple[str, int, Any]] = [("", 0, module)]
        self.calls = 0
        self.depth = 0
        self.outputs: list[tuple[str, Any]] = []
        self.sym_names: dict[Any, str] = {}
        self.syms: dict[str, Any] = {}
        self.specialized: dict[str, int] = {}
        self.exact = exact
        self.absorbing: list[Any] = []  # modules costed whole (_MODULES), entered and not yet left

    # ---- running -------------------------------------------------------------------------
    def run(self) -> None:
        torch = self.torch
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv
        from torch.overrides import TorchFunctionMode

        env = ShapeEnv(specialize_zero_one=False, duck_shape=False)
        self.env = env
        source = _source_class(torch)
        fake = FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
        # torch's dispatch cache pays off when a graph is traced many times; one trace spends more time
        # filling it than it saves (ConvNeXt-T: 4.9 s of 19 s)
        fake.cache_enabled = False
        # A size of 1 invites torch to specialize (broadcasting, contiguity): trace at 2 instead; the
        # formulas are the same closed forms, and the file's defaults stay the user's values.
        for var, value in self.example.items():
            point = 2 if value == 1 and not self.exact else value
            sym = env.create_symbol(point, source(var), dynamic_dim=DimDynamic.DYNAMIC, do_not_specialize_zero_one=True)
            self.syms[var] = env.create_symintnode(sym, hint=point, source=source(var))
            self.sym_names[sym] = var
        self.printer = _Printer(self.sym_names)
        tracer = self

        class Recorder(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                return tracer.intercept(func, args, kwargs or {})

        hooks = [
            torch.nn.modules.module.register_module_forward_pre_hook(self.enter),
            torch.nn.modules.module.register_module_forward_hook(self.leave, always_call=True),
        ]
        try:
            first = next(iter(self.module.parameters()), None)
            device = first.device if first is not None else torch.device("cpu")
            with fake:
                args = []
                for key, dims in self.specs.items():
                    sizes = [self.syms[d] if isinstance(d, str) else d for d in dims]
                    dtype = getattr(torch, self.dtypes.get(key, "float32"), None)
                    if not isinstance(dtype, torch.dtype):
                        raise UsageError(f"input {key}: unknown dtype {self.dtypes.get(key)!r}")
                    if dtype.is_floating_point:
                        t = torch.empty(sizes, dtype=dtype, device=device)
                    else:
                        t = torch.zeros(sizes, dtype=dtype, device=device)
                    self.refs[id(t)] = ("in", key)
                    self.keep.append(t)
                    args.append(t)
                # (nn.MultiheadAttention's and nn.TransformerEncoderLayer's fused inference kernels are never
                # taken here: torch leaves them out whenever a torch-function mode is active)
                with Recorder():
                    try:
                        out = self.module(*args)
                    except Exception as exc:  # noqa: BLE001 - every trace failure becomes the user's error
                        raise self._explain(exc) from None
        finally:
            for hook in hooks:
                hook.remove()
        self._collect_outputs(out, "y")
        for var, sym in self.syms.items():
            replaced = env.replace(sym.node.expr)
            if replaced.is_Integer:
                self.specialized[var] = int(replaced)
        self._guards()

    def _explain(self, exc: Exception) -> Exception:
        if isinstance(exc, (ImporterError, UsageError)):
            return exc
        path = self.stack[-1][0] or "(top level)"
        name = type(exc).__name__
        text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else name
        line = _user_line(exc)
        if line:
            path = f"{path} ({line})"
        if "DataDependent" in name or "data-dependent" in text_ or "data dependent" in text_.lower():
            return ImporterError(
                f"data-dependent control flow at {path}: {text_}\n"
                "the trace runs on fake tensors (shapes only, no values), so a branch or a size that depends on "
                "a tensor's values has no answer; hint: mixture-of-experts routing is the catalog's 'moe' formula, "
                "and a loop over values can be written in YAML with 'repeat'"
            )
        return ImporterError(f"the trace failed at {path}: {name}: {text_}")

    def enter(self, module: Any, args: Any) -> None:
        path = self.modules.get(id(module), self.stack[-1][0])
        self.calls += 1
        self.stack.append((path, self.calls, module))
        handler = _MODULES.get(type(module).__name__)
        if handler is not None and self.depth == 0:
            self.depth += 1  # the module is one layer: what it calls inside is not recorded
            self.absorbing.append(module)

    def leave(self, module: Any, args: Any, output: Any) -> None:
        if self.absorbing and self.absorbing[-1] is module:
            self.absorbing.pop()
            try:
                _MODULES[type(module).__name__](self, module, args, output)
            except _Unsupported as why:
                self.unknown_op(f"{type(module).__name__} ({why})", args, output)
            finally:
                self.depth -= 1
        if len(self.stack) > 1:
            self.stack.pop()

    def intercept(self, func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if self.depth:
            return func(*args, **kwargs)
        key = _key(func)
        first = args[0] if args else None
        if _mutates(key, kwargs) and isinstance(first, self.torch.Tensor) and type(first).__name__ != "FakeTensor":
            # an update of the module's own state (BatchNorm's num_batches_tracked += 1 in training mode): the
            # real tensor is never written, and a state update is no cost of the forward
            return first
        self.depth += 1
        try:
            noted: dict[str, Any] = {}
            out = _same_shape(self.torch, key, args, kwargs)
            if out is None and key in _SHAPED:
                out = _SHAPED[key](self.torch, args, kwargs)
            if key in ("view", "reshape", "flatten", "F.flatten"):
                out = _reshape_output(self.torch, key, args, kwargs)
            if key in ("lstm", "gru"):
                out = _rnn_output(self.torch, key, args)
            if key in ("F.pad", "pad"):
                out = _pad_output(self.torch, args, kwargs)
            if key == "F.interpolate":
                args, kwargs = _interpolate_by_size(self.torch, args, kwargs)
                noted = {"_symcost_scale": kwargs.pop("_symcost_scale", None)}
                if noted["_symcost_scale"] is not None:
                    x = args[0]
                    out = x.new_empty([*x.shape[:2], *kwargs["size"]])
            if out is None:
                out = func(*args, **kwargs)
            if _tensors(out):
                self.record(key, args, {**kwargs, **noted}, out)
        finally:
            self.depth -= 1
        return out

    def record(self, key: str, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        handler = _HANDLERS.get(key)
        if handler is None:
            self.unknown_op(key, args, out)
            return
        try:
            handler(self, _Call(key, args, kwargs, out))
        except _Unsupported as why:
            self.unknown_op(f"{key} ({why})" if str(why) else key, args, out)

    def unknown_op(self, key: str, args: Any, out: Any) -> None:
        path = self.stack[-1][0]
        self.unknown[(key, path)] += 1
        inputs = [t for t in _tensors(args) if id(t) in self.refs][:1]
        for k, t in enumerate(_tensors(out)):
            shape = [self.dim(s) for s in t.shape]
            note = f"UNKNOWN COST: {key} (no formula; counted as 0)" + (f", output {k}" if k else "")
            self.emit("unknown", inputs if k == 0 else [], t, base=_base(key), attrs={"shape": shape}, comment=note)

    # ---- references ----------------------------------------------------------------------
    def src(self, t: Any) -> Any:
        """The YAML tensor a torch tensor is: an input, a layer's output, or a learned or stored tensor."""
        ref = self.refs.get(id(t))
        if ref is not None:
            return ref
        if id(t) in self.param_names:
            return self._tensor_layer(t, "parameter", self.param_names[id(t)], self.param_owner)
        if id(t) in self.buffer_names:
            return self._tensor_layer(t, "buffer", self.buffer_names[id(t)], self.buffer_owner)
        return self._tensor_layer(t, "constant", None, None)

    def _tensor_layer(self, t: Any, op: str, name: str | None, owner: dict[int, int] | None) -> Any:
        shape = [self.dim(s) for s in t.shape]
        index = len(self.layers)
        layer = _Layer(op, name or "constant", self.stack[-1][0], self.stack[-1][1], [], {"shape": shape})
        if name is not None:
            layer.name = name
        self.layers.append(layer)
        if owner is not None:
            owner[id(t)] = index
        ref = ("layer", index, None)
        self.refs[id(t)] = ref
        self.keep.append(t)
        return ref

    def dim(self, v: Any) -> Any:
        """A size as the file writes it: an int, or an expression of the variables."""
        torch = self.torch
        if isinstance(v, torch.SymInt):
            e = self.env.replace(v.node.expr)
            if e.is_Integer:
                return int(e)
            try:
                return _clean(self.printer(e))
            except ValueError as exc:
                raise _Unsupported(str(exc)) from None
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return v
        if isinstance(v, torch.SymFloat | torch.SymBool):
            raise _Unsupported("a symbolic float or condition as an argument")
        return v

    def emit(self, op: str, inputs: Sequence[Any], out: Any, *, base: str | None = None,
             attrs: Mapping[str, Any] | None = None, params: Sequence[Any] = (), buffers: Sequence[Any] = (),
             pieces: bool = False, comment: str = "") -> int:  # fmt: skip
        """One layer: ``inputs`` (torch tensors) in the formula's order, ``out`` its output(s)."""
        refs = [self.src(t) for t in inputs]
        path, call, _ = self.stack[-1]
        layer = _Layer(op, base or op, path, call, refs, dict(attrs or {}), comment=comment)
        index = len(self.layers)
        ids = [id(p) for p in params if p is not None]
        owners = {self.param_owner[i] for i in ids if i in self.param_owner}
        if owners:
            fresh = [i for i in ids if i not in self.param_owner]
            owner = next(iter(owners))
            owned = [i for i, o in self.param_owner.items() if o == owner]
            if len(owners) > 1 or fresh or sorted(owned) != sorted(ids):
                raise _Unsupported("parameters shared with another layer only in part")
            layer.tied = owner
        else:
            for i in ids:
                self.param_owner[i] = index
        for b in buffers:
            if b is not None:
                self.buffer_owner[id(b)] = index
        layer.params = ids
        self.layers.append(layer)
        outs = out if isinstance(out, list | tuple) else [out]
        for k, t in enumerate(outs):
            if t is None or not isinstance(t, self.torch.Tensor | _Placeholder):
                continue
            self.refs[id(t)] = ("layer", index, k if pieces else None)
            self.keep.append(t)
        return index

    def _collect_outputs(self, out: Any, name: str) -> None:
        torch = self.torch
        if isinstance(out, torch.Tensor):
            if id(out) not in self.refs:
                raise ImporterError(f"output {name} comes from no traced op")
            self.outputs.append((name, self.refs[id(out)]))
        elif isinstance(out, Mapping):
            for k, v in out.items():
                self._collect_outputs(v, str(k))
        elif isinstance(out, list | tuple):
            for k, v in enumerate(out):
                self._collect_outputs(v, f"{name}{k}" if name != "y" or len(out) > 1 else name)

    def _guards(self) -> None:
        """The conditions the trace relied on, as the file's notes: fixed sizes and tested relations."""
        import sympy

        seen: set[str] = set()
        for var, value in self.specialized.items():
            self.constraints.append(f"{var} = {value}: the forward only runs at this size (torch fixed it)")
            seen.add(var)
        for guard in self.env.guards:
            e = self.env.simplify(guard.expr)
            if e in (sympy.true, True) or not isinstance(e, sympy.Eq):
                continue
            if not e.free_symbols or not (e.free_symbols <= set(self.sym_names)):
                continue
            try:
                line = f"{_clean(self.printer(e.lhs))} == {_clean(self.printer(e.rhs))}"
            except ValueError:
                continue
            if line not in seen:
                seen.add(line)
                self.constraints.append(f"{line}: the trace relied on it")

    # ---- writing -------------------------------------------------------------------------
    def _name_layers(self) -> None:
        per_call = Counter(layer.call for layer in self.layers if not layer.name)
        used: set[str] = {layer.name for layer in self.layers if layer.name}
        for layer in self.layers:
            if layer.name:
                continue
            path = layer.path
            module = next((m for p, c, m in [(layer.path, layer.call, None)] if True), None)
            del module
            single = per_call[layer.call] == 1 and path and self._is_leaf_path(path)
            stem = path if single else (f"{path}.{layer.base}" if path else layer.base)
            name, k = stem, 1
            while name in used:
                k += 1
                name = f"{stem}_{k}"
            used.add(name)
            layer.name = name

    def _is_leaf_path(self, path: str) -> bool:
        if not hasattr(self, "_by_path"):
            self._by_path = dict(self.module.named_modules())
        m = self._by_path.get(path)
        return m is not None and (id(m) in self.leaf or type(m).__name__ in _MODULES)

    def _ref(self, ref: Any) -> str:
        if ref[0] == "in":
            return ref[1]
        layer = self.layers[ref[1]]
        return layer.name if ref[2] is None else f"{layer.name}.{ref[2]}"

    def write(self, title: str, source: str) -> str:
        # parameters and buffers that forward never used still count, as sum(p.numel()) counts them
        for pid, name in self.param_names.items():
            if pid not in self.param_owner:
                p = dict(self.module.named_parameters())[name]
                self._unused(p, "parameter", name, self.param_owner)
        for bid, name in self.buffer_names.items():
            if bid not in self.buffer_owner:
                b = dict(self.module.named_buffers())[name]
                self._unused(b, "buffer", name, self.buffer_owner)
        self._prune()
        self._name_layers()
        out = Lines()
        out.add(f"# Imported by `symcost import torch` from {source} (torch {self.torch.__version__}).")
        out.add("# Layers are named by module path; each is a formula of the catalog (symcost list formulas).")
        out.add(f"name: {scalar(title)}")
        out.add(f"summary: {text(f'{source}, imported from torch')}")
        notes = list(self.constraints)
        if self.unknown:
            ops = ", ".join(sorted({op for op, _ in self.unknown}))
            notes.insert(0, f"UNKNOWN COSTS: {ops} have no formula; their layers are 'unknown' and count nothing")
        if notes:
            out.add("notes:")
            for note in notes:
                out.add(f"- {text(note)}", 2)
        free = [v for v in self.example if v not in self.specialized]
        if free:
            out.add("variables:")
            for var in free:
                out.add(f"{var}: {{default: {self.example[var]}}}", 2)
        out.add("inputs:")
        for key, dims in self.specs.items():
            shown = [self.specialized.get(d, d) if isinstance(d, str) else d for d in dims]
            out.add(f"{key}: {scalar(shown)}", 2)
        out.add("outputs: " + scalar([self._ref(r) for _, r in self.outputs]))
        out.add("layers:")
        previous: Any = None
        for index, layer in enumerate(self.layers):
            spec: dict[str, Any] = {"name": layer.name, "op": layer.op}
            refs = [self._ref(r) for r in layer.inputs]
            chained = previous is not None and len(layer.inputs) == 1 and layer.inputs[0] == previous
            if refs and not chained:
                spec["in"] = refs[0] if len(refs) == 1 else refs
            spec.update(layer.attrs)
            if layer.tied is not None:
                spec["tied"] = self.layers[layer.tied].name
            if layer.comment:
                out.add(f"# {layer.comment}", 2)
            out.layer(2, **spec)
            previous = ("layer", index, None)
        return out.text()

    def _unused(self, t: Any, op: str, name: str, owner: dict[int, int]) -> None:
        self.stack = [("", 0, self.module)]
        self._tensor_layer(t, op, name, owner)
        self.layers[-1].comment = f"{name}: a {op} that forward never uses (counted, as sum(numel) counts it)"

    def _prune(self) -> None:
        """Constants nobody reads (torch.zeros for an LSTM's initial state) are left out."""
        used = {r[1] for layer in self.layers for r in layer.inputs if r[0] == "layer"}
        used |= {r[1] for _, r in self.outputs if r[0] == "layer"}
        keep = [i for i, layer in enumerate(self.layers) if layer.op != "constant" or i in used]
        if len(keep) == len(self.layers):
            return
        moved = {old: new for new, old in enumerate(keep)}

        def fix(r: Any) -> Any:
            return ("layer", moved[r[1]], r[2]) if r[0] == "layer" else r

        layers = [self.layers[i] for i in keep]
        for layer in layers:
            layer.inputs = [fix(r) for r in layer.inputs]
            if layer.tied is not None:
                layer.tied = moved[layer.tied]
        self.outputs = [(n, fix(r)) for n, r in self.outputs]
        self.layers = layers


def _user_line(exc: BaseException) -> str:
    """The last line of the user's own code in a traceback (not torch's, not symcost's): ``model.py:12``."""
    import traceback

    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        file = frame.filename.replace("\\", "/")
        if "/torch/" in file or "/symcost/" in file or "/transformers/" in file or file.startswith("<"):
            continue
        found = f"{Path(file).name}:{frame.lineno}"
    return found


def _source_class(torch: Any) -> Any:
    from torch._guards import GuardSource, Source

    @dataclasses.dataclass(frozen=True)
    class InputDim(Source):
        dim: str

        @property
        def name(self) -> str:  # type: ignore[override]
            return self.dim

        def guard_source(self) -> Any:
            return GuardSource.CONSTANT

    return InputDim


def _key(func: Any) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", name)
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional"):
        return f"F.{name}"
    return name


def _mutates(key: str, kwargs: Mapping[str, Any]) -> bool:
    """An in-place call (``add_``, ``+=``, ``x[i] = v``) or one that writes an ``out=`` tensor."""
    inplace = key.endswith("_") and not key.startswith("__")
    return inplace or key.startswith("__i") or key == "__setitem__" or kwargs.get("out") is not None


def _base(key: str) -> str:
    base = key.split(" ")[0].removeprefix("F.").strip("_")
    return base or "op"


def _tensors(obj: Any) -> list[Any]:
    torch = sys.modules["torch"]
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, list | tuple):
        return [t for v in obj for t in _tensors(v)]
    return []


#: Calls whose output has its first argument's shape and dtype: the trace makes that tensor itself
#: rather than run torch's symbolic decomposition (BatchNorm's alone is 70 ms a call on fake tensors).
_KEEPS_SHAPE = {"F.batch_norm", "F.layer_norm", "layer_norm", "F.group_norm", "group_norm", "F.rms_norm",
                "rms_norm", "softmax", "F.softmax", "log_softmax", "F.log_softmax", "F.softmin", "gelu", "F.gelu"}  # fmt: skip
_INPLACE = {"relu_", "sigmoid_", "tanh_", "clamp_"}


_SHAPED: dict[str, Callable[[Any, Any, Mapping[str, Any]], Any]] = {}


def _same_shape(torch: Any, key: str, args: Any, kwargs: Mapping[str, Any]) -> Any:
    if not (key in _KEEPS_SHAPE or key in _ACTIVATIONS or key in _DROPOUTS) or key == "F.glu":
        return None
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, torch.Tensor) or type(x).__name__ != "FakeTensor":
        return None
    if key in _INPLACE or kwargs.get("inplace") or (key in _ACTIVATIONS and len(args) > 1 and args[-1] is True
                                                    and key in ("F.relu", "F.relu6", "F.hardtanh", "F.silu",
                                                                "F.hardswish", "F.elu", "F.selu", "F.celu",
                                                                "F.leaky_relu", "F.mish", "F.hardsigmoid")):  # fmt: skip
        return x
    return x.new_empty(x.shape)


def _linear_output(torch: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
    a = _bind(args, kwargs, [("input", None), ("weight", None), ("bias", None)])
    x, w = a["input"], a["weight"]
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or w.dim() != 2:
        return None
    return x.new_empty([*x.shape[:-1], w.shape[0]])


def _conv_output(torch: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
    """conv{1,2,3}d's output size, torch's formula (H + 2p - d(k-1) - 1) // s + 1 per spatial dim."""
    a = _bind(args, kwargs, [("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0),
                             ("dilation", 1), ("groups", 1)])  # fmt: skip
    x, w = a["input"], a["weight"]
    n = w.dim() - 2
    if not isinstance(x, torch.Tensor) or x.dim() != n + 2 or isinstance(a["padding"], str):
        return None
    stride, padding, dilation = _ints(a["stride"], n), _ints(a["padding"], n), _ints(a["dilation"], n)
    spatial = [(size + 2 * p - d * (k - 1) - 1) // s + 1
               for size, k, s, p, d in zip(x.shape[2:], w.shape[2:], stride, padding, dilation, strict=True)]  # fmt: skip
    return x.new_empty([x.shape[0], w.shape[0], *spatial])


def _same_dim(a: Any, b: Any) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, int) or isinstance(b, int):
        return False
    return a.node.expr == b.node.expr


def _binary_output(torch: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
    """a + b's output by broadcasting, where every pair of sizes is plainly equal or 1 (else torch decides)."""
    if len(args) < 2:
        return None
    a, b = args[0], args[1]
    if not isinstance(a, torch.Tensor) or type(a).__name__ != "FakeTensor":
        return None
    if not isinstance(b, torch.Tensor):
        return a.new_empty(a.shape) if isinstance(b, int | float) and not isinstance(b, bool) else None
    pa, pb = list(a.shape), list(b.shape)
    rank = max(len(pa), len(pb))
    pa, pb = [1] * (rank - len(pa)) + pa, [1] * (rank - len(pb)) + pb
    out = []
    for x, y in zip(pa, pb, strict=True):
        if isinstance(y, int) and y == 1:
            out.append(x)
        elif isinstance(x, int) and x == 1:
            out.append(y)
        elif _same_dim(x, y):
            out.append(x)
        else:
            return None
    if a.dtype != b.dtype:
        return None
    return a.new_empty(out)


def _reshape_output(torch: Any, key: str, args: Any, kwargs: Mapping[str, Any]) -> Any:
    """view / reshape / flatten's output made from its sizes (one -1 inferred by exact division): torch's
    symbolic view kernel tests strides and contiguity, a second per call on a large model."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        return None
    if key in ("flatten", "F.flatten"):
        a = _bind(args, kwargs, [("input", None), ("start_dim", 0), ("end_dim", -1)])
        if not (isinstance(a["start_dim"], int) and isinstance(a["end_dim"], int)) or x.dim() == 0:
            return None
        start, end = a["start_dim"] % x.dim(), a["end_dim"] % x.dim()
        merged: Any = 1
        for size in x.shape[start : end + 1]:
            merged = merged * size
        return x.new_empty([*x.shape[:start], merged, *x.shape[end + 1 :]])
    sizes = _sizes(args, 1) or list(kwargs.get("shape", kwargs.get("size", ())))
    if (
        not sizes
        or not all(isinstance(s, int | torch.SymInt) for s in sizes)
        or sum(isinstance(s, int) and s == -1 for s in sizes) > 1
    ):
        return None
    if -1 in [s for s in sizes if isinstance(s, int)]:
        numel: Any = 1
        for size in x.shape:
            numel = numel * size
        known: Any = 1
        for size in sizes:
            if not (isinstance(size, int) and size == -1):
                known = known * size
        sizes = [numel // known if isinstance(s, int) and s == -1 else s for s in sizes]
    return x.new_empty(sizes)


def _rnn_output(torch: Any, key: str, args: Any) -> Any:
    """torch.lstm / torch.gru's outputs made from their sizes: run on fake tensors, torch unrolls the steps
    in Python, which fixes the batch and the length to the example's."""
    if len(args) < 9 or isinstance(args[3], torch.Tensor):
        return None
    x, hx, weights, has_biases, layers, _, _, bidirectional, batch_first = args[:9]
    hidden = weights[1].shape[1]
    dirs = 2 if bidirectional else 1
    y = x.new_empty([*x.shape[:2], hidden * dirs])
    batch = x.shape[0] if batch_first else x.shape[1]
    h = x.new_empty([layers * dirs, batch, hidden])
    return (y, h, x.new_empty([layers * dirs, batch, hidden])) if key == "lstm" else (y, h)


def _pad_output(torch: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
    """F.pad's output made from its sizes: torch's own kernel asks for concrete sizes, which would fix
    every symbolic size to the example's."""
    a = _bind(args, kwargs, [("input", None), ("pad", None), ("mode", "constant"), ("value", None)])
    x, amounts = a["input"], list(a["pad"] or [])
    if not isinstance(x, torch.Tensor) or len(amounts) % 2 or len(amounts) // 2 > x.dim():
        return None
    sizes = list(x.shape)
    for pair in range(len(amounts) // 2):
        sizes[x.dim() - 1 - pair] = sizes[x.dim() - 1 - pair] + amounts[2 * pair] + amounts[2 * pair + 1]
    return x.new_empty(sizes)


def _interpolate_by_size(torch: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """F.interpolate with an integer scale_factor, run with the size it gives: the same output, without
    torch's float arithmetic on the sizes (which would fix the symbolic sizes to the example's)."""
    call = _bind(args, kwargs, _INTERPOLATE)
    factor = call["scale_factor"]
    x = call["input"]
    if factor is None or call["size"] is not None or call["recompute_scale_factor"]:
        return args, kwargs
    spatial = x.dim() - 2
    factors = list(factor) if isinstance(factor, list | tuple) else [factor] * spatial
    if not all(float(f).is_integer() for f in factors):
        return args, kwargs
    call = dict(call)
    call["size"] = [s * int(f) for s, f in zip(x.shape[2:], factors, strict=True)]
    call["scale_factor"] = None
    call["_scale"] = [int(f) for f in factors]
    kwargs = {k: v for k, v in call.items() if k not in ("input", "_scale")}
    kwargs["_symcost_scale"] = call["_scale"]  # read back by the handler, removed before the call
    return (x,), kwargs


# ---- the op table -------------------------------------------------------------------------------


@dataclasses.dataclass
class _Call:
    key: str
    args: Any
    kwargs: dict[str, Any]
    out: Any


def _bind(args: Any, kwargs: Mapping[str, Any], spec: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for i, (name, default) in enumerate(spec):
        if i < len(args):
            values[name] = args[i]
        else:
            values[name] = kwargs.get(name, default)
    return values


_REQUIRED = object()
_HANDLERS: dict[str, Callable[[_Tracer, _Call], None]] = {}
_MODULES: dict[str, Callable[[_Tracer, Any, Any, Any], None]] = {}


def _handles(*keys: str) -> Callable[[Callable[[_Tracer, _Call], None]], Callable[[_Tracer, _Call], None]]:
    def register(fn: Callable[[_Tracer, _Call], None]) -> Callable[[_Tracer, _Call], None]:
        for k in keys:
            _HANDLERS[k] = fn
        return fn

    return register


def _ints(v: Any, n: int) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else [v] * n


def _compact(tr: _Tracer, values: Sequence[Any]) -> Any:
    shown = [tr.dim(v) for v in values]
    return shown[0] if all(s == shown[0] for s in shown) else shown


def _conv(tr: _Tracer, c: _Call, transposed: bool) -> None:
    if transposed:
        spec = [("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0),
                ("output_padding", 0), ("groups", 1), ("dilation", 1)]  # fmt: skip
    else:
        spec = [("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1),
                ("groups", 1)]  # fmt: skip
    a = _bind(c.args, c.kwargs, spec)
    x, w = a["input"], a["weight"]
    n = w.dim() - 2
    if n not in (1, 2, 3) or x.dim() != n + 2:
        raise _Unsupported(f"a {x.dim()}-D input (batched inputs only)")
    kernel = list(w.shape[2:])
    dilation = _ints(a["dilation"], n)
    padding = a["padding"]
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
            if any(t % 2 for t in total):
                raise _Unsupported("padding='same' with an even kernel (torch pads one side more)")
            padding = [t // 2 for t in total]
    attrs: dict[str, Any] = {"C_out": w.shape[1] * a["groups"] if transposed else w.shape[0],
                             "kernel": _compact(tr, kernel)}  # fmt: skip
    stride, padding = _ints(a["stride"], n), _ints(padding, n)
    if any(s != 1 for s in stride):
        attrs["stride"] = _compact(tr, stride)
    if any(p != 0 for p in padding):
        attrs["padding"] = _compact(tr, padding)
    if transposed and any(p != 0 for p in _ints(a["output_padding"], n)):
        attrs["output_padding"] = _compact(tr, _ints(a["output_padding"], n))
    if any(d != 1 for d in dilation):
        attrs["dilation"] = _compact(tr, dilation)
    if a["groups"] != 1:
        attrs["groups"] = a["groups"]
    if a["bias"] is None:
        attrs["bias"] = False
    op = f"conv_transpose{n}d" if transposed else f"conv{n}d"
    tr.emit(op, [x], c.out, base=op, attrs=attrs, params=[w, a["bias"]])


@_handles("conv1d", "conv2d", "conv3d")
def _convolution(tr: _Tracer, c: _Call) -> None:
    _conv(tr, c, False)


@_handles("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def _transposed_convolution(tr: _Tracer, c: _Call) -> None:
    _conv(tr, c, True)


@_handles("linear")
def _linear(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("weight", None), ("bias", None)])
    attrs: dict[str, Any] = {"out_features": a["weight"].shape[0]}
    if a["bias"] is None:
        attrs["bias"] = False
    tr.emit("linear", [a["input"]], c.out, attrs=attrs, params=[a["weight"], a["bias"]])


def _is_param(tr: _Tracer, t: Any) -> bool:
    return id(t) in tr.param_names


@_handles("addmm")
def _addmm(tr: _Tracer, c: _Call) -> None:
    """torch.addmm(bias, x, w) with learned w [in, out] and bias [out]: a linear layer (HF's Conv1D)."""
    a = _bind(c.args, c.kwargs, [("input", None), ("mat1", None), ("mat2", None), ("beta", 1), ("alpha", 1)])
    bias, x, w = a["input"], a["mat1"], a["mat2"]
    if not (_is_param(tr, w) and _is_param(tr, bias)) or bias.dim() != 1 or a["beta"] != 1 or a["alpha"] != 1:
        raise _Unsupported("addmm other than a learned weight and bias")
    tr.emit("linear", [x], c.out, attrs={"out_features": w.shape[1]}, params=[w, bias],
            comment=f"torch.addmm(bias, x, weight) with weight [{w.shape[0]}, {w.shape[1]}]: a linear layer")  # fmt: skip


@_handles("matmul", "__matmul__", "mm", "bmm")
def _matmul(tr: _Tracer, c: _Call) -> None:
    a, b = c.args[0], c.args[1] if len(c.args) > 1 else c.kwargs.get("other", c.kwargs.get("mat2"))
    if _is_param(tr, b) and b.dim() == 2 and a.dim() >= 2:
        tr.emit("linear", [a], c.out, attrs={"out_features": b.shape[1], "bias": False}, params=[b],
                comment=f"x @ weight with a learned [{b.shape[0]}, {b.shape[1]}] weight: a linear layer")  # fmt: skip
        return
    if a.dim() == 2 and b.dim() == 2:
        tr.emit("matmul", [a, b], c.out)
        return
    if a.dim() >= 3 and a.dim() == b.dim() and all(_same(tr, p, q) for p, q in zip(a.shape[:-2], b.shape[:-2])):
        tr.emit("bmm", [a, b], c.out, base="matmul" if c.key != "bmm" else "bmm")
        return
    raise _Unsupported(f"a {a.dim()}-D by {b.dim()}-D matmul that broadcasts")


def _same(tr: _Tracer, p: Any, q: Any) -> bool:
    return tr.dim(p) == tr.dim(q)


@_handles("F.batch_norm")
def _batch_norm(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("running_mean", None), ("running_var", None), ("weight", None),
                                 ("bias", None), ("training", False), ("momentum", 0.1), ("eps", 1e-5)])  # fmt: skip
    x = a["input"]
    rank = x.dim()
    op = {2: "batchnorm1d", 3: "batchnorm1d", 4: "batchnorm2d", 5: "batchnorm3d"}.get(rank)
    if op is None or (rank == 2):
        raise _Unsupported(f"batch_norm on a {rank}-D input")
    attrs: dict[str, Any] = {}
    if a["weight"] is None:
        attrs["affine"] = False
    if a["running_mean"] is None:
        attrs["track_running_stats"] = False
    if a["training"]:
        attrs["training"] = True
    module = tr.stack[-1][2]
    buffers = [a["running_mean"], a["running_var"], getattr(module, "num_batches_tracked", None)]
    if a["running_mean"] is not None and buffers[2] is None:
        raise _Unsupported("running statistics without num_batches_tracked")
    tr.emit(op, [x], c.out, attrs=attrs, params=[a["weight"], a["bias"]], buffers=buffers)


@_handles("F.layer_norm", "layer_norm")
def _layer_norm(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("normalized_shape", None), ("weight", None), ("bias", None)])
    k = len(a["normalized_shape"])
    op = {1: "layernorm", 2: "layernorm_last2", 3: "layernorm_last3"}.get(k)
    if op is None:
        raise _Unsupported(f"layer_norm over {k} dims")
    shape = [tr.dim(d) for d in a["normalized_shape"]]
    attrs: dict[str, Any] = {"normalized_shape": shape[0] if k == 1 else shape}
    if a["weight"] is None:
        attrs["elementwise_affine"] = False
    elif a["bias"] is None:
        attrs["bias"] = False
    if a["weight"] is None and a["bias"] is not None:
        raise _Unsupported("layer_norm with a bias and no weight")
    tr.emit(op, [a["input"]], c.out, base="layer_norm", attrs=attrs, params=[a["weight"], a["bias"]])


@_handles("F.group_norm", "group_norm")
def _group_norm(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("num_groups", None), ("weight", None), ("bias", None)])
    attrs: dict[str, Any] = {"groups": a["num_groups"]}
    if a["weight"] is None:
        attrs["affine"] = False
    tr.emit("groupnorm", [a["input"]], c.out, base="group_norm", attrs=attrs, params=[a["weight"], a["bias"]])


@_handles("F.rms_norm", "rms_norm")
def _rms_norm(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("normalized_shape", None), ("weight", None)])
    if len(a["normalized_shape"]) != 1:
        raise _Unsupported("rms_norm over several dims")
    attrs = {} if a["weight"] is not None else {"elementwise_affine": False}
    tr.emit("rmsnorm", [a["input"]], c.out, base="rms_norm", attrs=attrs, params=[a["weight"]])


@_handles("F.embedding")
def _embedding(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("weight", None)])
    w = a["weight"]
    tr.emit("embedding", [a["input"]], c.out, attrs={"num_embeddings": w.shape[0], "embedding_dim": w.shape[1]},
            params=[w])  # fmt: skip


#: activations: torch function -> formula (each 1 elementwise op per element; FlopCounterMode counts 0)
_ACTIVATIONS = {
    "relu": "relu", "relu_": "relu", "F.relu": "relu", "F.relu6": "relu6", "relu6": "relu6",
    "F.hardtanh": "hardtanh", "hardtanh": "hardtanh", "silu": "silu", "F.silu": "silu", "sigmoid": "sigmoid",
    "F.sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh", "F.tanh": "tanh", "tanh_": "tanh",
    "F.hardswish": "hardswish", "hardswish": "hardswish", "F.hardsigmoid": "hardsigmoid", "hardsigmoid": "hardsigmoid",
    "F.leaky_relu": "leaky_relu", "leaky_relu": "leaky_relu", "F.elu": "elu", "elu": "elu", "F.selu": "selu",
    "selu": "selu", "F.celu": "celu", "celu": "celu", "F.mish": "mish", "mish": "mish", "softplus": "softplus",
    "F.softplus": "softplus", "F.softsign": "softsign", "log_sigmoid": "logsigmoid", "F.logsigmoid": "logsigmoid",
    "exp": "exp", "clamp": "clamp", "clip": "clamp", "clamp_": "clamp", "F.tanhshrink": "tanhshrink",
    "F.softshrink": "softshrink", "softshrink": "softshrink", "F.hardshrink": "hardshrink", "hardshrink": "hardshrink",
    "F.threshold": "threshold", "threshold": "threshold", "F.glu": "glu",
}  # fmt: skip


def _activation(tr: _Tracer, c: _Call) -> None:
    op = _ACTIVATIONS[c.key]
    x = c.args[0] if c.args else c.kwargs["input"]
    if op == "glu":
        dim = _bind(c.args, c.kwargs, [("input", None), ("dim", -1)])["dim"]
        if dim not in (-1, x.dim() - 1):
            raise _Unsupported("glu on another dim than the last")
    tr.emit(op, [x], c.out, base=c.key.removeprefix("F.").rstrip("_"))


for _k in _ACTIVATIONS:
    _HANDLERS[_k] = _activation


@_handles("gelu", "F.gelu")
def _gelu(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("approximate", "none")])
    tr.emit("gelu_tanh" if a["approximate"] == "tanh" else "gelu", [a["input"]], c.out, base="gelu")


_DROPOUTS = {"F.dropout": "dropout", "dropout": "dropout", "F.dropout1d": "dropout1d", "F.dropout2d": "dropout2d",
             "F.dropout3d": "dropout3d", "F.alpha_dropout": "alpha_dropout",
             "F.feature_alpha_dropout": "feature_alpha_dropout"}  # fmt: skip


def _dropout(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("p", 0.5), ("training", c.key == "F.dropout")])
    if c.key == "dropout":  # torch.dropout(input, p, train)
        a["training"] = c.args[2] if len(c.args) > 2 else c.kwargs.get("train", True)
    attrs = {"training": True} if a["training"] else {}
    tr.emit(_DROPOUTS[c.key], [a["input"]], c.out, base="dropout", attrs=attrs)


for _k in _DROPOUTS:
    _HANDLERS[_k] = _dropout


@_handles("softmax", "F.softmax", "log_softmax", "F.log_softmax", "F.softmin")
def _softmax(tr: _Tracer, c: _Call) -> None:
    op = c.key.removeprefix("F.")
    tr.emit(op, [c.args[0]], c.out, comment="")


_BINARY = {"add": "add", "__add__": "add", "__radd__": "add", "__iadd__": "add", "add_": "add", "sub": "sub",
           "__sub__": "sub", "__rsub__": "sub", "__isub__": "sub", "sub_": "sub", "mul": "mul", "__mul__": "mul",
           "__rmul__": "mul", "__imul__": "mul", "mul_": "mul", "div": "div", "__truediv__": "div",
           "__rtruediv__": "div", "__itruediv__": "div", "div_": "div"}  # fmt: skip


def _binary(tr: _Tracer, c: _Call) -> None:
    op = _BINARY[c.key]
    torch = tr.torch
    a, b = c.args[0], c.args[1] if len(c.args) > 1 else c.kwargs.get("other")
    if c.kwargs.get("alpha", 1) != 1 or c.kwargs.get("rounding_mode") is not None:
        raise _Unsupported("alpha or rounding_mode")
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        tr.emit(op, [a, b], c.out, base=op)
        if c.key.startswith("__i") or c.key.endswith("_"):
            tr.refs[id(a)] = tr.refs[id(c.out)]
        return
    tensor, number = (a, b) if isinstance(a, torch.Tensor) else (b, a)
    value = tr.dim(number) if isinstance(number, int | torch.SymInt) else number
    if isinstance(value, float) and value != value:  # NaN has no YAML number
        value = 0
    if not isinstance(value, int | float | str):
        raise _Unsupported(f"a {type(number).__name__} operand")
    tr.emit(op, [tensor], c.out, base=op, attrs={"scalar": value})
    if c.key.startswith("__i") or c.key.endswith("_"):
        tr.refs[id(tensor)] = tr.refs[id(c.out)]


for _k in _BINARY:
    _HANDLERS[_k] = _binary


@_handles("__neg__", "neg")
def _neg(tr: _Tracer, c: _Call) -> None:
    tr.emit("mul", [c.args[0]], c.out, base="neg", attrs={"scalar": -1}, comment="-x, counted as x * -1")


# ---- shape ops ---------------------------------------------------------------------------------


def _sizes(args: Any, start: int) -> list[Any]:
    rest = args[start:]
    if len(rest) == 1 and isinstance(rest[0], list | tuple):
        return list(rest[0])
    return list(rest)


@_handles("view", "reshape")
def _reshape(tr: _Tracer, c: _Call) -> None:
    sizes = _sizes(c.args, 1) or list(c.kwargs.get("shape", c.kwargs.get("size", ())))
    if any(not isinstance(s, int | tr.torch.SymInt) for s in sizes):
        raise _Unsupported("a view to a dtype")
    tr.emit(c.key, [c.args[0]], c.out, attrs={"shape": [tr.dim(s) for s in sizes]})


@_handles("flatten", "F.flatten")
def _flatten(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("start_dim", 0), ("end_dim", -1)])
    attrs: dict[str, Any] = {}
    if a["start_dim"] != 0:
        attrs["start_dim"] = a["start_dim"]
    if a["end_dim"] != -1:
        attrs["end_dim"] = a["end_dim"]
    tr.emit("flatten", [a["input"]], c.out, attrs=attrs)


@_handles("unflatten")
def _unflatten(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim", None), ("sizes", None)])
    tr.emit("unflatten", [a["input"]], c.out, attrs={"dim": a["dim"], "sizes": [tr.dim(s) for s in a["sizes"]]})


@_handles("permute")
def _permute(tr: _Tracer, c: _Call) -> None:
    dims = _sizes(c.args, 1) or list(c.kwargs["dims"])
    tr.emit("permute", [c.args[0]], c.out, attrs={"dims": dims})


@_handles("transpose", "swapaxes", "swapdims")
def _transpose(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim0", None), ("dim1", None)])
    tr.emit("transpose", [a["input"]], c.out, attrs={"dim0": a["dim0"], "dim1": a["dim1"]})


@_handles("t", "T", "mT")
def _t(tr: _Tracer, c: _Call) -> None:
    x = c.args[0]
    if x.dim() < 2:
        tr.refs[id(c.out)] = tr.src(x)
        return
    tr.emit("transpose", [x], c.out, base="t", attrs={"dim0": -2, "dim1": -1} if c.key == "mT" else
            {"dim0": 0, "dim1": 1})  # fmt: skip


@_handles("contiguous")
def _contiguous(tr: _Tracer, c: _Call) -> None:
    tr.emit("contiguous", [c.args[0]], c.out)


@_handles("cat", "concat", "concatenate", "stack")
def _cat(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("tensors", None), ("dim", 0)])
    tensors = list(a["tensors"])
    op = "stack" if c.key == "stack" else "cat"
    if op == "cat":  # torch skips 1-D empty tensors (an empty KV cache): so does the file
        tensors = [t for t in tensors if not (t.dim() == 1 and tr.dim(t.shape[0]) == 0)]
        if len(tensors) == 1:
            tr.refs[id(c.out)] = tr.src(tensors[0])
            tr.keep.append(c.out)
            return
    tr.emit(op, tensors, c.out, attrs={"dim": a["dim"]})


@_handles("chunk")
def _chunk(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("chunks", None), ("dim", 0)])
    tr.emit("chunk", [a["input"]], list(c.out), attrs={"chunks": a["chunks"], "dim": a["dim"]}, pieces=True)


@_handles("split", "split_with_sizes")
def _split(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("split_size_or_sections", None), ("dim", 0)])
    size = a["split_size_or_sections"]
    if size is None:
        size = c.kwargs.get("split_size", c.kwargs.get("split_sizes"))
    attrs: dict[str, Any] = {"sizes": [tr.dim(s) for s in size]} if isinstance(size, list | tuple) else {
        "size": tr.dim(size)}  # fmt: skip
    attrs["dim"] = a["dim"]
    tr.emit("split", [a["input"]], list(c.out), attrs=attrs, pieces=True)


@_handles("unbind")
def _unbind(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim", 0)])
    tr.emit("unbind", [a["input"]], list(c.out), attrs={"dim": a["dim"]}, pieces=True)


@_handles("unsqueeze")
def _unsqueeze(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim", None)])
    tr.emit("unsqueeze", [a["input"]], c.out, attrs={"dim": a["dim"]})


@_handles("squeeze")
def _squeeze(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim", None)])
    tr.emit("squeeze", [a["input"]], c.out, attrs={} if a["dim"] is None else {"dim": a["dim"]})


@_handles("expand")
def _expand(tr: _Tracer, c: _Call) -> None:
    sizes = _sizes(c.args, 1) or list(c.kwargs["size"])
    tr.emit("expand", [c.args[0]], c.out, attrs={"sizes": [tr.dim(s) for s in sizes]})


@_handles("expand_as")
def _expand_as(tr: _Tracer, c: _Call) -> None:
    tr.emit("expand", [c.args[0]], c.out, attrs={"sizes": [tr.dim(s) for s in c.args[1].shape]})


@_handles("narrow")
def _narrow(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim", None), ("start", None), ("length", None)])
    tr.emit("narrow", [a["input"]], c.out,
            attrs={"dim": a["dim"], "start": tr.dim(a["start"]), "length": tr.dim(a["length"])})  # fmt: skip


@_handles("__getitem__")
def _getitem(tr: _Tracer, c: _Call) -> None:
    """x[0], x[:, 1:3], x[..., None]: one select, slice or unsqueeze layer per indexed dim."""
    torch = tr.torch
    x, index = c.args[0], c.args[1]
    items = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(i, torch.Tensor) or isinstance(i, list) for i in items):
        raise _Unsupported("indexing by a tensor or list")
    if sum(i is Ellipsis for i in items) > 1:
        raise _Unsupported("two ellipses")
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    steps: list[tuple[str, dict[str, Any]]] = []
    dim = 0
    for item in items:
        if item is Ellipsis:
            dim += x.dim() - used
        elif item is None:
            steps.append(("unsqueeze", {"dim": dim}))
            dim += 1
        elif isinstance(item, int | torch.SymInt):
            steps.append(("select", {"dim": dim, "index": tr.dim(item)}))
        elif isinstance(item, slice):
            attrs: dict[str, Any] = {"dim": dim}
            if item.start not in (None, 0):
                attrs["start"] = tr.dim(item.start)
            if item.stop is not None and not (isinstance(item.stop, int) and item.stop >= sys.maxsize):
                attrs["end"] = tr.dim(item.stop)
            if item.step not in (None, 1):
                attrs["step"] = tr.dim(item.step)
            if len(attrs) > 1:
                steps.append(("slice", attrs))
            dim += 1
        else:
            raise _Unsupported(f"an index of type {type(item).__name__}")
    if not steps:
        tr.refs[id(c.out)] = tr.src(x)
        return
    # select removes its dim: later dims of the same index shift down by one
    current = x
    shift = 0
    for k, (op, attrs) in enumerate(steps):
        attrs = dict(attrs)
        attrs["dim"] -= shift
        if op == "select":
            shift += 1
        last = k == len(steps) - 1
        target = c.out if last else _Placeholder(k)
        tr.emit(op, [current], target, base=op)
        tr.layers[-1].attrs = attrs
        if not last:
            ref = ("layer", len(tr.layers) - 1, None)
            current = _Placeholder(k)
            tr.refs[id(current)] = ref
            tr.keep.append(current)


class _Placeholder:
    """Stands for an intermediate of a multi-step index in the tracer's reference table."""

    def __init__(self, k: int) -> None:
        self.k = k


@_handles("F.pad", "pad")
def _pad(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("pad", None), ("mode", "constant"), ("value", None)])
    attrs: dict[str, Any] = {"pad": [tr.dim(p) for p in a["pad"]]}
    if a["mode"] != "constant":
        attrs["mode"] = a["mode"]
    tr.emit("pad", [a["input"]], c.out, attrs=attrs)


@_handles("mean", "sum", "amax", "amin")
def _reduce(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("dim", None), ("keepdim", False)])
    if "dtype" in c.kwargs and c.kwargs["dtype"] is not None and c.key in ("mean", "sum"):
        pass
    attrs: dict[str, Any] = {}
    if a["dim"] is not None:
        attrs["dim"] = list(a["dim"]) if isinstance(a["dim"], list | tuple) else a["dim"]
    if a["keepdim"]:
        attrs["keepdim"] = True
    tr.emit(c.key, [a["input"]], c.out, attrs=attrs)


_POOLS = {"F.max_pool1d": ("maxpool1d", 1), "F.max_pool2d": ("maxpool2d", 2), "F.max_pool3d": ("maxpool3d", 3),
          "max_pool1d": ("maxpool1d", 1), "max_pool2d": ("maxpool2d", 2), "max_pool3d": ("maxpool3d", 3),
          "F._max_pool1d": ("maxpool1d", 1), "F._max_pool2d": ("maxpool2d", 2), "F._max_pool3d": ("maxpool3d", 3),
          "F.max_pool2d_with_indices": ("maxpool2d", 2), "avg_pool1d": ("avgpool1d", 1),
          "avg_pool2d": ("avgpool2d", 2), "avg_pool3d": ("avgpool3d", 3), "F.avg_pool1d": ("avgpool1d", 1),
          "F.avg_pool2d": ("avgpool2d", 2), "F.avg_pool3d": ("avgpool3d", 3)}  # fmt: skip


def _pool(tr: _Tracer, c: _Call) -> None:
    op, n = _POOLS[c.key]
    if op.startswith("max"):
        spec = [("input", None), ("kernel_size", None), ("stride", None), ("padding", 0), ("dilation", 1),
                ("ceil_mode", False), ("return_indices", False)]  # fmt: skip
    else:
        spec = [("input", None), ("kernel_size", None), ("stride", None), ("padding", 0), ("ceil_mode", False),
                ("count_include_pad", True), ("divisor_override", None)]  # fmt: skip
    a = _bind(c.args, c.kwargs, spec)
    if a.get("return_indices") or a.get("divisor_override") is not None:
        raise _Unsupported("return_indices or divisor_override")
    x = a["input"]
    if x.dim() != n + 2:
        raise _Unsupported(f"a {x.dim()}-D input (batched inputs only)")
    kernel = _ints(a["kernel_size"], n)
    stride = _ints(a["stride"], n) if a["stride"] not in (None, [], ()) else kernel
    attrs: dict[str, Any] = {"kernel": _compact(tr, kernel)}
    if stride != kernel:
        attrs["stride"] = _compact(tr, stride)
    if any(p != 0 for p in _ints(a["padding"], n)):
        attrs["padding"] = _compact(tr, _ints(a["padding"], n))
    if op.startswith("max") and any(d != 1 for d in _ints(a["dilation"], n)):
        attrs["dilation"] = _compact(tr, _ints(a["dilation"], n))
    if a["ceil_mode"]:
        attrs["ceil_mode"] = True
    if op.startswith("avg") and not a["count_include_pad"]:
        attrs["count_include_pad"] = False
    tr.emit(op, [x], c.out, base=op, attrs=attrs)


for _k in _POOLS:
    _HANDLERS[_k] = _pool


_ADAPTIVE = {"F.adaptive_avg_pool1d": "adaptive_avg_pool1d", "adaptive_avg_pool1d": "adaptive_avg_pool1d",
             "F.adaptive_avg_pool2d": "adaptive_avg_pool2d", "adaptive_avg_pool2d": "adaptive_avg_pool2d",
             "F.adaptive_avg_pool3d": "adaptive_avg_pool3d", "adaptive_avg_pool3d": "adaptive_avg_pool3d",
             "F.adaptive_max_pool1d": "adaptive_max_pool1d", "F.adaptive_max_pool2d": "adaptive_max_pool2d",
             "F.adaptive_max_pool3d": "adaptive_max_pool3d", "F._adaptive_max_pool2d": "adaptive_max_pool2d",
             "F._adaptive_max_pool1d": "adaptive_max_pool1d", "F._adaptive_max_pool3d": "adaptive_max_pool3d"}  # fmt: skip


def _adaptive(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("input", None), ("output_size", None), ("return_indices", False)])
    if a["return_indices"]:
        raise _Unsupported("return_indices")
    op = _ADAPTIVE[c.key]
    n = int(op[-2])
    size = _ints(a["output_size"], n)
    if any(s is None for s in size):
        raise _Unsupported("an output_size of None")
    tr.emit(op, [a["input"]], c.out, base=op, attrs={"output_size": _compact(tr, size)})


for _k in _ADAPTIVE:
    _HANDLERS[_k] = _adaptive


_INTERPOLATE = [("input", None), ("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None),
                ("recompute_scale_factor", None), ("antialias", False)]  # fmt: skip


@_handles("F.interpolate")
def _interpolate(tr: _Tracer, c: _Call) -> None:
    scale = c.kwargs.get("_symcost_scale")
    a = _bind(c.args, c.kwargs, _INTERPOLATE)
    x = a["input"]
    n = x.dim() - 2
    mode = a["mode"]
    if a["antialias"]:
        raise _Unsupported("antialias")
    attrs: dict[str, Any] = {}
    if mode in ("bilinear", "bicubic", "linear", "trilinear") and a["align_corners"]:
        attrs["align_corners"] = True
    if scale is not None:
        names = {("nearest", 1): "upsample_nearest1d", ("nearest", 2): "upsample_nearest2d",
                 ("nearest", 3): "upsample_nearest3d", ("linear", 1): "upsample_linear1d",
                 ("bilinear", 2): "upsample_bilinear2d", ("bicubic", 2): "upsample_bicubic2d",
                 ("trilinear", 3): "upsample_trilinear3d"}  # fmt: skip
        op = names.get((mode, n))
        if op is None:
            raise _Unsupported(f"mode {mode!r} on a {x.dim()}-D input")
        attrs = {"scale_factor": scale[0] if len(set(scale)) == 1 else scale, **attrs}
    else:
        op = {("nearest", 2): "interpolate_nearest2d_size", ("bilinear", 2): "interpolate_bilinear2d_size",
              ("bicubic", 2): "interpolate_bicubic2d_size"}.get((mode, n))  # fmt: skip
        if op is None or a["size"] is None:
            raise _Unsupported(f"mode {mode!r} on a {x.dim()}-D input with a fractional scale")
        attrs = {"size": _compact(tr, _ints(a["size"], n)), **attrs}
    tr.emit(op, [x], c.out, base="interpolate", attrs=attrs)


@_handles("scaled_dot_product_attention")
def _sdpa(tr: _Tracer, c: _Call) -> None:
    a = _bind(c.args, c.kwargs, [("query", None), ("key", None), ("value", None), ("attn_mask", None),
                                 ("dropout_p", 0.0), ("is_causal", False), ("scale", None), ("enable_gqa", False)])  # fmt: skip
    q, k, v = a["query"], a["key"], a["value"]
    if q.dim() != 4:
        raise _Unsupported(f"{q.dim()}-D queries (symcost's sdpa takes [B, heads, S, D])")
    if a["attn_mask"] is not None:
        raise _Unsupported("an attn_mask (its add is not in the sdpa formula)")
    attrs = {"causal": True} if a["is_causal"] else {}
    tr.emit("sdpa", [q, k, v], c.out, attrs=attrs)


@_handles("F.multi_head_attention_forward")
def _mha(tr: _Tracer, c: _Call) -> None:
    """nn.MultiheadAttention's functional core, on [S, B, E] (its module transposes batch_first inputs)."""
    names = ["query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
             "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training",
             "key_padding_mask", "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight",
             "k_proj_weight", "v_proj_weight", "static_k", "static_v", "average_attn_weights", "is_causal"]  # fmt: skip
    a = _bind(c.args, c.kwargs, [(n, None) for n in names])
    q, k, v = a["query"], a["key"], a["value"]
    if k is not v:
        raise _Unsupported("different key and value tensors")
    if a["bias_k"] is not None or a["add_zero_attn"] or a["use_separate_proj_weight"]:
        raise _Unsupported("bias_k, add_zero_attn or separate projection weights")
    if a["attn_mask"] is not None or a["key_padding_mask"] is not None:
        raise _Unsupported("a mask")
    if q.dim() != 3:
        raise _Unsupported("unbatched inputs")
    heads = a["num_heads"]
    embed = q.shape[-1]
    params = [a["in_proj_weight"], a["in_proj_bias"], a["out_proj_weight"], a["out_proj_bias"]]
    attrs: dict[str, Any] = {"heads": heads, "head_dim": embed // heads}
    if a["in_proj_bias"] is None:
        attrs["bias"] = False
    if a["is_causal"]:
        attrs["causal"] = True
    out = c.out[0] if isinstance(c.out, tuple) else c.out
    # the formula takes [B, S, E]: move the batch first and back
    q_b = _Placeholder(-1)
    tr.emit("transpose", [q], q_b, base="batch_first", attrs={"dim0": 0, "dim1": 1})
    sources = [q_b, q_b]
    if k is not q:
        k_b = _Placeholder(-2)
        tr.emit("transpose", [k], k_b, base="batch_first", attrs={"dim0": 0, "dim1": 1})
        sources = [q_b, k_b]
    middle = _Placeholder(-3)
    tr.emit("multi_head_attention", sources, middle, base="attention", attrs=attrs, params=params)
    tr.emit("transpose", [middle], out, base="seq_first", attrs={"dim0": 0, "dim1": 1})


def _placeholder_ref(tr: _Tracer, t: Any) -> Any:
    return tr.refs.get(id(t))


def _rnn(tr: _Tracer, c: _Call, op: str) -> None:
    """torch.lstm / torch.gru(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
    batch_first): one formula layer per layer of the stack, batch first."""
    if len(c.args) < 9 or isinstance(c.args[3], tr.torch.Tensor):
        raise _Unsupported("packed sequences")
    x, hx, weights, has_biases, layers, _, _, bidirectional, batch_first = c.args[:9]
    if bidirectional:
        raise _Unsupported("bidirectional")
    per = 4 if has_biases else 2
    out = c.out[0]
    current: Any = x
    if not batch_first:
        current = _Placeholder(-4)
        tr.emit("transpose", [x], current, base="batch_first", attrs={"dim0": 0, "dim1": 1})
    for layer in range(layers):
        w = weights[layer * per : (layer + 1) * per]
        hidden = w[1].shape[1]
        if w[0].shape[0] != w[1].shape[0] or (has_biases and w[2].shape[0] != w[0].shape[0]):
            raise _Unsupported("projections (proj_size)")
        last = layer == layers - 1
        target = out if last and batch_first else _Placeholder(layer)
        attrs: dict[str, Any] = {"hidden_size": hidden}
        if not has_biases:
            attrs["bias"] = False
        tr.emit(op, [current], target, base=op if layers == 1 else f"l{layer}", attrs=attrs, params=list(w))
        current = target
    if not batch_first:
        tr.emit("transpose", [current], out, base="seq_first", attrs={"dim0": 0, "dim1": 1})


@_handles("lstm")
def _lstm(tr: _Tracer, c: _Call) -> None:
    _rnn(tr, c, "lstm")


@_handles("gru")
def _gru(tr: _Tracer, c: _Call) -> None:
    _rnn(tr, c, "gru")


@_handles("zeros", "ones", "full", "empty", "arange", "zeros_like", "ones_like", "empty_like", "full_like", "tensor",
          "rand", "randn", "new_zeros", "new_ones", "new_full", "new_empty")  # fmt: skip
def _constant(tr: _Tracer, c: _Call) -> None:
    out = c.out
    layer = _Layer("constant", c.key, tr.stack[-1][0], tr.stack[-1][1], [], {"shape": [tr.dim(s) for s in out.shape]})
    tr.layers.append(layer)
    tr.refs[id(out)] = ("layer", len(tr.layers) - 1, None)
    tr.keep.append(out)


@_handles("to", "type", "float", "half", "bfloat16", "double", "detach", "clone", "type_as", "requires_grad_",
          "__get__", "data", "cpu", "cuda")  # fmt: skip
def _same_tensor(tr: _Tracer, c: _Call) -> None:
    """Dtype and device casts, detach and clone: the same values, no formula's work."""
    x = c.args[0]
    if isinstance(x, tr.torch.Tensor) and isinstance(c.out, tr.torch.Tensor):
        tr.refs[id(c.out)] = tr.src(x)
        tr.keep.append(c.out)


@_handles("einsum")
def _einsum(tr: _Tracer, c: _Call) -> None:
    """Two-operand einsum as torch computes it: permute and reshape each operand to [batch, M, K] and
    [batch, K, P], one bmm, reshape and permute to the output (torch's sumproduct_pair)."""
    equation = c.args[0].replace(" ", "")
    operands = list(c.args[1:]) if len(c.args) > 2 else list(c.args[1])
    if len(operands) != 2 or "..." in equation or "->" not in equation:
        raise _Unsupported("einsum of other than two operands with an explicit output")
    lhs, out_spec = equation.split("->")
    sa, sb = lhs.split(",")
    a, b = operands
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb):
        raise _Unsupported("a repeated index within an operand")
    size = {ch: d for ch, d in zip(sa, a.shape, strict=True)}
    size.update({ch: d for ch, d in zip(sb, b.shape, strict=True)})
    batch = [ch for ch in out_spec if ch in sa and ch in sb]
    left = [ch for ch in out_spec if ch in sa and ch not in sb]
    right = [ch for ch in out_spec if ch in sb and ch not in sa]
    summed = [ch for ch in sa if ch in sb and ch not in out_spec]
    if any(ch not in out_spec and (ch in sa) != (ch in sb) for ch in sa + sb):
        raise _Unsupported("an index summed within one operand")

    def prod(chars: list[str]) -> Any:
        value: Any = 1
        for ch in chars:
            value = value * size[ch]
        return value

    def step(op: str, source: Any, attrs: dict[str, Any], target: Any = None) -> Any:
        target = target if target is not None else _Placeholder(len(tr.layers))
        tr.emit(op, [source], target, base=f"einsum.{op}", attrs=attrs)
        return target

    a2 = step("permute", a, {"dims": [sa.index(ch) for ch in batch + left + summed]})
    a3 = step("reshape", a2, {"shape": [tr.dim(prod(batch)), tr.dim(prod(left)), tr.dim(prod(summed))]})
    b2 = step("permute", b, {"dims": [sb.index(ch) for ch in batch + summed + right]})
    b3 = step("reshape", b2, {"shape": [tr.dim(prod(batch)), tr.dim(prod(summed)), tr.dim(prod(right))]})
    product = _Placeholder(len(tr.layers))
    tr.emit("bmm", [a3, b3], product, base="einsum.bmm")
    order = batch + left + right
    shaped = step("reshape", product, {"shape": [tr.dim(size[ch]) for ch in order]})
    dims = [order.index(ch) for ch in out_spec]
    if dims == list(range(len(dims))):
        tr.refs[id(c.out)] = tr.refs[id(shaped)]
        tr.keep.append(c.out)
    else:
        step("permute", shaped, {"dims": dims}, target=c.out)


# ---- whole modules whose forward is one formula but not one torch call (Hugging Face's) ----------


def _module_formula(op: str, **fixed: Any) -> Callable[[_Tracer, Any, Any, Any], None]:
    _PENDING_WRITES.append(op)

    def handler(tr: _Tracer, module: Any, args: Any, output: Any) -> None:
        x = args[0]
        params = list(module.parameters(recurse=False))
        attrs = dict(fixed)
        if op == "rmsnorm" and not params:
            attrs["elementwise_affine"] = False
        tr.emit(op, [x], output, base=op, attrs=attrs, params=params)

    return handler


_PENDING_WRITES: list[str] = []
_MODULES.update({
    "NewGELUActivation": _module_formula("gelu_tanh"),
    "GELUTanh": _module_formula("gelu_tanh"),
    "PytorchGELUTanh": _module_formula("gelu_tanh"),
    "FastGELUActivation": _module_formula("gelu_tanh"),
    "GELUActivation": _module_formula("gelu"),
    "QuickGELUActivation": _module_formula("quick_gelu"),
    "SiLUActivation": _module_formula("silu"),
    "LlamaRMSNorm": _module_formula("rmsnorm"),
    "MistralRMSNorm": _module_formula("rmsnorm"),
    "Qwen2RMSNorm": _module_formula("rmsnorm"),
    "T5LayerNorm": _module_formula("rmsnorm"),
})  # fmt: skip


#: What each handler writes, for the generated list of supported calls.
_WRITES = {
    "_convolution": "conv1d / conv2d / conv3d (padding='same' resolved)",
    "_transposed_convolution": "conv_transpose1d / 2d / 3d",
    "_linear": "linear",
    "_addmm": "linear (a learned weight [in, out] and bias: Hugging Face's Conv1D)",
    "_matmul": "linear (x @ a learned weight), matmul (2-D), bmm (equal batch dims)",
    "_batch_norm": "batchnorm1d / 2d / 3d (num_batches_tracked counted with the running stats)",
    "_layer_norm": "layernorm / layernorm_last2 / layernorm_last3",
    "_group_norm": "groupnorm",
    "_rms_norm": "rmsnorm",
    "_embedding": "embedding",
    "_gelu": "gelu, gelu_tanh (approximate='tanh')",
    "_softmax": "softmax / log_softmax / softmin",
    "_neg": "mul by -1",
    "_reshape": "view / reshape (sizes as expressions of the variables)",
    "_flatten": "flatten",
    "_unflatten": "unflatten",
    "_permute": "permute",
    "_transpose": "transpose",
    "_t": "transpose",
    "_contiguous": "contiguous",
    "_cat": "cat / stack (1-D empty tensors dropped, as torch drops them)",
    "_chunk": "chunk (pieces NAME.0, NAME.1, ...)",
    "_split": "split (pieces NAME.0, NAME.1, ...)",
    "_unbind": "unbind",
    "_unsqueeze": "unsqueeze",
    "_squeeze": "squeeze",
    "_expand": "expand",
    "_expand_as": "expand",
    "_narrow": "narrow",
    "_getitem": "select / slice / unsqueeze, one layer per indexed dim (x[:, 0], x[..., 1:3], x[None])",
    "_pad": "pad",
    "_reduce": "mean / sum / amax / amin",
    "_interpolate": "upsample_* (integer scale_factor), interpolate_*_size (size=...)",
    "_sdpa": "sdpa (no attn_mask)",
    "_mha": "multi_head_attention, between transposes to batch-first and back",
    "_lstm": "lstm, one layer per layer of the stack (unidirectional)",
    "_gru": "gru, one layer per layer of the stack (unidirectional)",
    "_constant": "constant (dropped when nothing reads it)",
    "_same_tensor": "nothing: the same tensor (casts, detach, clone)",
    "_einsum": "permute, reshape, bmm, reshape, permute: two operands, torch's own contraction",
}


def supported() -> list[tuple[str, str]]:
    """Every torch call the importer maps, and what it writes (for docs/reference/torch-ops.md).

    >>> dict(supported())["conv2d"]
    "conv1d / conv2d / conv3d (padding='same' resolved)"
    """
    grouped = {**_ACTIVATIONS, **_DROPOUTS, **_BINARY, **{k: v[0] for k, v in _POOLS.items()}, **_ADAPTIVE}
    rows = []
    for key, fn in _HANDLERS.items():
        rows.append((key, grouped.get(key) or _WRITES[fn.__name__]))
    rows += [(f"{name} (module)", f"{_MODULE_WRITES.get(name, '')}") for name in _MODULES]
    return sorted(rows, key=lambda row: row[0].lower().lstrip("_"))


_MODULE_WRITES: dict[str, str] = {}

_MODULE_WRITES.update(zip(_MODULES, _PENDING_WRITES, strict=True))
