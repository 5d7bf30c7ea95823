"""Config validation: every broken file gives FILE:LINE: key: problem."""

from __future__ import annotations

import textwrap

import pytest

from monitor.config import ConfigError, parse_config
from monitor.config.durations import format_duration, parse_duration, parse_size

GOOD = """\
[settings]
interval = "30s"
timeout = "5s"

[[targets]]
name = "api"
kind = "http"
url = "https://api.example.org/health"
expect_status = ["2xx", 301]
headers = { Authorization = "Bearer ${API_TOKEN}" }
max_latency = "800ms"
group = "production"
tags = ["edge", "public"]

[[targets]]
name = "db"
kind = "tcp"
host = "10.0.0.5"
port = 5432
interval = 60
"""


def load(text: str, env: dict[str, str] | None = None):
    return parse_config(textwrap.dedent(text), "cfg.toml", environ=env or {})


def errors(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return [str(p) for p in info.value.problems]


def test_good_config_loads_with_defaults_and_env():
    config = load(GOOD, {"API_TOKEN": "s3cret"})
    api, db = config.targets
    assert api.options.headers == {"Authorization": "Bearer s3cret"}
    assert api.interval == 30 and api.timeout == 5 and api.max_latency == 0.8
    assert api.failure_threshold == 2 and api.tags == ("edge", "public")
    assert api.options.expect_status == ((200, 299), (301, 301))
    assert db.interval == 60 and db.options.port == 5432
    assert api.line == 5 and db.line == 15


# (config text, expected "LINE: key: problem" fragments)
BROKEN = [
    ("[settings]\ninterval = \"fast\"\n",
     ["cfg.toml:2: settings.interval: cannot read \"fast\" as a duration"]),
    ("[settings]\ninterval = \"-5s\"\n",
     ["cfg.toml:2: settings.interval: duration must not be negative"]),
    ("[settings]\nintervall = \"5s\"\n",
     ["cfg.toml:2: settings.intervall: unknown key (did you mean 'interval'?)"]),
    ("[setings]\n",
     ["cfg.toml:1: setings: unknown section (did you mean 'settings'?)"]),
    ("[settings]\ninterval = \"5s\"\ntimeout = \"10s\"\n",
     ["cfg.toml:3: settings.timeout: timeout 10s is longer than interval 5s"]),
    ("[settings]\nconcurrency = \"lots\"\n",
     ["cfg.toml:2: settings.concurrency: expected an integer, got a string"]),
    ("[settings]\nfailure_threshold = 0\n",
     ["cfg.toml:2: settings.failure_threshold: must be at least 1"]),
    ("[[targets]]\nname = \"a\"\nkind = \"htp\"\nurl = \"http://x\"\n",
     ["cfg.toml:3: targets[a].kind: unknown kind 'htp' (did you mean 'http'?)"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\n",
     ["cfg.toml:1: targets[a].url: required for this kind but missing"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"ftp://x/\"\n",
     ["cfg.toml:4: targets[a].url: expected an http:// or https:// URL"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://\"\n",
     ["cfg.toml:4: targets[a].url: URL has no host"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nexpect_stauts = 200\n",
     ["cfg.toml:5: targets[a].expect_stauts: unknown key for kind 'http' (did you mean 'expect_status'?)"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nexpect_status = \"6xx\"\n",
     ["cfg.toml:5: targets[a].expect_status: cannot read '6xx' as a status"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nexpect_body_regex = \"(\"\n",
     ["cfg.toml:5: targets[a].expect_body_regex: invalid regular expression"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\ntimeout = \"1m\"\n",
     ["cfg.toml:5: targets[a].timeout: timeout 1m is longer than interval 30s"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\ninterval = \"2s\"\n",
     ["cfg.toml:5: targets[a].interval: timeout 5s is longer than interval 2s"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\n"
     "[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://y/\"\n",
     ["cfg.toml:6: targets[a].name: duplicate name: already used by the target on line 1"]),
    ("[[targets]]\nkind = \"http\"\nurl = \"http://x/\"\n",
     ["cfg.toml:1: targets[#1].name: required for this kind but missing"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/${NOPE}\"\n",
     ["cfg.toml:4: targets[a].url: environment variable NOPE is not set"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nheaders = { A = 1 }\n",
     ["cfg.toml:5: targets[a].headers: A: expected a string, got an integer"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nmethod = \"GET\"\nbody = \"x\"\n",
     ["cfg.toml:6: targets[a].body: a GET request cannot carry a body"]),
    ("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\nusername = \"u\"\n",
     ["cfg.toml:5: targets[a].username: password is missing: username and password go together"]),
    ("targets = 3\n", ["cfg.toml:1: targets: expected [[targets]] tables"]),
    ("[settings\ninterval = 1\n", ["cfg.toml:1: TOML syntax error"]),
    ("[[targets]]\nname = \"a\"\nname = \"b\"\n", ["cfg.toml:3: TOML syntax error"]),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN, ids=[e[0][:40] for e in BROKEN])
def test_broken_config_reports_file_line_key(text: str, expected: list[str]):
    found = errors(text)
    for fragment in expected:
        assert any(fragment in line for line in found), f"{fragment!r} not in {found}"


def test_all_problems_are_reported_at_once():
    text = """\
    [settings]
    interval = "soon"
    colour = "red"

    [[targets]]
    name = "a"
    kind = "http"
    url = "gopher://x"

    [[targets]]
    name = "b"
    kind = "tcpp"
    """
    found = errors(text)
    assert len(found) == 4, found
    assert [f.split(":")[1] for f in found] == ["2", "3", "8", "12"]


def test_substitution_escape_keeps_literal():
    config = load("[[targets]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://x/$${HOME}\"\n")
    assert config.targets[0].options.url == "http://x/${HOME}"


def test_empty_file_is_a_valid_config_with_no_targets():
    config = load("")
    assert config.targets == () and config.settings.interval == 30


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), (10, 10),
    (0.5, 0.5), ("2", 2), ("1d", 86400)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["-1s", -3, "5 parsecs", "", True, "1x"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_and_size():
    assert format_duration(0.25) == "250ms" and format_duration(90) == "1m30s"
    assert parse_size("64KiB") == 65536 and parse_size(100) == 100
    with pytest.raises(ValueError):
        parse_size("lots")


def test_relative_ca_file_is_relative_to_the_config_file(tmp_path, monkeypatch):
    import trustme
    folder = tmp_path / "etc"
    folder.mkdir()
    trustme.CA().cert_pem.write_to_path(str(folder / "ca.pem"))
    config = folder / "monitor.toml"
    config.write_text('[[targets]]\nname = "a"\nkind = "tls"\nhost = "127.0.0.1"\n'
                      'ca_file = "ca.pem"\n')
    monkeypatch.chdir(tmp_path)   # not where the config is
    from monitor.config import load_config
    assert load_config(config).targets[0].options.ca_file == str(folder / "ca.pem")
