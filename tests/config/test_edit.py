"""monitor.config.edit: the cases a corpus file does not show, and random values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config.edit import (
    EditError, add_target, blocks, delete_target, render_block, replace_target, target_block)
from monitor.config.save import validate_text

CORPUS = Path(__file__).parent / "corpus"

TWO = """\
[settings]
interval = "30s"

[[targets]]
name = "a"
kind = "tcp"
host = "127.0.0.1"
port = 1

[[targets]]
name = "b"
kind = "tcp"
host = "127.0.0.1"
port = 2
"""


def test_an_inline_targets_array_is_refused_with_its_line():
    text = '# cfg\n\n\ntargets = [{ name = "a", kind = "tcp", host = "h", port = 1 }]\n[settings]\n'
    with pytest.raises(EditError, match=r"line 4: the targets are written as `targets = \[\.\.\.\]`"):
        add_target(text, {"name": "b", "kind": "tcp", "host": "h", "port": 2})


def test_a_key_named_targets_inside_a_table_is_not_the_targets_array():
    text = '[settings]\ntargets = 1\n'
    assert add_target(text, {"name": "b"}).startswith(text + '\n[[targets]]\nname = "b"\n')


def test_lone_carriage_returns_are_refused():
    with pytest.raises(EditError, match="lone carriage return"):
        blocks('[[targets]]\rname = "a"\r')


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(EditError, match="no \\[\\[targets\\]\\] block named 'zz'"):
        replace_target(TWO, "zz", {"name": "zz"})
    with pytest.raises(EditError):
        delete_target(TWO, "zz")


def test_a_target_needs_a_name_and_values():
    with pytest.raises(EditError, match="needs a name"):
        add_target(TWO, {"kind": "tcp"})
    with pytest.raises(EditError, match="port: no value"):
        replace_target(TWO, "a", {"name": "a", "port": None})


def test_a_name_written_with_a_variable_is_found_by_its_value(monkeypatch):
    monkeypatch.setenv("SITE", "eu")
    text = TWO.replace('name = "b"', 'name = "${SITE}-b"')
    assert target_block(text, "eu-b").data["name"] == "${SITE}-b"
    monkeypatch.delenv("SITE")
    with pytest.raises(EditError):
        target_block(text, "eu-b")


def test_deleting_every_target_leaves_the_rest():
    text = delete_target(delete_target(TWO, "b"), "a")
    assert text == '[settings]\ninterval = "30s"\n'


def test_deleting_the_first_block_keeps_the_files_opening_comment():
    text = "# my monitor\n[[targets]]\nname = \"a\"\n\n# about b\n[[targets]]\nname = \"b\"\n"
    assert delete_target(text, "a") == "# my monitor\n# about b\n[[targets]]\nname = \"b\"\n"
    assert delete_target(text, "b") == "# my monitor\n[[targets]]\nname = \"a\"\n"


def test_adding_to_an_empty_file_and_to_one_without_a_final_newline():
    assert add_target("", {"name": "x"}) == '[[targets]]\nname = "x"\n'
    assert add_target("\ufeff", {"name": "x"}) == '\ufeff[[targets]]\nname = "x"\n'
    assert add_target("[settings]", {"name": "x"}) == '[settings]\n\n[[targets]]\nname = "x"\n'


def test_a_header_inside_a_multiline_string_is_not_a_block():
    text = (CORPUS / "14_multiline.toml").read_text()
    assert [b.name for b in blocks(text)] == ["multi", "literal-multi"]


def test_render_block_writes_tables_inline_and_keeps_references():
    block = render_block({"name": "n", "headers": {"A": "Bearer ${T}", "x.y": "1"},
                          "expect_status": ("2xx", 301)}, "\r\n")
    assert block == ('[[targets]]\r\nname = "n"\r\nheaders = {A = "Bearer ${T}", "x.y" = "1"}\r\n'
                     'expect_status = ["2xx", 301]\r\n')


def test_renaming_keeps_the_rest_of_the_block():
    text = TWO.replace("port = 2", "port = 2   # postgres")
    new = replace_target(text, "b", {"name": "c", "kind": "tcp", "host": "127.0.0.1", "port": 2})
    assert new == text.replace('name = "b"', 'name = "c"')


# --- random values -----------------------------------------------------------------

text_values = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
labels = st.text(st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Co", "Cn")),
                 min_size=1, max_size=12).filter(lambda s: s.strip() and s.isprintable())
headers = st.dictionaries(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                  max_size=10), text_values, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(description=text_values, tags=st.lists(labels, max_size=3), name=labels,
       header_map=headers, file=st.sampled_from(["03_crlf.toml", "07_inline_tables.toml",
                                                 "08_subtables.toml", "15_comments_everywhere.toml"]))
def test_any_values_round_trip_and_the_rest_stays(description, tags, name, header_map, file):
    text = (CORPUS / file).read_bytes().decode("utf-8")
    original = blocks(text)
    first = original[0]
    fields = dict(first.data, description=description, tags=tags, name=name)
    if first.data.get("kind") == "http":
        fields["headers"] = header_map
    new = replace_target(text, first.name, fields)
    after = blocks(new)
    assert after[0].data == tomllib.loads(tomllib_dump(fields))["t"]
    assert new[:first.start] == text[:first.start]
    assert new.endswith(text[first.content_end:])
    assert [b.data for b in after[1:]] == [b.data for b in original[1:]]
    if len({name} | {b.name for b in original[1:]}) == len(original):
        validate_text(CORPUS / file, new, {"API_TOKEN": "x"})

    added = add_target(text, fields | {"name": name + "+"})
    assert blocks(added)[-1].data["description"] == description
    assert added.startswith(text[:original[-1].end])


def tomllib_dump(fields: dict) -> str:
    """`fields` as TOML through a writer that is not the code under test."""
    import tomli_w
    return tomli_w.dumps({"t": fields})
