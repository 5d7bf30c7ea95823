"""Map TOML key paths to source lines, since tomllib does not report them,
and find what tomllib cannot take before it is asked to.

`scan(text).lines` is {("settings", "interval"): 3, ("targets", 0): 7,
("targets", 0, "url"): 9, ...}. Array-of-tables elements are indexed from 0.
Keys inside inline tables and arrays map to the line of their parent key.

The scanner is tolerant: any text whatsoever is scanned to its end in linear
time, whatever tomllib will later say about it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_DIGITS = set("0123456789_")
_HEX = set("0123456789abcdefABCDEF")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r"}

# Deeper than any config needs by far, and shallow enough that neither
# tomllib (a recursive parser: RecursionError after a few hundred levels) nor the
# loader's walk over the parsed data comes near Python's recursion limit.
# Dotted keys count too: tomllib's work for one grows with the square of its
# parts (a key of 8,000 parts took 260 MB).
MAX_DEPTH = 32

Path = tuple[str | int, ...]


@dataclass
class Layout:
    lines: dict[Path, int] = field(default_factory=dict)
    too_deep: int | None = None   # first line where tables, keys and arrays nest past MAX_DEPTH
    deepest: int = 1              # line of the deepest point seen
    long_number: int | None = None   # first line with a number longer than int() reads
    # (line, "string" | "array" | "inline table") of what the file never closes
    unclosed: tuple[int, str] | None = None
    _depth: int = field(default=0, repr=False)

    def reached(self, depth: int, line: int) -> None:
        if depth > self._depth:
            self._depth, self.deepest = depth, line
        if depth > MAX_DEPTH and self.too_deep is None:
            self.too_deep = line


class _Scanner:
    def __init__(self, text: str, layout: Layout) -> None:
        self.text = text
        self.layout = layout
        self.pos = 0
        self.line = 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos:self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def skip_to_eol(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def read_key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_spaces()
            ch = self.peek()
            if ch in ('"', "'"):
                parts.append(self.read_quoted(ch))
            else:
                start = self.pos
                while self.peek() and self.peek() in _BARE:
                    self.pos += 1
                if self.pos == start:
                    return parts
                parts.append(self.text[start:self.pos])
            self.skip_spaces()
            if self.peek() != ".":
                return parts
            self.pos += 1

    def read_quoted(self, quote: str) -> str:
        """A one-line string, escapes decoded as tomllib does, so a quoted key
        such as "\\u001b" maps to the line of the key tomllib returns."""
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and quote == '"':
                out.append(self.read_escape())
                continue
            if ch == "\n":   # unterminated: tomllib will say so; the newline is not ours
                break
            self.pos += 1
            if ch == quote:
                break
            out.append(ch)
        return "".join(out)

    def read_escape(self) -> str:
        code = self.text[self.pos + 1:self.pos + 2]
        if code in ("", "\n"):   # a broken string; the newline ends it
            self.pos += 1
            return ""
        digits = {"u": 4, "U": 8}.get(code, 0)
        hex_digits = self.text[self.pos + 2:self.pos + 2 + digits]
        if digits and len(hex_digits) == digits and all(c in _HEX for c in hex_digits):
            self.pos += 2 + digits
            number = int(hex_digits, 16)
            return chr(number) if number <= 0x10FFFF else ""
        self.pos += 2
        return _ESCAPES.get(code, code)

    def skip_value(self, depth: int) -> None:
        """Skip one value, which may span lines (multi-line strings, arrays),
        noting how deep its arrays and inline tables nest below `depth`."""
        # (bracket, depth where it opened); keys of inline tables add depth
        opened: list[tuple[str, int]] = []
        start_line = self.line
        expect_key = False
        while self.pos < len(self.text):
            if expect_key:
                expect_key = False
                parts = self.read_key()
                if parts:
                    depth = opened[-1][1] + len(parts)
                    self.layout.reached(depth, self.line)
                continue
            three = self.peek(3)
            ch = self.peek()
            if three in ('"""', "'''"):
                end = self.pos + 3
                while True:
                    end = self.text.find(three, end)
                    if end < 0:
                        self.layout.unclosed = (self.line, "string")
                        self.advance(len(self.text) - self.pos)
                        return
                    if three == '"""' and _escaped(self.text, end):
                        end += 1
                        continue
                    break
                while self.text[end + 3:end + 4] == three[0]:  # up to two extra quotes
                    end += 1
                self.advance(end + 3 - self.pos)
            elif ch in ('"', "'"):
                self.read_quoted(ch)
            elif ch in "[{":
                opened.append((ch, depth))
                if ch == "[":
                    depth += 1
                    self.layout.reached(depth, self.line)
                expect_key = ch == "{"
                self.pos += 1
            elif ch in "]}":
                if opened:
                    depth = opened.pop()[1]
                self.pos += 1
            elif ch == ",":
                if opened and opened[-1][0] == "{":
                    expect_key = True
                elif opened:
                    depth = opened[-1][1] + 1
                self.pos += 1
            elif ch == "#":
                self.skip_to_eol()
            elif ch == "\n":
                if not opened:
                    return
                self.advance()
            elif ch in _DIGITS:
                self.skip_number()
            else:
                self.pos += 1
        if opened:
            self.layout.unclosed = (start_line, "array" if opened[0][0] == "[" else "inline table")

    def skip_number(self) -> None:
        start = self.pos
        while self.peek() and self.peek() in _DIGITS:
            self.pos += 1
        digits = self.pos - start - self.text.count("_", start, self.pos)
        limit = sys.get_int_max_str_digits()
        if limit and digits > limit and self.layout.long_number is None:
            self.layout.long_number = self.line


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - 1 - backslashes >= 0 and text[index - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def scan(text: str) -> Layout:
    """Where every key is, and what would trip tomllib (see Layout)."""
    layout = Layout()
    lines = layout.lines
    arrays: dict[tuple[str, ...], int] = {}
    table: Path = ()
    scanner = _Scanner(text, layout)
    while scanner.pos < len(text):
        scanner.skip_spaces()
        ch = scanner.peek()
        if ch == "\n" or ch == "\r":
            scanner.advance()
            continue
        if ch == "#" or ch == "":
            scanner.skip_to_eol()
            continue
        if ch == "[":
            is_array = scanner.peek(2) == "[["
            scanner.pos += 2 if is_array else 1
            names = tuple(scanner.read_key())
            if len(names) > MAX_DEPTH:   # and _resolve would take the square of it
                layout.reached(len(names), scanner.line)
                table = ()
            elif is_array and names:
                arrays[names] = arrays.get(names, -1) + 1
                table = _resolve(names[:-1], arrays) + (names[-1], arrays[names])
            else:
                table = _resolve(names, arrays)
            layout.reached(len(table), scanner.line)
            lines.setdefault(table, scanner.line)
            scanner.skip_to_eol()
            continue
        start_line = scanner.line
        key = scanner.read_key()
        scanner.skip_spaces()
        if key and scanner.peek() == "=":
            scanner.pos += 1
            layout.reached(len(table) + len(key), start_line)
            lines.setdefault(table + tuple(key), start_line)
            scanner.skip_value(len(table) + len(key))
        else:
            scanner.skip_to_eol()
    return layout


def _resolve(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> Path:
    """[a.b] after [[a]] means table b of the last element of array a."""
    path: list[str | int] = []
    for i, name in enumerate(names):
        path.append(name)
        prefix = names[:i + 1]
        if prefix in arrays and i < len(names) - 1:
            path.append(arrays[prefix])
    return tuple(path)


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return 1
