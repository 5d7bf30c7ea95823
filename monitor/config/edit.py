"""Add, change and delete one `[[targets]]` block in a config file's text,
keeping every other byte as it was.

The text is the file exactly as read (`bytes.decode("utf-8")`, no newline
translation): a byte order mark, CRLF line ends, comments, blank lines, key
order and other tables outside the edited block come back unchanged. Inside
a changed block, tomlkit keeps the lines, comments and spelling of the keys
whose values did not change, so `${VAR}` references stay references: the
values handled here are the file's own (tomllib on the block's text), never
the loader's, whose strings have secrets substituted in.

Where a block starts and ends: its `[[targets]]` header line, the comment
lines right above it (no blank line between), and everything up to the last
key, sub-table or comment line before a blank line or the next table.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import tomlkit
import tomlkit.exceptions
import tomlkit.items
from tomlkit.items import Item

from monitor.config.lines import Layout, _Scanner

_BOM = "\ufeff"
_ENV = re.compile(r"\$(\$)?\{([^}]*)\}")


class EditError(ValueError):
    """The edit cannot be made; str() says why, for the user."""


@dataclass(frozen=True)
class Block:
    """One `[[targets]]` element of the file, as written."""

    index: int     # its place among the [[targets]] elements, from 0
    line: int      # line of its header, counted as the loader counts
    lead: int      # offset where its leading comment lines start (== start without)
    start: int     # offset of its header line
    end: int       # offset just after its last line (value, sub-table or comment)
    source: str    # text[start:end]
    content_end: int = 0   # offset after its last key or sub-table line (comments after it excluded)
    data: dict[str, Any] = field(default_factory=dict)   # its keys, ${VAR} unexpanded

    @property
    def name(self) -> Any:
        return self.data.get("name")


@dataclass
class _Statement:
    kind: str            # "blank", "comment", "header", "value"
    start: int
    end: int             # after its newline, if it has one
    line: int            # 1-based line where it starts
    names: tuple[str, ...] = ()   # header names, or the key of a value
    array: bool = False


# --- finding the blocks --------------------------------------------------------------

def _statements(body: str) -> list[_Statement]:
    """Every line or multi-line value of the text, classified. The scanner is
    the loader's line mapper's: strings and arrays spanning lines, comments
    and quoted keys are read the way the loader reads them. It walks one
    character at a time (1.3 s for 10,000 targets), so it is only asked about
    headers and values that might span lines or be `targets` itself."""
    scanner = _Scanner(body, Layout())
    out: list[_Statement] = []
    line, pos, size = 1, 0, len(body)
    while pos < size:
        newline = body.find("\n", pos)
        line_end = size if newline < 0 else newline + 1
        text = body[pos:line_end].lstrip(" \t")
        names: tuple[str, ...] = ()
        array = False
        end = line_end
        if not text.strip("\r\n"):
            kind = "blank"
        elif text[0] == "#":
            kind = "comment"
        elif text[0] == "[":
            kind, array = "header", text.startswith("[[")
            scanner.pos = line_end - len(text) + (2 if array else 1)
            names = tuple(scanner.read_key())
        else:
            kind = "value"
            # one line unless a string or an array or table might run on
            if any(c in text for c in "[{") or '"""' in text or "'''" in text \
                    or text.lstrip("\"'").startswith("targets"):
                scanner.pos = line_end - len(text)
                names = tuple(scanner.read_key())
                scanner.skip_spaces()
                if scanner.peek() == "=":
                    scanner.pos += 1
                    scanner.skip_value(len(names))
                scanner.skip_to_eol()
                end = scanner.pos + (scanner.peek() == "\n")
        out.append(_Statement(kind, pos, end, line, names, array))
        line += body.count("\n", pos, end)
        pos = end
    return out


def _check_text(text: str) -> tuple[int, str]:
    """(offset of the body, body): the text without its byte order mark."""
    offset = 1 if text.startswith(_BOM) else 0
    body = text[offset:]
    if body.count("\r") != body.count("\r\n"):
        raise EditError("the file ends lines with a lone carriage return (old Mac style); "
                        "save it with LF or CRLF line ends to edit it here")
    return offset, body


