"""The YAML reader keeps locations and refuses what could build objects or explode."""

from __future__ import annotations

import pytest

from symcost.errors import YamlError
from symcost.yamlio import load_file, load_text


def test_locations():
    doc = load_text("name: x\nlist:\n  - a\n  - {k: 2}\n", "f.yaml")
    assert str(doc.loc_of("name")) == "f.yaml:1:7"
    assert str(doc["list"].loc_of(1)) == "f.yaml:4:5"
    assert str(doc["list"][1].loc_of("k")) == "f.yaml:4:9"


@pytest.mark.parametrize(
    ("text", "needle", "line"),
    [
        ("a: !!python/object/apply:os.system ['touch /tmp/x']\n", "object-building", 1),
        ("a: !!python/name:os.system\n", "object-building", 1),
        ("a: &x [1, 2]\nb: *x\n", "aliases", 1),  # reported at the anchored node the alias reuses
        ("a: 1\na: 2\n", "duplicate key 'a'", 2),
        ("a: [1, 2\n", "", None),
        ("a: b: c\n", "", 1),
        ("? [1, 2]\n: 3\n", "plain value", 1),
    ],
)
def test_refusals_are_located(text, needle, line):
    with pytest.raises(YamlError) as caught:
        load_text(text, "bad.yaml")
    assert needle in str(caught.value)
    assert caught.value.loc.file == "bad.yaml"
    if line is not None:
        assert caught.value.loc.line == line


def test_billion_laughs_is_refused_fast():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    with pytest.raises(YamlError, match="aliases"):
        load_text(bomb, "bomb.yaml")


def test_large_and_missing_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 1_100_000)
    with pytest.raises(YamlError, match="larger than"):
        load_file(big)
    with pytest.raises(YamlError, match="no such file"):
        load_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(YamlError, match="UTF-8"):
        load_file(binary)
