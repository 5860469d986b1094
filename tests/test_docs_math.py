"""The docs' math is typeset at build time: every formula the reference generator writes becomes MathML.

``scripts/mkdocs_mathml.py`` (an mkdocs hook) turns the LaTeX that ``pymdownx.arithmatex`` leaves in
a page into ``<math>`` elements with ``latex2mathml``, so the site shows math with no script and no
network. The formula reference is generated from the catalog (``scripts/gen_docs.py``); a new
formula whose LaTeX uses a construct latex2mathml cannot typeset fails here, with the formula's
source quoted, before it fails the site build.
"""

from __future__ import annotations

import importlib.util
import re
from xml.etree import ElementTree

import markdown
import pytest

from tests.docs_runner import ROOT

MATHML = "{http://www.w3.org/1998/Math/MathML}"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook():
    return _script("mkdocs_mathml")


@pytest.fixture(scope="module")
def reference_html():
    """The formula reference as the catalog generates it now, through Markdown as mkdocs.yml configures it."""
    text = _script("gen_docs").formula_reference()
    page = markdown.markdown(
        text,
        extensions=["tables", "attr_list", "pymdownx.arithmatex"],
        extension_configs={"pymdownx.arithmatex": {"generic": True}},
    )
    return text, page


def test_every_math_block_of_the_generated_reference_converts(hook, reference_html):
    text, page = reference_html
    blocks = hook.BLOCK.findall(page)
    inline = hook.INLINE.findall(page)
    # every $$ ... $$ of the Markdown reached the hook as one block (none left to Markdown's emphasis)
    assert len(blocks) == text.count("$$") // 2 > 100
    assert len(inline) > 100
    failures = []
    for latex, display in [(b, True) for b in blocks] + [(i, False) for i in inline]:
        try:
            hook.to_mathml(hook.html.unescape(latex), display)
        except hook.MathError as exc:
            failures.append(str(exc))
    assert failures == [], f"{len(failures)} of {len(blocks) + len(inline)} fail:\n" + "\n".join(failures[:20])
    typeset = hook.typeset(page)
    assert "arithmatex" not in typeset and r"\mathrm" not in typeset and r"\(" not in typeset
    assert typeset.count("<math ") == len(blocks) + len(inline)


def test_conv2d_costs_are_mathml(hook):
    """conv2d's output height, as the reference writes it: a floor of a fraction, a subscript, aligned rows."""
    latex = (
        r"\begin{aligned}" "\n"
        r"\mathrm{y} &: [N, C_{\mathrm{out}}, \left\lfloor \frac{H + 2 p - k}{s} \right\rfloor + 1] \\" "\n"
        r"\mathrm{MACs} &= \max\left(1, N\right) C_{\mathrm{in}} k^{2}" "\n"
        r"\end{aligned}"
    )  # fmt: skip
    root = ElementTree.fromstring(hook.to_mathml(latex, display=True))
    assert root.tag == f"{MATHML}math" and root.get("display") == "block"
    rows = root.findall(f".//{MATHML}mtr")
    assert len(rows) == 2  # one table row per aligned line, name right-aligned, value left-aligned
    assert [td.get("columnalign") for td in rows[0].findall(f"{MATHML}mtd")] == ["right", "left"]
    assert root.find(f".//{MATHML}mfrac") is not None
    operators = [mo.text for mo in root.iter(f"{MATHML}mo")]
    assert "\u230a" in operators and "\u230b" in operators  # ⌊ ⌋
    assert "max" in operators
    subscripts = root.findall(f".//{MATHML}msub")
    assert any(s[0].text == "C" and "".join(s[1].itertext()) == "in" for s in subscripts)


def test_inline_math_stays_inline(hook):
    assert hook.to_mathml("k^{2}").startswith('<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">')
    page = '<p>a <span class="arithmatex">\\(a &lt; b\\)</span> b</p>'
    out = hook.typeset(page)
    assert out.startswith("<p>a <math ") and out.endswith("</math> b</p>")
    assert "&lt;" in out or "&#x0003C;" in out  # the comparison survives as an escaped character


@pytest.mark.parametrize(
    "latex, why",
    [
        (r"\foo{x}", r"does not know \foo"),  # latex2mathml would print "\foo" on the page
        (r"\left( x", "ExtraLeftOrMissingRightError"),
        (r"\frac{1}", "<mfrac> has 1 parts, not 2"),
        (r"x}", "an unbalanced }"),
        (r"a & b", "malformed MathML"),  # an alignment mark outside an aligned block
    ],
)
def test_untypesettable_latex_is_an_error_that_quotes_it(hook, latex, why):
    with pytest.raises(hook.MathError, match=re.escape(why)) as info:
        hook.to_mathml(latex)
    assert repr(latex) in str(info.value)
