"""Map TOML key paths to source lines, since tomllib does not report them.

`key_lines(text)` returns {("settings", "interval"): 3, ("targets", 0): 7,
("targets", 0, "url"): 9, ...}. Array-of-tables elements are indexed from 0.
Keys inside inline tables and arrays map to the line of their parent key.
"""

from __future__ import annotations

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

Path = tuple[str | int, ...]


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
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
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and quote == '"':
                out.append(self.text[self.pos + 1:self.pos + 2])
                self.pos += 2
                continue
            if ch == quote or ch == "\n":
                self.pos += 1
                break
            out.append(ch)
            self.pos += 1
        return "".join(out)

    def skip_value(self) -> None:
        """Skip one value, which may span lines (multi-line strings, arrays)."""
        depth = 0
        while self.pos < len(self.text):
            three = self.peek(3)
            ch = self.peek()
            if three in ('"""', "'''"):
                end = self.pos + 3
                while True:
                    end = self.text.find(three, end)
                    if end < 0:
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
                depth += 1
                self.pos += 1
            elif ch in "]}":
                depth -= 1
                self.pos += 1
            elif ch == "#":
                self.skip_to_eol()
            elif ch == "\n":
                if depth <= 0:
                    return
                self.advance()
            else:
                self.pos += 1


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - 1 - backslashes >= 0 and text[index - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def key_lines(text: str) -> dict[Path, int]:
    lines: dict[Path, int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: Path = ()
    scan = _Scanner(text)
    while scan.pos < len(text):
        scan.skip_spaces()
        ch = scan.peek()
        if ch == "\n" or ch == "\r":
            scan.advance()
            continue
        if ch == "#" or ch == "":
            scan.skip_to_eol()
            continue
        if scan.peek(2) == "[[":
            scan.pos += 2
            names = tuple(scan.read_key())
            arrays[names] = arrays.get(names, -1) + 1
            table = _resolve(names[:-1], arrays) + (names[-1], arrays[names])
            lines.setdefault(table, scan.line)
            scan.skip_to_eol()
            continue
        if ch == "[":
            scan.pos += 1
            table = _resolve(tuple(scan.read_key()), arrays)
            lines.setdefault(table, scan.line)
            scan.skip_to_eol()
            continue
        start_line = scan.line
        key = scan.read_key()
        scan.skip_spaces()
        if key and scan.peek() == "=":
            scan.pos += 1
            lines.setdefault(table + tuple(key), start_line)
            scan.skip_value()
        else:
            scan.skip_to_eol()
    return lines


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
