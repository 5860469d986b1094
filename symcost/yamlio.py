"""The only YAML reader in symcost: ``yaml.safe_load`` semantics, plus a location on every node.

Mappings load as :class:`Mapping` and sequences as :class:`Sequence`; both remember where they
and each of their values stand, so that any later error can name ``file:line:col``. Scalars stay
plain Python values (str, int, bool, None, float).

Refused, each with a located :class:`~symcost.errors.YamlError`:

- tags that build objects (``!!python/object/apply:os.system``): the safe constructor refuses them;
- aliases (``*ref``): they are how "billion laughs" bombs grow, and symcost files never need them;
- duplicate keys, which PyYAML would otherwise silently let the last one win;
- files over :data:`MAX_BYTES`.

>>> doc = load_text("a: 1\\nb: [x, y]\\n", "demo.yaml")
>>> doc["b"][1], str(doc.loc_of("b")), str(doc["b"].loc_of(1))
('y', 'demo.yaml:2:4', 'demo.yaml:2:8')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, SymcostError, YamlError, did_you_mean

MAX_BYTES = 1_000_000


class Mapping(dict):
    """A dict that knows where it, its keys and its values were written."""

    loc: Location
    key_locs: dict[Any, Location]
    value_locs: dict[Any, Location]

    def loc_of(self, key: Any) -> Location:
        """Where the value of ``key`` was written (or the mapping itself if it is absent)."""
        return self.value_locs.get(key, self.loc)

    def key_loc(self, key: Any) -> Location:
        return self.key_locs.get(key, self.loc)


class Sequence(list):
    """A list that knows where it and each of its items were written."""

    loc: Location
    item_locs: list[Location]

    def loc_of(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc


def _loc(file: str, mark: Any) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


# libyaml's C parser when PyYAML has it (10x faster); construction stays in Python either way.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """A safe loader that keeps marks, refuses aliases and duplicate keys."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # An alias (*name) hands the constructor a node it has seen before: refuse it here, which
        # works for both parsers and stops "billion laughs" before anything is expanded.
        if node in self.constructed_objects or node in self.recursive_objects:
            raise YamlError(
                "YAML aliases (*name) are not accepted in symcost files (this anchored node is reused)",
                _loc(self.name, node.start_mark),
            )
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: Any, deep: bool = False) -> Mapping:
        if not isinstance(node, yaml.MappingNode):
            raise YamlError("expected a mapping", _loc(self.name, node.start_mark))
        self.flatten_mapping(node)
        result = Mapping()
        result.loc = _loc(self.name, node.start_mark)
        result.key_locs = {}
        result.value_locs = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise YamlError("a mapping key must be a plain value", _loc(self.name, key_node.start_mark)) from None
            if key in result:
                raise YamlError(f"duplicate key '{key}'", _loc(self.name, key_node.start_mark))
            result[key] = self.construct_object(value_node, deep=True)
            result.key_locs[key] = _loc(self.name, key_node.start_mark)
            result.value_locs[key] = _loc(self.name, value_node.start_mark)
        return result

    def construct_sequence(self, node: Any, deep: bool = False) -> Sequence:
        if not isinstance(node, yaml.SequenceNode):
            raise YamlError("expected a sequence", _loc(self.name, node.start_mark))
        result = Sequence(self.construct_object(child, deep=True) for child in node.value)
        result.loc = _loc(self.name, node.start_mark)
        result.item_locs = [_loc(self.name, child.start_mark) for child in node.value]
        return result


class Decimal(float):
    """A YAML float that remembers how it was written (``width: 1.1``), so that the expression
    parser reads it exactly (11/10) instead of through the nearest binary float."""

    text: str


def _construct_float(loader: Any, node: Any) -> float:
    value = Decimal(loader.construct_yaml_float(node))
    value.text = str(node.value)
    return value


# Route the generic map/seq tags through the located constructors.
_Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node))
_Loader.add_constructor("tag:yaml.org,2002:seq", lambda loader, node: loader.construct_sequence(node))
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


