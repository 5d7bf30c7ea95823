"""`[settings] metrics` and `location`: what is accepted, and how a bad value is told."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, parse_config


def settings(body: str):
    return parse_config(f"[settings]\n{body}\n", "m.toml").settings


def test_off_by_default_with_no_location():
    assert settings("").metrics == ""
    assert settings("").location == ""


@pytest.mark.parametrize("given, served", [
    ('"127.0.0.1:9115"', "127.0.0.1:9115"),
    ('"9115"', "127.0.0.1:9115"),                # a bare port stays on loopback
    ('"localhost:9200"', "127.0.0.1:9200"),
    ('"0.0.0.0:9115"', "0.0.0.0:9115"),          # every interface: only when written out
    ('"[::1]:9115"', "[::1]:9115"),
    ('" 10.1.2.3:80 "', "10.1.2.3:80"),
    ("true", "127.0.0.1:9115"),
    ("false", ""),
    ('"off"', ""),
    ('""', ""),
])
def test_addresses(given, served):
    assert settings(f"metrics = {given}").metrics == served


@pytest.mark.parametrize("given, problem", [
    ('"example.org:9115"', 'expected an IP address and port such as "127.0.0.1:9115"'),
    ('"127.0.0.1"', "expected a port from 1 to 65535"),
    ('"127.0.0.1:0"', "expected a port from 1 to 65535"),
    ('"127.0.0.1:70000"', "expected a port from 1 to 65535"),
    ('"::1:9115"', "write an IPv6 address in brackets"),
    ("9115", "expected a string, got an integer"),
])
def test_bad_addresses_name_file_line_and_key(given, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[settings]\ninterval = "30s"\nmetrics = {given}\n', "m.toml")
    [line] = str(caught.value).splitlines()
    assert line.startswith("m.toml:3: settings.metrics: ")
    assert problem in line


def test_location_is_a_label_and_refuses_control_characters():
    assert settings('location = "eu-west (Paris)"').location == "eu-west (Paris)"
    with pytest.raises(ConfigError) as caught:
        parse_config('[settings]\nlocation = "a\\u001b[2Jb"\n', "m.toml")
    assert "m.toml:2: settings.location: must not contain control characters" in str(caught.value)


def test_typo_gets_a_hint():
    with pytest.raises(ConfigError) as caught:
        parse_config('[settings]\nmetric = "9115"\n', "m.toml")
    assert "m.toml:2: settings.metric: unknown key (did you mean 'metrics'?)" in str(caught.value)
