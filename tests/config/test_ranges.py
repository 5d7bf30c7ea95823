"""Every number in a config is finite and in range, refused with a message
otherwise; names, groups and tags are text a terminal will not act on."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, parse_config
from monitor.config.durations import MAX_DURATION, MAX_SIZE, format_duration, parse_duration, parse_size
from monitor.config.fields import MAX_NUMBER, to_float, to_int

HUGE = "9" * 400
TARGET = '[[targets]]\nname = "t"\n'


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.toml", environ={})
    return [str(p) for p in info.value.problems]


# (config text, expected problem): the value is always on the config's last line
REFUSED = [
    ('[settings]\ninterval = "nan"\n', 'settings.interval: cannot read "nan" as a duration'),
    ("[settings]\ninterval = nan\n", "settings.interval: expected a duration such as \"30s\", got nan"),
    ('[settings]\ninterval = "inf"\n', "settings.interval: must be at most 365d"),
    ("[settings]\ninterval = inf\n", "settings.interval: must be at most 365d"),
    ('[settings]\ninterval = "1e400"\n', "settings.interval: must be at most 365d"),
    (f"[settings]\ninterval = {HUGE}\n", "settings.interval: must be at most 365d"),
    (f'[settings]\ninterval = "{HUGE}d"\n', "settings.interval: must be at most 365d"),
    ('[settings]\ninterval = "30d"\n', "settings.interval: must be between 1ms and 7d, got 30d"),
    ("[settings]\ninterval = 0\n", "settings.interval: must be between 1ms and 7d, got 0ms"),
    ('[settings]\ntimeout = "nan"\n', 'settings.timeout: cannot read "nan" as a duration'),
    ('[settings]\nrecheck_delay = "inf"\n', "settings.recheck_delay: must be at most 365d"),
    ('[settings]\nrecheck_delay = "10m"\n',
     "settings.recheck_delay: must be between 0ms and 5m, got 10m"),
    (f"[settings]\nconcurrency = {HUGE}\n",
     "settings.concurrency: must be at most 1000000000, got a number with 400 digits"),
    (f"[settings]\nhistory = -{HUGE}\n",
     "settings.history: must be at least -1000000000, got a number with 400 digits"),
    ("[settings]\nfailure_threshold = 1000000\n",
     "settings.failure_threshold: must be at most 1000, got 1000000"),
    (TARGET + 'kind = "tcp"\nhost = "h"\nport = 1\nmax_latency = "inf"\n',
     "targets[t].max_latency: must be at most 365d"),
    (TARGET + f'kind = "http"\nurl = "http://h/"\nbody_limit = {HUGE}\n',
     "targets[t].body_limit: must be at most 1TiB"),
    (TARGET + f'kind = "http"\nurl = "http://h/"\nbody_limit = "{HUGE}KiB"\n',
     "targets[t].body_limit: must be at most 1TiB"),
    (TARGET + 'kind = "http"\nurl = "http://h/"\nbody_limit = "100MiB"\n',
     "targets[t].body_limit: must be at most 67108864, got 104857600"),
    (TARGET + 'kind = "tls"\nhost = "h"\ncert_min_days = inf\n',
     "targets[t].cert_min_days: must be at most 1000000000, got inf"),
    (TARGET + 'kind = "tls"\nhost = "h"\ncert_min_days = nan\n',
     "targets[t].cert_min_days: expected a number, got nan"),
    (TARGET + 'kind = "icmp"\nhost = "h"\nmax_loss_pct = nan\n',
     "targets[t].max_loss_pct: expected a number, got nan"),
    (TARGET + f'kind = "icmp"\nhost = "h"\nspacing = {HUGE}\n',
     "targets[t].spacing: must be at most 365d"),
]


@pytest.mark.parametrize(("text", "expected"), REFUSED, ids=[e[1][:50] for e in REFUSED])
def test_numbers_out_of_range_are_refused_with_a_message(text: str, expected: str) -> None:
    found = errors(text)
    assert any(p.startswith(f"cfg.toml:{text.count(chr(10))}: {expected}") for p in found), found


@pytest.mark.parametrize(("key", "value"), [
    ("name", '"a\\u001b[2Jb"'), ("name", '"two\\nlines"'), ("group", '"\\u202eevil"'),
    ("tags", '["ok", "bell\\u0007"]')])
def test_control_characters_in_shown_text_are_refused(key: str, value: str) -> None:
    named = "" if key == "name" else 'name = "t"\n'
    text = f'[[targets]]\nkind = "tcp"\nhost = "h"\nport = 1\n{named}{key} = {value}\n'
    found = errors(text)
    where = f"cfg.toml:{text.count(chr(10))}: targets["
    assert any(p.startswith(where) and f".{key}: must not contain control characters" in p
               for p in found), found


def test_names_in_any_script_and_with_wide_spaces_are_fine() -> None:
    config = parse_config('[[targets]]\nname = "café ☕ 東京\u00a0eins"\nkind = "tcp"\nhost = "h"\n'
                          'port = 1\ngroup = "prod\u3000eu"\ntags = ["ü"]\n', environ={})
    assert config.targets[0].name == "café ☕ 東京\u00a0eins"


def test_in_range_bounds_and_durations_print_readably() -> None:
    found = errors('[settings]\nconcurrency = 200000\ninterval = "0.0001s"\n')
    assert "cfg.toml:2: settings.concurrency: must be at most 100000, got 200000" in found
    assert "cfg.toml:3: settings.interval: must be between 1ms and 7d, got 0ms" in found


@settings(max_examples=300, deadline=None, database=None)
@given(st.floats() | st.integers() | st.text(max_size=30))
def test_format_duration_never_raises(value: object) -> None:
    if isinstance(value, str):
        value = len(value) * 1.5
    shown = format_duration(value)  # type: ignore[arg-type]
    assert isinstance(shown, str) and 0 < len(shown) <= 24


DURATION_TEXT = st.from_regex(r"\A-?[0-9]{0,400}(\.[0-9]{1,5})?(ms|s|m|h|d)?\Z") | st.sampled_from(
    ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "1e-400", "1_0", "+5", " 5 s", "1h30m"])


@settings(max_examples=300, deadline=None, database=None)
@given(DURATION_TEXT | st.floats() | st.integers() | st.booleans() | st.none())
def test_a_duration_is_finite_and_in_range_or_a_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(seconds, float) and 0 <= seconds <= MAX_DURATION


SIZE_TEXT = st.from_regex(r"\A[0-9]{1,400}(\.[0-9]{1,3})? ?(b|KiB|MB|GiB|TiB)?\Z")


@settings(max_examples=200, deadline=None, database=None)
@given(SIZE_TEXT | st.integers() | st.floats() | st.text(max_size=10))
def test_a_size_is_in_range_or_a_value_error(value: object) -> None:
    try:
        size = parse_size(value)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(size, int) and 0 <= size <= MAX_SIZE


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers() | st.floats() | st.booleans() | st.text(max_size=5))
def test_numbers_are_finite_and_bounded_or_a_value_error(value: object) -> None:
    for convert in (to_int, to_float):
        try:
            number = convert(value)
        except ValueError as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        assert math.isfinite(number) and abs(number) <= MAX_NUMBER
