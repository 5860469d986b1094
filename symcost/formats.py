r"""The output formats, and the one place each escapes text.

Every command that prints data offers the formats of :data:`FORMATS` that fit it, with the same
default (:data:`DEFAULT`); its ``--format`` help is :func:`help_text`. A table is a
:class:`Table`: columns, rows of cells, and notes under it; :meth:`Table.render` writes it in any
format, escaping every text cell and note the way that format needs:

>>> t = Table(("arch", "params"), [('fc, "wide" net', 5050)], right={1}, title="two layers")
>>> print(t.render("csv"))
arch,params
"fc, ""wide"" net",5050
>>> print(t.render("latex"))
% two layers
\begin{tabular}{lr}
\toprule
arch & params \\
\midrule
fc, "wide" net & 5{,}050 \\
\bottomrule
\end{tabular}
>>> latex_text("50% of C_in & $x$")
'50\\% of C\\_in \\& \\$x\\$'
>>> terminal_text("a\x1b[31mb\nc")
'a\\x1b[31mb\\nc'
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from html import escape as _html_escape
from typing import Any

from .errors import UsageError, did_you_mean

#: Every output format symcost writes, with what it is for.
FORMATS: dict[str, str] = {
    "table": "aligned text for a terminal",
    "markdown": "a Markdown table (GitHub, docs)",
    "csv": "comma-separated values, quoted as the csv module does",
    "json": "the data, exact integers, for scripts",
    "latex": "a booktabs tabular or an align* block, for papers",
    "html": "an HTML table (what a notebook shows)",
}
#: The default of every command's ``--format``.
DEFAULT = "table"
#: Former names, still accepted.
ALIASES = {"text": "table", "md": "markdown"}
ALL = tuple(FORMATS)


def check(fmt: str, offered: Sequence[str] = ALL) -> str:
    """The format's name (an alias resolved), or a usage error listing what is offered."""
    name = ALIASES.get(fmt, fmt)
    if name not in offered:
        raise UsageError(f"unknown format '{fmt}'{did_you_mean(fmt, offered)}; choose from {', '.join(offered)}")
    return name


def help_text(offered: Sequence[str] = ALL) -> str:
    """The ``--format`` help for a command that offers ``offered``.

    >>> help_text(("table", "json"))
    'Output format: table (default) or json.'
    """
    names = [f"{n} (default)" if n == DEFAULT else n for n in offered]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"Output format: {listed}."


# ---- escaping: one function per format ----------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: What a terminal must not be handed: C0 and C1 control characters (ESC starts every escape
#: sequence, CSI is U+009B), and the Unicode bidirectional controls that reorder what is shown
#: (the "Trojan Source" characters: U+202A-U+202E, U+2066-U+2069, and the marks U+200E, U+200F,
#: U+061C), plus the line and paragraph separators U+2028, U+2029.
_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


_HTML_HIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# A newline or a tab in a CSV cell is data the csv module quotes; a lone carriage return is not quoted by
# it (its line terminator here is "\n") and would split the row in a reader, so it is shown as \r.
_CSV_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: Any) -> str:
    r"""Text for a terminal: control characters (a newline, an escape sequence, a bidi override) shown
    as ``\n``, ``\x1b``, ``\u202e``."""

    def show(match: re.Match[str]) -> str:
        char = match.group(0)
        code = ord(char)
        named = {"\n": r"\n", "\t": r"\t", "\r": r"\r"}.get(char)
        return named or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return _TERMINAL.sub(show, str(text))


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_text(text: Any) -> str:
    """Text for LaTeX's text mode: its ten special characters escaped, control characters as spaces."""
    return "".join(_LATEX.get(c, c) for c in _TERMINAL.sub(" ", str(text)))


def latex_comment(text: Any) -> str:
    """A ``%`` comment line: a newline in it would end the comment and start LaTeX, so control
    characters become spaces, and the text is escaped as text too (``^^J`` is a newline to TeX)."""
    return "% " + latex_text(text)


def html_text(text: Any) -> str:
    """Text for HTML: ``< > & " '`` escaped; control characters other than whitespace, and bidi
    overrides, shown as ``\\x1b``, ``\\u202e``."""
    return _html_escape(_HTML_HIDDEN.sub(lambda m: terminal_text(m.group(0)), str(text)))


