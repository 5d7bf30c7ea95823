"""Hostile and careless config files. The contract: whatever the bytes,
`load_config` returns a Config or raises ConfigError, and every problem has a
line (>= 1), is one printable line and names secrets only by variable. Real
configs are mutated the way careless editing, broken tools and hostile hands
do: flipped bytes, TOML fragments, deep nesting, huge numbers, bad UTF-8."""

from __future__ import annotations

import inspect
import sys
import textwrap
import tomllib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Config, ConfigError, load_config, parse_config
from monitor.config.fields import option_names
from monitor.config.lines import MAX_DEPTH, scan
from monitor.config.model import DemoSettings, Settings, TargetCommon
from monitor.probes import registry
from tests.config.test_load import GOOD

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token-value"

EVERY_KIND = textwrap.dedent("""\
    [settings]
    interval = "10s"
    timeout = 2.5
    recheck_delay = "250ms"
    history = 500

    [demo]
    enabled = false

    [keys]
    pause = "space"

    [[targets]]
    name = "api"
    kind = "http"
    url = "https://user:${API_TOKEN}@api.example.org/health"
    method = "POST"
    body = '''{"ping": 1}'''
    headers = { Authorization = "Bearer ${API_TOKEN}", "X-Trace" = "1" }
    expect_status = ["2xx", 301, "400-404"]
    expect_json = { status = "UP", "checks.db" = "UP", items = [1, 2.5, true] }
    expect_headers = { Content-Type = "json$" }
    body_limit = "128KiB"
    cert_min_days = 7.5
    tags = ["a", "b"]

    [[targets]]
    name = "db"
    kind = "tcp"
    host = "db.internal"
    port = 5432
    send = "PING\\r\\n"
    expect_regex = "^\\\\+PONG"
    read_limit = 4096

    [[targets]]
    name = "dns"
    kind = "dns"
    query_name = "example.org"
    record_type = "MX"
    server = "[2001:db8::1]:5353"
    expect_answers = ["mx.example.org"]
    min_answers = 1

    [[targets]]
    name = "ping"
    kind = "icmp"
    host = "192.0.2.1"
    count = 5
    spacing = "100ms"
    max_loss_pct = 20

    [[targets]]
    name = "cert"
    kind = "tls"
    host = "example.org"
    min_version = "TLSv1.3"
    """)

SEEDS = [(ROOT / "sample-config.toml").read_bytes(), (ROOT / "monitor" / "starter.toml").read_bytes(),
         GOOD.encode(), EVERY_KIND.encode()]

FRAGMENTS = [b"[[", b"]]", b"[", b"]", b"{", b"}", b'"""', b"'''", b'"', b"'", b"=", b",", b".",
             b"#", b"\\", b"\n", b"\r\n", b"\r", b"\t", b"\x00", b"\x1b", b"\xff", b"\xc3", b"\xe2\x82",
             b"\xef\xbb\xbf", b"\\u001b", b"\\ud800", b"${API_TOKEN}", b"${NOT_SET}", b"$${X}",
             b"nan", b"inf", b"-inf", b"1e400", b"9" * 400, b"9" * 5000, b"0x" + b"f" * 500,
             b"[" * 2000, b"{a=" * 400, b"a." * 3000 + b"a = 1\n", b"[t" + b".t" * 3000 + b"]\n",
             b"\n[[targets]]\n", b"\n[settings]\n", b"x = ", b"1979-05-27T07:32:00Z", b"24:00:00"]

VALUES = ["nan", "inf", "-inf", "1e400", "-1", "0", "1e-9", "9" * 400, "9" * 5000, '"nan"', '"inf"',
          '"1e400"', f'"{"9" * 400}d"', f'"{"9" * 400}KiB"', '"-5s"', '""', '" "', "true", "[]", "{}",
          "[[[[]]]]", '["a", 1]', '{ a = { b = 1 } }', '"\\u001b[2J"', '"a\\u0000b"', '"\\u202e"',
          '"${API_TOKEN}"', '"${NOT_SET}"', '"http://u:${API_TOKEN}@h/"', "1979-05-27", "07:32:00",
          '"' + "a." * 200 + '"', '"(((("', '"2xx"', "65536", '"[::1]:99999999999999"',
          "[" * 2000 + "]" * 2000, "{a=" * 100 + "1" + "}" * 100, "[" * 20 + "]" * 20]

