"""Label/value rows in aligned columns, drawn the way rich's
`Table.grid(padding=(0, 2))` draws them, at a fraction of its cost.

The detail screen shows four such grids (statistics, phases, uptime windows,
certificate) and Textual renders each twice per layout: once to measure its
height, once to draw it. rich's Table measures and renders every cell through
its generic machinery (a Padding per cell, a console render per cell): a fifth
of the time opening a target's details took at 10,000 targets
(bench/keypress_bench.py). Here a row is one Text line; a cell of the last
column that does not fit wraps under its own column, as rich wraps it while
that column stays the widest. A grid narrower than that is left to rich's
Table, which shrinks the others too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

Justify = Literal["left", "right"]
GAP = 2   # cells between columns (the grids' padding=(0, 2))


class Grid:
    def __init__(self, *columns: tuple[str, Justify]) -> None:
        """`columns`: (style, justify) per column."""
        self.columns = columns
        self.rows: list[tuple[Text, ...]] = []
        self._given: list[tuple[str | Text, ...]] = []   # as added, for rich's Table

    def add_row(self, *cells: str | Text) -> None:
        self._given.append(cells)
        self.rows.append(tuple(self._cell(index, cell) for index, cell in enumerate(cells)))

    def _cell(self, index: int, cell: str | Text) -> Text:
        style = self.columns[index][0]
        if isinstance(cell, str):
            return Text(cell, style=style)
        text = cell.copy()   # its own style over the column's, its padding included
        text.style = Style.combine([Style.parse(style), _style(cell.style)])
        return text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not all(_simple(cell.plain) for row in self.rows for cell in row):
            yield self._as_table()
            return
        widths = [max((row[index].cell_len for row in self.rows), default=0)
                  for index in range(len(self.columns))]
        room = options.max_width - sum(widths[:-1]) - GAP * (len(widths) - 1)
        # rich shrinks the widest column first: while the last one stays the
        # widest, that is the last one alone, wrapped (as here)
        longest_word = max((cell_len(word) for row in self.rows for word in row[-1].plain.split()),
                           default=0)
        if room < max([1, longest_word, *widths[:-1]]) or 0 in widths:
            yield self._as_table()
            return
        widths[-1] = min(widths[-1], room)
        for row in self.rows:
            yield from self._row_lines(console, row, widths)

    def _row_lines(self, console: Console, row: tuple[Text, ...],
                   widths: list[int]) -> Iterator[Segment]:
        *firsts, last = row
        last_lines = last.wrap(console, widths[-1], justify=self.columns[-1][1],
                               overflow="fold") if last.plain else [last]
        for number, tail in enumerate(last_lines):
            line = Text()
            for index, cell in enumerate(firsts):
                style, justify = self.columns[index]
                line.append_text(_fitted(cell if number == 0 else Text(style=style),
                                         widths[index], justify))
                line.append(" " * GAP, style)   # a cell's padding has its column's style
            style, justify = self.columns[-1]
            line.append_text(_fitted(tail, widths[-1], justify))
            yield from line.render(console)
            yield Segment.line()

    def _as_table(self) -> Table:
        table = Table.grid(padding=(0, GAP))
        for style, justify in self.columns:
            table.add_column(style=style or None, justify=justify)
        for row in self._given:
            # a str cell is literal text, as on the fast path: rich would read
            # markup and emoji codes in it (a certificate's subject is the
            # server's text; "[/x]" in it raised MarkupError)
            table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))
        return table


def _fitted(cell: Text, width: int, justify: Justify) -> Text:
    pad = max(0, width - cell.cell_len)
    if not pad:
        return cell
    if justify == "right":
        return Text.assemble((" " * pad, cell.style), cell)
    return Text.assemble(cell, (" " * pad, cell.style))


def _simple(plain: str) -> bool:
    """One line, spaces single and inside: what a label or a figure is. (rich
    strips, folds and justifies other whitespace in ways not worth copying.)"""
    return plain == plain.strip() and "  " not in plain and "\n" not in plain \
        and "\t" not in plain


def _style(style: str | Style) -> Style:
    return Style.parse(style) if isinstance(style, str) else style

