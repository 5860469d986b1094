"""An mkdocs hook that typesets the docs' LaTeX as MathML when the site is built.

The site then shows its math with no script and no network: browsers draw MathML themselves
(Chromium since 109, Firefox and Safari long before). ``pymdownx.arithmatex`` in generic mode keeps
``$...$`` and ``$$...$$`` away from Markdown's emphasis and escapes and leaves them in the page as

    <span class="arithmatex">\\(C_{\\mathrm{in}} k^{2}\\)</span>
    <div class="arithmatex">\\[\\begin{aligned}\\mathrm{MACs} &amp;= N C_{\\mathrm{in}}\\end{aligned}\\]</div>

and ``on_page_content`` below replaces each with the ``<math>`` element that ``latex2mathml`` writes
for it (the display block inside ``<div class="math-display">``, which docs/css/extra.css lets scroll).

LaTeX that cannot be typeset fails the build, naming the page and the source: a conversion error, a
command ``latex2mathml`` does not know (it would otherwise print ``\\foo`` on the page), output that
is not well-formed XML, a fraction or script missing a part, or an unbalanced brace.
``tests/test_docs_math.py`` converts every math block that ``scripts/gen_docs.py`` writes into the
formula reference.
"""

from __future__ import annotations

import html
import re
from xml.etree import ElementTree

from latex2mathml.converter import convert

INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)

# amsmath's ``aligned`` (alignment inside a display) is ``align*`` to latex2mathml, which knows only the latter:
# the same right/left column pairs.
ALIASES = {r"\begin{aligned}": r"\begin{align*}", r"\end{aligned}": r"\end{align*}"}


# What latex2mathml writes for \frac{1} (no denominator) is an <mfrac> of one part, which browsers draw as nothing.
ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "munder": 2, "mover": 2, "munderover": 3, "mroot": 2}


class MathError(ValueError):
    """A piece of LaTeX that latex2mathml cannot turn into MathML."""


def to_mathml(latex: str, display: bool = False) -> str:
    """The MathML of one piece of LaTeX, or a MathError that quotes it.

    >>> to_mathml(r"k^{2}")
    '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msup><mi>k</mi><mrow><mn>2</mn></mrow></msup></mrow></math>'
    """
    source = latex
    for old, new in ALIASES.items():
        source = source.replace(old, new)
    try:
        mathml = convert(source, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises its own exception types, and IndexError etc. on bad input
        raise MathError(f"cannot typeset {latex!r}: {type(exc).__name__}: {exc}") from exc
    unknown = re.findall(r"\\[A-Za-z]+", mathml)
    if unknown:
        raise MathError(f"cannot typeset {latex!r}: latex2mathml does not know {', '.join(sorted(set(unknown)))}")
    try:
        root = ElementTree.fromstring(mathml)
    except ElementTree.ParseError as exc:
        raise MathError(f"cannot typeset {latex!r}: latex2mathml wrote malformed MathML ({exc})") from exc
    for element in root.iter():
        tag = element.tag.rpartition("}")[2]
        if tag in ARITY and len(element) != ARITY[tag]:
            raise MathError(f"cannot typeset {latex!r}: <{tag}> has {len(element)} parts, not {ARITY[tag]}")
        if tag in ("mi", "mo") and element.text in ("{", "}"):
            raise MathError(f"cannot typeset {latex!r}: an unbalanced {element.text}")
    return mathml


def typeset(page_html: str) -> str:
    """The page's HTML with every arithmatex block and inline span replaced by MathML."""
    page_html = BLOCK.sub(
        lambda m: f'<div class="math-display">{to_mathml(html.unescape(m[1]), True)}</div>', page_html
    )
    return INLINE.sub(lambda m: to_mathml(html.unescape(m[1])), page_html)


def on_page_content(content: str, page, **kwargs) -> str:
    """mkdocs' event: a page's Markdown is HTML now; typeset its math before the theme wraps it."""
    from mkdocs.exceptions import PluginError

    try:
        return typeset(content)
    except MathError as exc:
        raise PluginError(f"{page.file.src_path}: {exc}") from exc
