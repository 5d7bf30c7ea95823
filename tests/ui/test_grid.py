"""The detail screen's grids draw exactly what rich's Table.grid drew (the
screen's snapshots were made with it), character for character and style for
style, at every width, wrapping included; text taken literally (rich would
read markup and emoji codes in a str cell)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from monitor.ui.widgets.grid import Grid

words = st.text(alphabet=st.sampled_from("abc xyz.:%-/→é"), max_size=70)
cells = st.one_of(words, words.map(lambda text: Text(text, style="red")))
columns = st.lists(st.tuples(st.sampled_from(["", "dim", "bold"]),
                             st.sampled_from(["left", "right"])), min_size=1, max_size=4)


def drawn(renderable, width: int) -> list[tuple[str, str]]:
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    out = []
    for segment in Segment.simplify(console.render(renderable, console.options)):
        out += [(char, str(segment.style or "")) for char in segment.text]
    return out


@settings(max_examples=300, deadline=None)
@given(columns=columns, data=st.data(), width=st.integers(8, 140))
def test_a_grid_draws_what_rich_table_grid_draws(columns, data, width):
    rows = data.draw(st.lists(st.tuples(*[cells] * len(columns)), max_size=6))
    table = Table.grid(padding=(0, 2))
    for style, justify in columns:
        table.add_column(style=style or None, justify=justify)
    grid = Grid(*columns)
    for row in rows:
        table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))
        grid.add_row(*row)
    assert drawn(grid, width) == drawn(table, width)


def test_text_is_drawn_as_given_whichever_way_the_grid_draws_it():
    """A certificate's subject is the server's text: no markup, no emoji codes,
    no MarkupError, on the fast path and on rich's Table (a double space, or
    a width too narrow for its longest word, takes that one)."""
    hostile = ":a: CN=[/x] [bold]me[/bold]"
    for value, width in ((hostile, 80), (hostile.replace(" ", "  "), 80), (hostile, 20)):
        grid = Grid(("dim", "left"), ("", "left"))
        grid.add_row("subject", value)
        cells = drawn(grid, width)
        shown = "".join(char for char, _ in cells)
        assert ":a:" in shown and "[/x]" in shown and "🅰" not in shown
        assert not any("bold" in style for _, style in cells)


def test_the_detail_screens_grids_take_the_fast_path():
    """The common shapes do not fall back to rich's Table (which would be
    correct, only slow): label and value, and a long value that wraps."""
    grid = Grid(("dim", "left"), ("", "left"))
    grid.add_row("subject", "CN=example.test, O=An organisation with a long name, C=GB")
    grid.add_row("chain", "2 certificates")
    console = Console(width=40)
    assert all(not isinstance(part, Table)
               for part in grid.__rich_console__(console, console.options))
    with console.capture() as captured:
        console.print(grid)
    assert captured.get().splitlines()[:3] == [
        "subject  CN=example.test, O=An          ",
        "         organisation with a long name, ",
        "         C=GB                           "]