#: Characters YAML forbids in a file (YAML 1.1, "5.1 Character Set"): C0 controls but tab, newline
#: and return; DEL and C1 controls but NEL; surrogates; U+FFFE and U+FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def _forbidden_character(text: str, name: str) -> None:
    """One located error for the first character YAML forbids (a NUL byte), before the parser sees it."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return
    line = text.count("\n", 0, found.start()) + 1
    col = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    char = found.group(0)
    what = "a NUL byte" if char == "\x00" else f"the control character U+{ord(char):04X}"
    raise YamlError(f"{what} is not allowed in a YAML file", Location(name, line, col))


def load_text(text: str, name: str = "<string>") -> Any:
    """Parse YAML text; every failure is a :class:`YamlError` located in ``name``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlError(f"file is larger than {MAX_BYTES} bytes", Location(name))
    _forbidden_character(text, name)
    loader = _Loader(text)
    loader.name = name  # the C parser ignores it in marks; _loc() uses this instead
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem = f"{problem} (symcost reads plain YAML only: no object-building tags)"
        loc = _loc(name, mark) if mark is not None else Location(name)
        raise YamlError(problem, loc) from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "malformed YAML"
        raise YamlError(f"malformed YAML: {first}", Location(name)) from None
    except RecursionError:
        raise YamlError("YAML nested too deeply", Location(name)) from None
    finally:
        loader.dispose()


def load_file(path: str | Path, display_name: str | None = None) -> Any:
    """Read and parse one YAML file; ``display_name`` is what errors call it."""
    from .files import read_limited

    path = Path(path)
    name = display_name or str(path)
    try:
        text = read_limited(path, MAX_BYTES, what="file").decode("utf-8")
    except ValueError as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise YamlError(f"not UTF-8 text ({exc.reason})", Location(name)) from None
        raise YamlError(str(exc), Location(name)) from None
    except FileNotFoundError:
        raise YamlError("no such file", Location(name)) from None
    except IsADirectoryError:
        raise YamlError("is a directory, not a YAML file", Location(name)) from None
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text ({exc.reason})", Location(name)) from None
    except OSError as exc:
        raise YamlError(f"cannot read: {exc.strerror}", Location(name)) from None
    return load_text(text, name)


# ---- validators shared by the formula and architecture readers -----------------------------
# Each takes the error class to raise, so a formula file reports FormulaError and an
# architecture file ArchError, from the same checks.


def mapping_at(value: Any, what: str, loc: Location, error: type[SymcostError], optional: bool = False) -> Mapping:
    """``value`` as a located mapping; ``None`` is an empty one when ``optional``."""
    if value is None and optional:
        empty = Mapping()
        empty.loc, empty.key_locs, empty.value_locs = loc, {}, {}
        return empty
    if not isinstance(value, Mapping):
        raise error(f"{what} must be a mapping", loc)
    return value


def check_keys(mapping: Mapping, allowed: Iterable[str], what: str, error: type[SymcostError]) -> None:
    """Refuse keys outside ``allowed``, suggesting the nearest."""
    allowed = set(allowed)
    for key in mapping:
        if key not in allowed:
            raise error(f"{what}: unknown key '{key}'{did_you_mean(str(key), allowed)}", mapping.key_loc(key))


def text_at(mapping: Mapping, key: str, error: type[SymcostError], required: bool = False) -> str:
    """The text under ``key`` (stripped), ``""`` when absent and not required."""
    value = mapping.get(key)
    if value is None:
        if required:
            raise error(f"missing '{key}'", mapping.loc)
        return ""
    if not isinstance(value, str):
        raise error(f"'{key}' must be text", mapping.loc_of(key))
    return value.strip()


def texts_at(mapping: Mapping, key: str, error: type[SymcostError]) -> list[str]:
    """A text or a list of texts under ``key``, as a list."""
    value = mapping.get(key, [])
    if isinstance(value, str):
        return [value.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise error(f"'{key}' must be text or a list of text", mapping.loc_of(key))
    return [v.strip() for v in value]
