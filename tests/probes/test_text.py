"""Text from the network is made printable, and secrets are redacted, where it
enters a result: hostile loopback peers and a `${VAR}` password in a URL."""

from __future__ import annotations

import json
import unicodedata

from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import parse_config
from monitor.engine.runner import run_probe
from monitor.output import json_line, result_table
from monitor.probes.base import ProbeContext
from monitor.probes.text import printable, redact_secrets, redact_url, shown_value
from tests.servers.http_servers import app_server, raw_server, read_head

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil"


def _terminal_safe(text: str) -> bool:
    return all(unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029" for c in text)


@given(st.text())
def test_printable_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    shown = printable(text)
    assert _terminal_safe(shown)
    if text.isprintable():
        assert shown is text


def test_printable_shows_what_it_escaped() -> None:
    assert printable(HOSTILE) == "\\e]0;owned\\x07\\e[2J\\x9b31m\\u202eevil"


def test_shown_value_keeps_clean_objects_and_cleans_nested_ones() -> None:
    clean = {"a": ["b", ("c", 1)], "n": None}
    assert shown_value(clean, {}) is clean
    dirty = {"k\x1b": ["ok", ("x\x07", 2)]}
    assert shown_value(dirty, {}) == {"k\\e": ["ok", ("x\\x07", 2)]}


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("http://alice:pw@h:80/p?q=a:b@c") == "http://alice:***@h:80/p?q=a:b@c"
    assert redact_url("see https://u:p@x/final and ftp://v:w@y") == \
        "see https://u:***@x/final and ftp://v:***@y"
    assert redact_url("http://token@h/") == "http://token@h/"
    assert redact_url("mailto:a@b") == "mailto:a@b"


def test_redact_secrets_names_the_variable() -> None:
    secrets = {"hunter2-long": "PASS", "hunter2": "SHORT"}
    assert redact_secrets("got hunter2-long and hunter2", secrets) == "got ${PASS} and ${SHORT}"


async def _hostile_reason(reader, writer) -> None:   # type: ignore[no-untyped-def]
    await read_head(reader)
    writer.write(b"HTTP/1.1 503 \x1b]0;owned\x07\x1b[2JDown\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def test_http_reason_phrase_with_control_bytes_is_printable_everywhere() -> None:
    async with raw_server(_hostile_reason) as port:
        config = parse_config(f'[[targets]]\nname = "w"\nkind = "http"\n'
                              f'url = "http://127.0.0.1:{port}/"\ntimeout = "2s"\n')
        ctx = ProbeContext()
        try:
            result = await run_probe(config.targets[0], ctx)
        finally:
            await ctx.close()
    assert result.status == "down"
    assert result.reason is not None and "\x1b" not in result.reason and "\\e]0;owned" in result.reason
    for text in (result_table([result]), json.loads(json_line(result.to_json()))["reason"]):
        assert "\x1b" not in text and "\x07" not in text


async def test_url_password_from_env_never_appears_in_a_result() -> None:
    secret = "pw-s3cret-value"
    seen: list[str] = []

    async def final(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(status=500, reason="Broken")

    async def start(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://alice:{secret}@127.0.0.1:{request.url.port}/final")

    async with app_server([web.get("/", start), web.get("/final", final)]) as server:
        text = (f'[[targets]]\nname = "w"\nkind = "http"\n'
                f'url = "http://alice:${{PASS}}@127.0.0.1:{server.port}/"\ntimeout = "2s"\n')
        config = parse_config(text, environ={"PASS": secret})
        target = config.targets[0]
        ctx = ProbeContext()
        try:
            result = await run_probe(target, ctx)
        finally:
            await ctx.close()
    assert seen, "the probe reached the final hop"
    assert result.status == "down"
    everything = json_line(result.to_json()) + result_table([result]) + target.display_target
    assert secret not in everything
    assert "alice:***@" in result.target


def _reference(value, secrets):   # the plain definition shown_value must agree with
    from monitor.probes.text import shown
    if isinstance(value, str):
        return shown(value, secrets)
    if isinstance(value, dict):
        return {_reference(k, secrets): _reference(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_reference(v, secrets) for v in value)
    return value


_details = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20)


@given(_details, st.sampled_from([{}, {"s3cret": "PASS"}]))
def test_shown_value_agrees_with_its_plain_definition(value, secrets) -> None:
    assert shown_value(value, secrets) == _reference(value, secrets)