def _spans(text: str) -> list[Block]:
    """The [[targets]] blocks, without their data (parsed on demand)."""
    offset, body = _check_text(text)
    statements = _statements(body)
    groups: list[list[int]] = []   # statement indexes of each block, header first
    current: list[int] | None = None
    for i, st in enumerate(statements):
        if st.kind == "header":
            if st.array and st.names == ("targets",):
                current = [i]
                groups.append(current)
            elif current is not None and st.names[:1] == ("targets",) and len(st.names) > 1:
                current.append(i)   # [targets.headers]: the last element's sub-table
            else:
                current = None
        elif current is not None:
            current.append(i)
        elif st.kind == "value" and st.names[:1] == ("targets",) and not _has_header_before(statements, i):
            raise EditError(f"line {st.line}: the targets are written as `targets = [...]`; "
                            "the app edits [[targets]] tables only (rewrite them as "
                            "[[targets]] tables to edit them here)")
    blocks = []
    for index, group in enumerate(groups):
        header = statements[group[0]]
        last = group[0]
        for i in group:
            if statements[i].kind in ("value", "header"):
                last = i
        # comment lines right after the last key are the block's, unless they run
        # on to the next table's header: then they are that table's leading comments
        run = last
        while run + 1 <= group[-1] and statements[run + 1].kind == "comment":
            run += 1
        next_is_header = group[-1] + 1 < len(statements)
        if run == group[-1] and next_is_header:
            run = last
        lead = group[0]
        while lead > 0 and statements[lead - 1].kind == "comment":
            lead -= 1
        if lead == 0:   # comments opening the file are the file's, not the first block's
            lead = group[0]
        start, end = header.start + offset, statements[run].end + offset
        blocks.append(Block(index=index, line=header.line,
                            lead=statements[lead].start + offset, start=start, end=end,
                            source=text[start:end],
                            content_end=statements[last].end + offset))
    return blocks


def _has_header_before(statements: list[_Statement], index: int) -> bool:
    return any(st.kind == "header" for st in statements[:index])


def _parse_block(source: str) -> dict[str, Any]:
    try:
        elements = tomllib.loads(source).get("targets")
    except tomllib.TOMLDecodeError:
        return {}
    return elements[0] if isinstance(elements, list) and elements else {}


def _expanded(raw: str) -> str | None:
    """A raw name with its ${VAR}s expanded, as the loader does; None when
    a variable is missing."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        if match.group(1):
            return "${" + match.group(2) + "}"
        value = os.environ.get(match.group(2))
        missing = missing or value is None
        return value or ""
    out = _ENV.sub(replace, raw)
    return None if missing else out


def blocks(text: str) -> list[Block]:
    """Every [[targets]] block of the text, in file order, with its data."""
    return [_with_data(b) for b in _spans(text)]


def _with_data(block: Block) -> Block:
    return dataclasses.replace(block, data=_parse_block(block.source))


def target_block(text: str, name: str) -> Block:
    """The block of the target called `name` (as the running config names it:
    a name written with ${VAR} matches its expansion). EditError if none."""
    for block in _spans(text):
        # only blocks that could hold the name are parsed: 10,000 parses cost ~0.3 s
        if name not in block.source and "\\" not in block.source and "${" not in block.source:
            continue
        raw = _parse_block(block.source).get("name")
        if isinstance(raw, str) and (raw == name or ("${" in raw and _expanded(raw) == name)):
            return _with_data(block)
    raise EditError(f"no [[targets]] block named {name!r} in the file (was it renamed or "
                    "removed since?)")


# --- writing blocks ------------------------------------------------------------------

def _newline(text: str, at: int = 0) -> str:
    """The line end of the line at `at`, else the file's first, else LF."""
    for where in (at, 0):
        end = text.find("\n", where)
        if end >= 0:
            return "\r\n" if text[end - 1:end] == "\r" else "\n"
    return "\n"


def _item(value: Any) -> Item:
    """A tomlkit item; tables inline, as a config line writes them."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        for key, inner in value.items():
            table.append(key, _item(inner))
        return table
    if isinstance(value, (list, tuple)):
        array = tomlkit.array()
        for inner in value:
            array.append(_item(inner))
        return array
    return tomlkit.item(value)


def inline_toml(value: Any) -> str:
    """`value` as it is written after `key = ` (tables inline)."""
    return _item(value).as_string()


def _plain(value: Any) -> Any:
    """What tomllib gives back for `value`: tuples are arrays."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render_block(fields: dict[str, Any], newline: str = "\n") -> str:
    """A fresh `[[targets]]` block for `fields` (also what the app offers to
    copy when the file cannot be written)."""
    _check_fields(fields)
    table = tomlkit.table()
    for key, value in fields.items():
        table.append(key, _item(value))
    doc = tomlkit.document()
    doc.append("targets", tomlkit.aot())
    doc["targets"].append(table)
    out = _with_newlines(doc.as_string(), newline)
    _verify(out, fields)
    return out


