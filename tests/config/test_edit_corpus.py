"""Editing one [[targets]] block of hand-written configs keeps every other byte.

The expectations are computed without the code under test: where a target's
lines are comes from the loader's own line map (`monitor.config.lines.scan`),
what changed from difflib over the lines, and what the file means from
tomllib and the real loader.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from monitor.config.edit import add_target, blocks, delete_target, replace_target, target_block
from monitor.config.lines import scan
from monitor.config.save import validate_text

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.toml"))
ENV = {"API_TOKEN": "tok-s3cret", "PASS": "hunter2", "SITE": "prod", "DB_HOST": "127.0.0.1"}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")   # no newline translation


def normalised(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def parsed(text: str) -> dict[str, Any]:
    return tomllib.loads(normalised(text))


def lines_of(text: str) -> list[str]:
    """Lines with their ends; only "\n" ends a line (as in the loader)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def runtime_name(raw: str) -> str:
    for key, value in ENV.items():
        raw = raw.replace("${" + key + "}", value)
    return raw


def target_span(text: str, index: int) -> tuple[int, int]:
    """(first, after): 1-based lines of target `index`'s header and of the
    first line of anything else after it, from the loader's line map."""
    lines = scan(normalised(text)).lines
    first = lines[("targets", index)]
    others = [line for path, line in lines.items()
              if line > first and path[:2] != ("targets", index)]
    return first, min(others, default=len(lines_of(text)) + 1)


def is_blank_or_comment(line: str) -> bool:
    stripped = line.strip(" \t\r\n\ufeff")
    return not stripped or stripped.startswith("#")


def content_end(lines: list[str], first: int, after: int) -> int:
    """The 1-based line of the block's last key: blank and comment lines
    after it are not its content."""
    last = after - 1
    while last > first and is_blank_or_comment(lines[last - 1]):
        last -= 1
    return last


def cases() -> list[tuple[str, int, str]]:
    out = []
    for path in FILES:
        for index, raw in enumerate(parsed(read(path)).get("targets", [])):
            out.append((path.name, index, runtime_name(raw["name"])))
    return out


CASES = cases()
IDS = [f"{file}:{name}" for file, _i, name in CASES]


def test_the_corpus_is_large_and_valid():
    assert len(FILES) >= 20
    for path in FILES:
        validate_text(path, read(path), ENV)
    texts = [path.read_bytes() for path in FILES]
    assert any(b"\r\n" in t for t in texts) and any(t.startswith(b"\xef\xbb\xbf") for t in texts)
    assert any(not t.endswith(b"\n") for t in texts)


@pytest.mark.parametrize(("file", "index", "name"), CASES, ids=IDS)
def test_unchanged_fields_give_the_same_bytes(file: str, index: int, name: str):
    text = read(CORPUS / file)
    block = target_block(text, name)
    assert block.index == index
    assert replace_target(text, name, dict(block.data)) == text


@pytest.mark.parametrize(("file", "index", "name"), CASES, ids=IDS)
def test_delete_removes_only_that_block(file: str, index: int, name: str):
    path = CORPUS / file
    text = read(path)
    new = delete_target(text, name)

    bom = "\ufeff" if text.startswith("\ufeff") else ""
    assert new.startswith(bom)
    old_lines = lines_of(text.removeprefix(bom))
    first, after = target_span(text, index)
    last = content_end(old_lines, first, after)
    # what went: the target's lines, and around them only blank and comment lines
    # (any such choice: difflib could place an equal deletion differently)
    starts = [first - 1]
    while starts[-1] > 0 and is_blank_or_comment(old_lines[starts[-1] - 1]):
        starts.append(starts[-1] - 1)
    ends = [last]
    while ends[-1] < len(old_lines) and is_blank_or_comment(old_lines[ends[-1]]):
        ends.append(ends[-1] + 1)
    rest = new.removeprefix(bom)
    assert any("".join(old_lines[:a] + old_lines[b:]) == rest for a in starts for b in ends), \
        "more than the target's block and the blank and comment lines around it went"

    expected = parsed(text)
    del expected["targets"][index]
    if not expected["targets"]:
        del expected["targets"]
    assert parsed(new) == expected
    if expected.get("targets"):
        validate_text(path, new, ENV)


def edited(fields: dict[str, Any]) -> dict[str, Any]:
    """A change a user would make: one value changed, one key added, one
    optional key removed."""
    out = dict(fields)
    out["description"] = 'edited: "quoted" ✓ ${API_TOKEN}'
    for optional in ("group", "tags", "paused", "expect_status", "max_latency"):
        if optional in out:
            del out[optional]
            break
    out["interval"] = "1h"
    return out


@pytest.mark.parametrize(("file", "index", "name"), CASES, ids=IDS)
def test_replace_changes_only_that_block(file: str, index: int, name: str):
    path = CORPUS / file
    text = read(path)
    fields = edited(target_block(text, name).data)
    new = replace_target(text, name, fields)

    old_lines, new_lines = lines_of(text), lines_of(new)
    first, after = target_span(text, index)
    last = content_end(old_lines, first, after)
    prefix, suffix = "".join(old_lines[:first - 1]), "".join(old_lines[last:])
    assert new.startswith(prefix) and new.endswith(suffix)
    assert len(new) >= len(prefix) + len(suffix)

    # lines of keys kept as they were, comments on them included
    kept = {key for key, value in fields.items() if target_block(text, name).data.get(key) == value}
    key_lines = scan(normalised(text)).lines
    new_content = {line.rstrip("\r\n") for line in new_lines}
    for key_path, number in key_lines.items():
        if key_path[:2] == ("targets", index) and len(key_path) > 2 and key_path[2] in kept:
            line = old_lines[number - 1].rstrip("\r\n")
            assert line in new_content, f"{key_path[2]}'s line {line!r} was rewritten"

    expected = parsed(text)
    expected["targets"][index] = fields
    assert parsed(new) == expected
    validate_text(path, new, ENV)
    # ${VAR} stays a reference: no secret's value was written
    assert all(secret not in new for secret in ("tok-s3cret", "hunter2"))


NEW = {"name": "added ✚", "kind": "tcp", "host": "127.0.0.1", "port": 4242,
       "tags": ["new", "x"], "description": "with \"quotes\" and \\ and ${API_TOKEN}"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_add_inserts_one_block_after_the_last_target(path: Path):
    text = read(path)
    new = add_target(text, NEW)

    start = 0
    while start < len(text) and text[start] == new[start]:
        start += 1
    inserted = len(new) - len(text)
    assert new[start + inserted:] == text[start:], "more than one insertion"
    before = parsed(text)
    after = parsed(new)
    assert after.pop("targets")[-1] == NEW | {"tags": ["new", "x"]}
    before.pop("targets", None)
    assert after == before
    validate_text(path, new, ENV)
    # the file's line ends are kept in what was added
    if b"\r\n" in path.read_bytes():
        assert "\n" not in new[start:start + inserted].replace("\r\n", "")
    assert "tok-s3cret" not in new


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_block_is_found_with_the_loaders_lines(path: Path):
    text = read(path)
    found = blocks(text)
    data = parsed(text).get("targets", [])
    assert [b.data for b in found] == data
    lines = scan(normalised(text)).lines
    assert [b.line for b in found] == [lines[("targets", i)] for i in range(len(data))]
    for block in found:
        assert text[block.start:block.end] == block.source
        assert block.source.lstrip().startswith("[")