# every key of every section and kind, to set to the values above
OPTION_CLASSES = [Settings, DemoSettings, TargetCommon,
                  *(registry.probe_class(kind).Options for kind in registry.kinds())]
OPTIONS = sorted({name for cls in OPTION_CLASSES for name in option_names(cls)})


@st.composite
def mutated_configs(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "insert", "delete", "truncate", "value", "value",
                                   "option", "option", "uncomment", "crlf"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(FRAGMENTS))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 60))]
        elif op == "truncate":
            del data[pos:]
        elif op == "crlf":
            data = bytearray(data.replace(b"\n", b"\r\n"))
        else:
            lines = bytes(data).split(b"\n")
            at = draw(st.integers(0, len(lines) - 1))
            value = draw(st.sampled_from(VALUES)).encode()
            if op == "value" and b"=" in lines[at]:
                lines[at] = lines[at][:lines[at].index(b"=") + 1] + b" " + value
            elif op == "option":
                lines.insert(at + 1, draw(st.sampled_from(OPTIONS)).encode() + b" = " + value)
            elif op == "uncomment":
                lines[at] = lines[at].removeprefix(b"# ")
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("API_TOKEN", SECRET)
        patch.delenv("NOT_SET", raising=False)
        yield tmp_path_factory.mktemp("hostile") / "monitor.toml"


def assert_contract(path: Path) -> Config | ConfigError:
    """load_config gives a Config, or ConfigError whose problems all read
    FILE:LINE: ..., with LINE >= 1, on one printable line, without secrets."""
    try:
        return load_config(path)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            shown = str(problem)
            assert problem.line >= 1, shown
            assert shown.startswith(f"{path}:{problem.line}: "), shown
            assert shown.isprintable(), shown
            assert SECRET not in shown, shown
        return exc


def depth(data: object) -> int:
    """Nesting depth of parsed TOML (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def assert_too_deep_for_tomllib_too(data: bytes) -> None:
    """The scan that refuses deep nesting before tomllib must not refuse a
    file tomllib reads as well-formed and shallow."""
    text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    try:
        parsed = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return
    assert depth(parsed) > MAX_DEPTH


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=mutated_configs())
def test_any_mutated_config_loads_or_names_a_line_for_every_problem(config_file: Path,
                                                                    data: bytes) -> None:
    config_file.write_bytes(data)
    outcome = assert_contract(config_file)
    if isinstance(outcome, Config):
        for target in outcome.targets:
            for text in (target.name, target.group, *target.tags):
                assert all(c.isprintable() or unicodedata.category(c) == "Zs" for c in text)
    elif any(f"more than {MAX_DEPTH} levels deep" in p.message for p in outcome.problems):
        assert_too_deep_for_tomllib_too(data)


@settings(max_examples=150, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_any_bytes_at_all(config_file: Path, data: bytes) -> None:
    config_file.write_bytes(data)
    assert_contract(config_file)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from([f.decode("latin-1") for f in FRAGMENTS]) | st.text(max_size=8),
                max_size=12).map("".join))
def test_the_line_scan_survives_any_text(text: str) -> None:
    layout = scan(text)
    last = text.count("\n") + 1
    assert all(1 <= line <= last for line in layout.lines.values())
    for line in (layout.too_deep, layout.long_number, layout.deepest):
        assert line is None or 1 <= line <= last


# Each (file, line, problem) below crashed with a traceback or gave no line.
LINES = [
    (b"[settings]\ninterval = " + b"[" * 3000 + b"]" * 3000 + b"\n", 2, "nest more than 32 levels"),
    (b"[settings]\nx = " + b"{a=" * 500 + b"1" + b"}" * 500 + b"\n", 2, "nest more than 32 levels"),
    (b"# ok\n\n" + b"a." * 3000 + b"a = 1\n", 3, "nest more than 32 levels"),
    (b"[settings]\n[t" + b".t" * 3000 + b"]\n", 2, "nest more than 32 levels"),
    (b"a = [\n" + b"[\n" * 40 + b"]\n" * 41, MAX_DEPTH, "nest more than 32 levels"),
    (b"# ok\n[settings]\nconcurrency = " + b"9" * 5000 + b"\n", 3, "a number of more than 4300 digits"),
    (b"[settings]\n# caf\xc3\xa9\ninterval = \"5s\" # \xff\n", 3, "not UTF-8: byte 0xff at column 19"),
    (b"[settings]\r\n\r\ninterval = \"\xe2\x82\"\n", 3, "not UTF-8: byte 0xe2 at column 13"),
    (b"[settings]\n\ninterval = \"5s", 3, "TOML syntax error: Unterminated string at the end of the file"),
    (b'[[targets]]\nname = "a"\nbody = """\nnever\nclosed\n', 5,
     "at the end of the file (the string opened on line 3 is never closed)"),
    (b"[settings]\nx = [1,\n2,\n", 3, "at the end of the file (the array opened on line 2 is never closed)"),
    (b'[settings]\n"\\u001b[2J" = 1\n', 2, "settings.\\e[2J: unknown key"),
]