def _check_fields(fields: dict[str, Any]) -> None:
    if not isinstance(fields.get("name"), str) or not fields["name"].strip():
        raise EditError("a target needs a name")
    for key, value in fields.items():
        if value is None:
            raise EditError(f"{key}: no value (leave the key out instead)")


def _with_newlines(text: str, newline: str) -> str:
    text = text.replace("\r\n", "\n")
    return text if newline == "\n" else text.replace("\n", newline)


def _verify(block: str, fields: dict[str, Any]) -> None:
    try:
        parsed = tomllib.loads(block)
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"the new block would not be valid TOML: {exc}") from None
    if parsed != {"targets": [_plain(fields)]}:
        raise EditError("the new block would not read back as written (a value TOML "
                        "cannot hold?)")


def _assign(table: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Make tomlkit `table` (holding `old`) hold `new`, touching only what
    differs: a table value changed key by key, so a [targets.headers]
    sub-table stays one and keeps its comments."""
    for key in list(table.keys()):
        if key not in new:
            del table[key]
    for key, value in new.items():
        if key in old and old[key] == _plain(value):
            continue
        current = table.get(key)
        if isinstance(value, dict) and isinstance(old.get(key), dict) \
                and isinstance(current, (tomlkit.items.Table, tomlkit.items.InlineTable)):
            _assign(current, old[key], value)
        else:
            table[key] = _item(value)


def _changed_block(block: Block, fields: dict[str, Any], newline: str) -> str:
    """The block with `fields` as its keys: lines of unchanged keys kept as
    they were (comments, quoting, ${VAR}), changed ones rewritten in place."""
    source = block.source[:block.content_end - block.start]
    ends_open = not source.endswith("\n")   # the file's last line, without a newline
    try:
        doc = tomlkit.parse(source + newline if ends_open else source)
        _assign(doc["targets"][0], block.data, fields)
        out = _with_newlines(doc.as_string(), newline)
        _verify(out, fields)
    except (tomlkit.exceptions.TOMLKitError, EditError, KeyError, IndexError, TypeError):
        # tomlkit could not keep this block's layout: write it afresh, correct first
        out = render_block(fields, newline)
    if ends_open:
        out = out.removesuffix(newline)
    return out


def add_target(text: str, fields: dict[str, Any]) -> str:
    """The text with a new [[targets]] block after the last one (at the end
    of the file when there is none)."""
    found = _spans(text)
    at = found[-1].end if found else len(text)
    newline = _newline(text, found[-1].start if found else 0)
    before = text[:at]
    body = before.removeprefix(_BOM)
    gap = ""
    if body and not body.endswith("\n"):
        gap = newline
    if body.strip() and not (body + gap).endswith(newline * 2):
        gap += newline   # a blank line between tables
    return before + gap + render_block(fields, newline) + text[at:]


def replace_target(text: str, name: str, fields: dict[str, Any]) -> str:
    """The text with the block of `name` holding `fields` (every key of the
    target: keys left out are removed)."""
    _check_fields(fields)
    block = target_block(text, name)
    new = _changed_block(block, fields, _newline(text, block.start))
    # comment lines after its last key stay where they are, after any key added
    return text[:block.start] + new + text[block.content_end:]


def delete_target(text: str, name: str) -> str:
    """The text without the block of `name`, its leading comments and the
    blank lines that separated it from what follows."""
    block = target_block(text, name)
    start, end = block.lead, block.end
    while True:   # the blank lines after it
        line_end = text.find("\n", end)
        line = text[end:] if line_end < 0 else text[end:line_end + 1]
        if not line or line.strip():
            break
        end += len(line)
    if not text[end:].strip():
        # it was the last thing in the file: the blank lines before it go too,
        # up to the newline that ends the last line kept
        head = text[:start]
        kept = head.rstrip(" \t\r\n")
        if kept.removeprefix(_BOM):
            start = head.index("\n", len(kept)) + 1
    return text[:start] + text[end:]
