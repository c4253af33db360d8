"""Output formats of the report: how Markdown, HTML and LaTeX write headings, tables and figures."""

from __future__ import annotations

import base64
import html
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler


@dataclass(frozen=True)
class Notation:
    """How a format writes direction arrows, ± and the flag of a row, and escapes plain text."""

    up: str
    down: str
    pm: str
    escape: Callable[[str], str]
    flag: str = "†"


@dataclass(frozen=True)
class Shown:
    """A table ready to print: escaped strings, which cells to bold, which columns are numbers."""

    cells: "pd.DataFrame"
    best: "pd.DataFrame"
    numeric: tuple[str, ...]


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def escape_latex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return re.sub(r"[\\&%$#_{}~^]", lambda match: _LATEX_SPECIAL[match.group()], text)


class Writer(ABC):
    """Writes the parts of one report document in one format."""

    suffix: str
    notation: Notation

    @abstractmethod
    def heading(self, text: str, level: int) -> str: ...

    @abstractmethod
    def paragraph(self, text: str) -> str: ...

    @abstractmethod
    def items(self, lines: list[str]) -> str: ...

    @abstractmethod
    def code(self, text: str) -> str: ...

    @abstractmethod
    def table(self, shown: Shown, caption: str) -> str: ...

    @abstractmethod
    def image(self, path: Path, root: Path, caption: str) -> str:
        """The figure at ``path`` in a document written to the folder ``root``."""

    @abstractmethod
    def document(self, title: str, parts: list[str]) -> str: ...


def _styler(shown: Shown) -> "Styler":
    """A Styler of ``shown`` without index, best cells in bold."""
    bold = shown.best.replace({True: "font-weight: bold;", False: ""})
    return shown.cells.style.hide(axis="index").apply(lambda _: bold, axis=None)


class MarkdownWriter(Writer):
    suffix = "md"
    notation = Notation("↑", "↓", "±", lambda text: text.replace("|", r"\|"))

    def heading(self, text: str, level: int) -> str:
        return f"{'#' * level} {self.notation.escape(text)}"

    def paragraph(self, text: str) -> str:
        return self.notation.escape(text)

    def items(self, lines: list[str]) -> str:
        return "\n".join(f"- {self.notation.escape(line)}" for line in lines)

    def code(self, text: str) -> str:
        return f"```\n{text.rstrip()}\n```"

    def table(self, shown: Shown, caption: str) -> str:
        cells = shown.cells.mask(shown.best, "**" + shown.cells + "**")
        rule = ["---:" if column in shown.numeric else "---" for column in cells.columns]
        rows = [list(cells.columns), rule, *cells.to_numpy().tolist()]
        table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
        return f"{self.notation.escape(caption)}\n\n{table}"

    def image(self, path: Path, root: Path, caption: str) -> str:
        return f"![{self.notation.escape(caption)}]({path.relative_to(root).as_posix()})"

    def document(self, title: str, parts: list[str]) -> str:
        return "\n\n".join([self.heading(title, 1), *parts]) + "\n"


#: sorts a table.sortable by the clicked column (again: reversed); numbers (a leading number,
#: "1,234" or "0.5 ± 0.1") numerically, other text naturally, dashes (missing) always last
_SORT_SCRIPT = r"""
function leadingNumber(text) {
  const match = /^[-+]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?/i.exec(text);
  return match ? parseFloat(match[0].replace(/,/g, "")) : NaN;
}
function compareCells(a, b, sign) {
  if ((a === "—") !== (b === "—")) return a === "—" ? 1 : -1;
  const x = leadingNumber(a), y = leadingNumber(b);
  if (!isNaN(x) && !isNaN(y)) return sign * (x - y);
  return sign * a.localeCompare(b, undefined, {numeric: true});
}
document.querySelectorAll("table.sortable").forEach(table => {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => header.addEventListener("click", () => {
    const sign = header.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    headers.forEach(h => h.removeAttribute("aria-sort"));
    header.setAttribute("aria-sort", sign > 0 ? "ascending" : "descending");
    const body = table.tBodies[0];
    const text = row => row.cells[column].textContent.trim();
    body.append(...Array.from(body.rows).sort((a, b) => compareCells(text(a), text(b), sign)));
  }));
});
"""