@pytest.mark.parametrize(("data", "line", "problem"), LINES, ids=[p for _, _, p in LINES])
def test_hostile_files_get_a_line_and_a_message(config_file: Path, data: bytes, line: int,
                                                problem: str) -> None:
    config_file.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_config(config_file)
    assert any(str(p).startswith(f"{config_file}:{line}: ") and problem in str(p)
               for p in info.value.problems), info.value.problems


def test_a_parser_out_of_stack_still_names_a_line() -> None:
    # The scan refuses deep nesting before tomllib sees it; should tomllib
    # still run out of stack (here: a low recursion limit), the deepest line
    # is named all the same.
    text = 'name = "x"\nlist = ' + "[" * 30 + "]" * 30 + "\n"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 40)
    try:
        with pytest.raises(ConfigError) as info:
            parse_config(text, "cfg.toml", environ={})
    finally:
        sys.setrecursionlimit(limit)
    assert str(info.value) == "cfg.toml:2: arrays and inline tables nest too deeply to be read"


@pytest.mark.parametrize(("brackets", "refused"), [(MAX_DEPTH - 1, False), (MAX_DEPTH, True)])
def test_the_nesting_limit_counts_as_tomllib_nests(brackets: int, refused: bool) -> None:
    text = "x = " + "[" * brackets + "]" * brackets + "\n"
    assert depth(tomllib.loads(text)) == brackets + 1   # the top table, then the arrays
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.toml", environ={})
    assert ("levels deep" in str(info.value)) is refused, str(info.value)


def test_nesting_a_config_needs_is_fine() -> None:
    config = parse_config('[[targets]]\nname = "a"\nkind = "http"\nurl = "http://h/"\n'
                          'expect_json = { "a.b" = { c = [[1, [2]], { d = [3] }] } }\n', environ={})
    assert config.targets[0].options.expect_json


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_windows_and_old_mac_files_read_like_unix_ones(config_file: Path, newline: bytes) -> None:
    config_file.write_bytes(b"\xef\xbb\xbf" + GOOD.encode().replace(b"\n", newline)
                            .replace(b"${API_TOKEN}", b"x") + newline + b"[setings]" + newline)
    with pytest.raises(ConfigError) as info:
        load_config(config_file)
    line = GOOD.count("\n") + 2   # after GOOD's lines and a blank one
    assert [str(p) for p in info.value.problems] == [
        f"{config_file}:{line}: setings: unknown section (did you mean 'settings'?)"]


def test_a_secret_in_a_name_is_shown_by_its_variable(config_file: Path) -> None:
    config_file.write_bytes(b'[[targets]]\nname = "${API_TOKEN}"\nkind = "htp"\n')
    with pytest.raises(ConfigError) as info:
        load_config(config_file)
    assert [str(p) for p in info.value.problems] == [
        f"{config_file}:3: targets[${{API_TOKEN}}].kind: unknown kind 'htp' (did you mean 'http'?)"]


def test_a_file_too_large_to_be_a_config_is_not_read_to_the_end() -> None:
    # /dev/zero would otherwise be read until memory runs out
    with pytest.raises(ConfigError) as info:
        load_config("/dev/zero")
    assert str(info.value) == "/dev/zero: larger than 64 MiB: not a config file"