def markdown_text(text: Any) -> str:
    """Text for a Markdown table cell: ``|`` and backslashes escaped, newlines as ``<br>``, HTML escaped."""
    text = _html_escape(str(text), quote=False).replace("\\", "\\\\").replace("|", r"\|")
    return _TERMINAL.sub(" ", text.replace("\r\n", "<br>").replace("\n", "<br>"))


def markdown_code(text: Any) -> str:
    """Text as inline code in a Markdown table cell (fenced with enough backticks)."""
    text = _TERMINAL.sub(" ", str(text)).replace("|", r"\|")
    fence = "`" * (max((len(m) for m in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


#: A text cell that begins with one of these is a formula to a spreadsheet (Excel, LibreOffice,
#: Google Sheets): ``=HYPERLINK(...)``, ``+cmd|...``, ``-2+3``, ``@SUM(...)``; a tab or carriage return
#: before one hides it. OWASP's "CSV Injection" page advises prefixing such a cell with a single quote
#: (https://owasp.org/www-community/attacks/CSV_Injection), which spreadsheets read as "this is text".
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell: numbers as they are, text that a spreadsheet would run as a formula prefixed with ``'``.

    >>> csv_cell("=1+2"), csv_cell("@SUM(A1)"), csv_cell(-3), csv_cell("resnet50")
    ("'=1+2", "'@SUM(A1)", -3, 'resnet50')
    """
    if not isinstance(value, str):
        return value
    value = _CSV_HIDDEN.sub(lambda m: terminal_text(m.group(0)), value)
    return "'" + value if value.startswith(CSV_FORMULA_START) else value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV through the csv module (a comma, a quote or a newline in a cell is quoted), every
    text cell through :func:`csv_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([csv_cell(c) for c in row] for row in rows)
    return buffer.getvalue().rstrip("\n")


def json_safe(data: Any) -> Any:
    """``data`` with every float that JSON lacks (NaN, Infinity) as ``None`` (JSON's null).

    >>> json_safe({"latency": float("inf"), "x": [1.5, float("nan")]})
    {'latency': None, 'x': [1.5, None]}
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    return data


def json_text(data: Any) -> str:
    """JSON, indented; a value JSON lacks (an exact ratio 11/10, an expression) is written as its text,
    a float that is not finite as null (strict JSON has no NaN or Infinity: ``allow_nan=False``)."""
    return json.dumps(json_safe(data), indent=2, default=str, allow_nan=False)


# ---- one table model ---------------------------------------------------------------------------


def _count(value: Any) -> str:
    return f"{value:,}"


def cell_text(value: Any) -> str:
    """How a cell reads in the table, Markdown, LaTeX and HTML formats: counts with thousands
    separators, seconds and ratios (Fractions, floats) to 6 digits, missing values as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Fraction):
        value = float(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return _count(int(value))
    return str(value)


def cell_data(value: Any) -> Any:
    """A cell in CSV and JSON: numbers as numbers (exact ints, Fractions as floats), the rest as text."""
    if isinstance(value, Fraction):
        return float(value)
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


@dataclass
class Table:
    """Columns, rows of cells (numbers or text, not yet formatted) and notes under the table.

    ``shown`` overrides a cell's text in the table, Markdown, LaTeX and HTML formats (a layer
    name with its count, ``x3``), keeping the raw cell for CSV and JSON; ``code`` lists the
    columns that hold expressions (printed as code in Markdown and HTML, math in LaTeX).
    """

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    right: set[int] = field(default_factory=set)
    title: str = ""
    notes: Sequence[str] = ()
    shown: Mapping[tuple[int, int], str] = field(default_factory=dict)
    code: set[int] = field(default_factory=set)
    latex_cells: Mapping[tuple[int, int], str] = field(default_factory=dict)  # cells already in LaTeX math

    def text(self, row: int, column: int) -> str:
        if (row, column) in self.shown:
            return self.shown[row, column]
        return cell_text(self.rows[row][column])

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, (cell_data(c) for c in row))) for row in self.rows]

    def render(self, fmt: str) -> str:
        return {
            "table": self.table,
            "markdown": self.markdown,
            "csv": self.csv,
            "json": self.json,
            "latex": self.latex,
            "html": self.html,
        }[check(fmt)]()

    def table_lines(self) -> list[str]:
        """The aligned rows, a rule under the header; every cell with control characters shown."""
        header = [terminal_text(c) for c in self.columns]
        body = [[terminal_text(self.text(r, c)) for c in range(len(self.columns))] for r in range(len(self.rows))]
        return aligned(header, body, self.right)

    def table(self) -> str:
        lines = ([terminal_text(self.title), ""] if self.title else []) + self.table_lines()
        if self.notes:
            lines += ["", *(terminal_text(n) for n in self.notes)]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"**{markdown_text(self.title)}**", ""] if self.title else []
        lines.append("| " + " | ".join(markdown_text(c) for c in self.columns) + " |")
        lines.append("|" + "".join("---:|" if i in self.right else "---|" for i in range(len(self.columns))))
        for r in range(len(self.rows)):
            cells = [
                markdown_code(self.text(r, c)) if c in self.code else markdown_text(self.text(r, c))
                for c in range(len(self.columns))
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines += ["", *(markdown_text(n) for n in self.notes)]
        return "\n".join(lines)

    def csv(self) -> str:
        return csv_text([list(self.columns), *([cell_data(c) for c in row] for row in self.rows)])

    def json(self) -> str:
        return json_text(self.records())

    def latex(self) -> str:
        def cell(r: int, c: int) -> str:
            if (r, c) in self.latex_cells:
                return f"${self.latex_cells[r, c]}$"
            text = latex_text(self.text(r, c))
            return text.replace(",", "{,}") if c in self.right else text

        spec = "".join("r" if i in self.right else "l" for i in range(len(self.columns)))
        lines = [latex_comment(self.title)] if self.title else []
        lines += [
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(latex_text(c) for c in self.columns) + r" \\",
        ]
        lines.append(r"\midrule")
        lines += [" & ".join(cell(r, c) for c in range(len(self.columns))) + r" \\" for r in range(len(self.rows))]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [latex_comment(n) for n in self.notes]
        return "\n".join(lines)

    def html(self) -> str:
        def td(tag: str, index: int, content: str) -> str:
            align = "right" if index in self.right else "left"
            return f'<{tag} style="text-align: {align}">{content}</{tag}>'

        def content(r: int, c: int) -> str:
            text = html_text(self.text(r, c))
            return f"<code>{text}</code>" if c in self.code else text

        head = "".join(td("th", i, html_text(h)) for i, h in enumerate(self.columns))
        body = "\n".join(
            "<tr>" + "".join(td("td", c, content(r, c)) for c in range(len(self.columns))) + "</tr>"
            for r in range(len(self.rows))
        )
        parts = [f"<p>{html_text(self.title)}</p>"] if self.title else []
        parts.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
        parts += [f"<p>{html_text(n)}</p>" for n in self.notes]
        return "\n".join(parts)


def aligned(header: Sequence[str], body: Sequence[Sequence[str]], right: Iterable[int]) -> list[str]:
    """Columns padded to one width, numbers (``right``) right-aligned, a rule under the header."""
    right = set(right)
    widths = [max([len(header[i]), *(len(r[i]) for r in body)]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in body]


# ---- HTML building blocks (the same in every HTML output) -------------------------------------------


def html_code(value: Any) -> str:
    return f"<code>{html_text(value)}</code>"


def html_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """A table of cells that are already HTML; columns in ``right`` are right-aligned (numbers)."""
    right = set(right)

    def cell(tag: str, index: int, content: str) -> str:
        align = "right" if index in right else "left"
        return f'<{tag} style="text-align: {align}">{content}</{tag}>'

    head = "".join(cell("th", i, html_text(h)) for i, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def html_div(kind: str, parts: Iterable[str]) -> str:
    """Parts in one ``<div class="symcost-KIND">``, the class a notebook's CSS may style."""
    return f'<div class="symcost-{kind}">\n' + "\n".join(parts) + "\n</div>"


def html_count(value: Any) -> str:
    return html_text(f"{int(value):,}")
