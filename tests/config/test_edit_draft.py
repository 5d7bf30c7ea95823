"""monitor.config.draft: a form's fields from the option declarations, box
text <-> TOML values, the loader's problems sorted by field, and one probe
of a draft in a child process against a real loopback server."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import trustme

from monitor.config.draft import (
    check_draft, draft_fields, field_specs, kinds, probe_draft, read, show)
from monitor.config.model import TargetCommon
from monitor.probes import registry

CONFIG = """\
[settings]
interval = "10s"
timeout = "2s"

[[targets]]
name = "db"
kind = "tcp"
host = "127.0.0.1"
port = 5432   # postgres
"""


def spec(kind: str, key: str):
    return next(s for s in field_specs(kind) if s.key == key)


def test_every_kind_gets_every_declared_option_and_the_common_keys():
    common = [f.name for f in dataclasses.fields(TargetCommon)]
    for kind in kinds():
        keys = [s.key for s in field_specs(kind)]
        own = [f.name for f in dataclasses.fields(registry.probe_class(kind).Options)]
        assert keys[:2] == ["name", "kind"]
        assert keys[2:2 + len(own)] == own
        assert sorted(keys) == sorted(set(common) | set(own))
    assert spec("http", "url").required and spec("http", "url").plain
    assert not spec("tcp", "port").plain and spec("tcp", "port").required
    assert spec("tls", "ca_file").path


@pytest.mark.parametrize(("kind", "key", "value", "text"), [
    ("tcp", "port", 5432, "5432"),
    ("tcp", "host", "10.0.0.5", "10.0.0.5"),
    ("tcp", "name", "123", "123"),             # a name stays a string
    ("tcp", "timeout", "5s", "5s"),            # no quotes needed
    ("tcp", "timeout", 5, "5"),
    ("tcp", "timeout", "5", '"5"'),            # a string that looks like a number keeps its quotes
    ("http", "expect_status", ["2xx", 301], '["2xx", 301]'),
    ("http", "headers", {"Authorization": "Bearer ${TOKEN}"}, '{Authorization = "Bearer ${TOKEN}"}'),
    ("http", "verify_tls", False, "false"),
    ("tcp", "tags", ["a", "b c"], '["a", "b c"]'),
    ("tcp", "description", " spaced ", " spaced "),
])
def test_box_text_and_values_round_trip(kind, key, value, text):
    field = spec(kind, key)
    assert show(field, value) == text
    assert read(field, text) == value


def test_an_empty_box_leaves_the_key_out_and_untouched_boxes_give_the_original():
    original = {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 5432, "timeout": 2.50}
    texts = {"name": "db", "host": "127.0.0.1", "port": "5432", "timeout": "2.5", "group": ""}
    fields = draft_fields("tcp", texts, original)
    assert fields == original and list(fields) == list(original)
    assert fields["timeout"] is original["timeout"]


def test_problems_land_on_their_fields_and_the_rest_is_elsewhere(tmp_path: Path):
    path = tmp_path / "monitor.toml"
    fields = {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 70000}
    verdict = check_draft(path, CONFIG, "db", fields)
    assert verdict.by_field == {"port": ["must be at most 65535, got 70000"]}
    assert not verdict.ok and verdict.count() == 1
    assert "port = 70000   # postgres" in verdict.text

    broken = CONFIG.replace('interval = "10s"', 'interval = "soon"')
    verdict = check_draft(path, broken, None, {"name": "web", "kind": "tcp", "host": "h",
                                               "port": 1})
    assert verdict.by_field == {}
    assert verdict.elsewhere == [f'{path}:2: settings.interval: cannot read "soon" as a duration '
                                 '(use e.g. "250ms", "30s", "5m", "1h")']

    verdict = check_draft(path, CONFIG, None, {"name": "db", "kind": "tcp", "host": "h", "port": 1})
    assert verdict.by_field == {"name": ["duplicate name: already used by the target on line 5"]}

    verdict = check_draft(path, CONFIG, "gone", {"name": "x"})
    assert verdict.text is None and "no [[targets]] block named 'gone'" in verdict.draft[0]

    assert check_draft(path, CONFIG, "db", {"name": "db", "kind": "tcp", "host": "h",
                                            "port": 2}).ok


async def test_test_now_probes_in_a_child_process(tmp_path: Path):
    accepted = asyncio.Event()

    async def answer(reader, writer):
        accepted.set()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        run = await probe_draft(tmp_path / "monitor.toml", CONFIG,
                                {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": port})
    finally:
        server.close()
        await server.wait_closed()
    assert accepted.is_set()
    assert run.problem is None and run.result["status"] == "up"
    assert run.result["name"] == "db" and "connect" in run.result["phases_ms"]


async def test_test_now_reports_the_drafts_problems_without_the_temporary_file(tmp_path: Path):
    run = await probe_draft(tmp_path / "monitor.toml", CONFIG,
                            {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 0})
    assert run.result is None
    assert run.problem == "targets[db].port: must be at least 1, got 0"


async def test_test_now_finds_a_relative_ca_file_beside_the_config(tmp_path: Path):
    ca = trustme.CA()
    (tmp_path / "private-ca.pem").write_bytes(ca.cert_pem.bytes())
    run = await probe_draft(tmp_path / "monitor.toml", CONFIG,
                            {"name": "t", "kind": "tls", "host": "127.0.0.1", "port": 9,
                             "ca_file": "private-ca.pem"})
    # the file was found (else: a config problem); nothing listens on port 9
    assert run.result is not None and run.result["status"] == "down"