class HtmlWriter(Writer):
    suffix = "html"
    notation = Notation("↑", "↓", "±", html.escape)
    _css = ("body{font-family:sans-serif;max-width:80em;margin:auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:1em 0}caption{text-align:left;color:#555}"
            "th,td{padding:2px 8px;border-bottom:1px solid #ccc}"
            "table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}"
            'th[aria-sort=ascending]::after{content:" \\25B2"}'
            'th[aria-sort=descending]::after{content:" \\25BC"}'
            "figure{margin:1em 0}figcaption{color:#555}img{max-width:100%}"
            "pre{background:#f6f6f6;padding:.5em;overflow-x:auto}")

    def heading(self, text: str, level: int) -> str:
        return f"<h{level}>{html.escape(text)}</h{level}>"

    def paragraph(self, text: str) -> str:
        return f"<p>{html.escape(text)}</p>"

    def items(self, lines: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"

    def code(self, text: str) -> str:
        return f"<pre>{html.escape(text.rstrip())}</pre>"

    def table(self, shown: Shown, caption: str) -> str:
        return (_styler(shown).set_properties(subset=list(shown.numeric), **{"text-align": "right"})
                .set_caption(html.escape(caption)).set_table_attributes('class="sortable"')
                .to_html())

    def image(self, path: Path, root: Path, caption: str) -> str:
        """The figure embedded as a data URI: the page is one self-contained file."""
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def document(self, title: str, parts: list[str]) -> str:
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(title)}</title><style>{self._css}</style></head>\n"
                f"<body>\n{self.heading(title, 1)}\n" + "\n".join(parts)
                + f"\n<script>{_SORT_SCRIPT}</script>\n</body></html>\n")


class LatexWriter(Writer):
    suffix = "tex"
    notation = Notation(r"$\uparrow$", r"$\downarrow$", r"$\pm$", escape_latex, r"$\dagger$")
    _sections = {2: "section", 3: "subsection"}

    def heading(self, text: str, level: int) -> str:
        return rf"\{self._sections.get(level, 'paragraph')}{{{escape_latex(text)}}}"

    def paragraph(self, text: str) -> str:
        return escape_latex(text)

    def items(self, lines: list[str]) -> str:
        body = "\n".join(rf"  \item {escape_latex(line)}" for line in lines)
        return f"\\begin{{itemize}}\n{body}\n\\end{{itemize}}"

    def code(self, text: str) -> str:
        return f"\\begin{{verbatim}}\n{text.rstrip()}\n\\end{{verbatim}}"

    def table(self, shown: Shown, caption: str) -> str:
        column_format = "".join("r" if c in shown.numeric else "l" for c in shown.cells.columns)
        return _styler(shown).to_latex(hrules=True, convert_css=True, column_format=column_format,
                                       caption=escape_latex(caption), position="htbp",
                                       position_float="centering")

    def image(self, path: Path, root: Path, caption: str) -> str:
        return (f"\\begin{{figure}}[htbp]\n\\centering\n\\includegraphics[width=\\linewidth]"
                f"{{{path.relative_to(root).as_posix()}}}\n\\caption{{{escape_latex(caption)}}}\n"
                f"\\end{{figure}}")

    def document(self, title: str, parts: list[str]) -> str:
        preamble = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                    "\\usepackage{graphicx}\n\\usepackage[margin=2cm]{geometry}\n")
        body = "\n\n".join(parts)
        return (f"{preamble}\\title{{{escape_latex(title)}}}\n\\date{{}}\n\\begin{{document}}\n"
                f"\\maketitle\n\n{body}\n\n\\end{{document}}\n")


WRITERS: dict[str, Writer] = {w.suffix: w for w in (MarkdownWriter(), HtmlWriter(), LatexWriter())}
