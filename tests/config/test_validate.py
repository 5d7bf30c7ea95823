"""`validate` reports every problem of a target, however many it has, and
names each target by its name (by position only when it has no usable name)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "cfg.toml", environ=env or {})
    return [str(p) for p in caught.value.problems]


TIMEOUT_TOO_LONG = "timeout 1m is longer than interval 30s"


@pytest.mark.parametrize(("other", "other_problem"), [
    ('url = "gopher://x"', "cfg.toml:4: targets[db].url: "),
    ('url = "http://x/"\nexpect_stauts = 200', "cfg.toml:5: targets[db].expect_stauts: unknown key"),
    ('url = "http://x/"\ngroup = 7', "cfg.toml:5: targets[db].group: expected a string"),
    ('url = "http://x/"\nfailure_threshold = 0', "cfg.toml:5: targets[db].failure_threshold: "),
    ('url = "http://x/${NOPE}"', "cfg.toml:4: targets[db].url: environment variable NOPE is not set"),
    ('url = "http://x/"\nmethod = "GET"\nbody = "x"', "cfg.toml:6: targets[db].body: "),
], ids=["bad-url", "unknown-key", "bad-common-key", "bad-threshold", "missing-env", "kind-check"])
def test_timeout_longer_than_interval_is_reported_beside_any_other_problem(other, other_problem):
    found = problems(f"""\
        [[targets]]
        name = "db"
        kind = "http"
        {other.replace(chr(10), chr(10) + " " * 8)}
        timeout = "1m"
        """)
    assert any(line.startswith(other_problem) for line in found), found
    assert any(line.endswith(f"targets[db].timeout: {TIMEOUT_TOO_LONG}") for line in found), found
    assert len(found) == 2, found


def test_a_timing_check_of_the_kind_is_reported_beside_other_problems():
    found = problems("""\
        [[targets]]
        name = "gw"
        kind = "icmp"
        host = "127.0.0.1"
        count = 50
        spacing = "1s"
        timeout = "2s"
        group = 7
        """)
    assert [line.split(": ")[1] for line in found] == ["targets[gw].count", "targets[gw].group"]


def test_every_problem_names_the_target_by_name_wherever_it_is():
    targets = "".join(f"""
        [[targets]]
        name = "t{i}"
        kind = "http"
        url = "http://x/{i}"
        """ for i in range(4))
    found = problems(targets + """
        [[targets]]
        name = "db"
        kind = "http"
        url = "${DB_SCHEME}://${DB_HOST}/"
        headers = { Authorization = "Bearer ${TOKEN}" }
        """)
    assert found == ["cfg.toml:25: targets[db].url: environment variable DB_SCHEME is not set",
                     "cfg.toml:25: targets[db].url: environment variable DB_HOST is not set",
                     "cfg.toml:26: targets[db].headers.Authorization: "
                     "environment variable TOKEN is not set"]


@pytest.mark.parametrize("name_line", ["", "name = 3", 'name = "  "'],
                         ids=["missing", "not-a-string", "blank"])
def test_a_target_without_a_usable_name_is_named_by_its_position(name_line):
    found = problems(f"""\
        [[targets]]
        name = "first"
        kind = "tcp"
        host = "h"
        port = 1

        [[targets]]
        {name_line}
        kind = "http"
        url = "${{NOPE}}"
        timeout = "1m"
        """)
    assert all(": targets[#2]." in line for line in found), found
    assert any(line.endswith(f"targets[#2].timeout: {TIMEOUT_TOO_LONG}") for line in found)
    assert any("targets[#2].url: environment variable NOPE is not set" in line for line in found)


def settings_and_two_tcp_targets(interval: str, a: str, b: str) -> str:
    """[settings] interval, then targets a and b, each with its own extra lines."""
    blocks = "".join(f'\n[[targets]]\nname = "{name}"\nkind = "tcp"\nhost = "h"\nport = 1\n{extra}'
                     for name, extra in (("a", a), ("b", b)))
    return f'[settings]\ninterval = "{interval}"\n{blocks}'


def test_settings_that_are_wrong_are_said_once_not_once_per_target():
    found = problems(settings_and_two_tcp_targets("1s", "", 'interval = "2s"\n'))
    # (a default timeout has no line of its own: the [settings] table's)
    assert found == ["cfg.toml:1: settings.timeout: timeout 5s is longer than interval 1s",
                     "cfg.toml:15: targets[b].interval: timeout 5s is longer than interval 2s"]


def test_unreadable_settings_do_not_make_up_problems_for_targets_that_inherit_them():
    found = problems(settings_and_two_tcp_targets(
        "soon", 'timeout = "1m"\n', 'interval = "10s"\ntimeout = "1m"\n'))
    assert [line.split(": ")[1] for line in found] == ["settings.interval", "targets[b].timeout"]


async def test_validate_prints_every_problem_in_line_order_and_exits_2(tmp_path: Path):
    config = tmp_path / "monitor.toml"
    config.write_text(textwrap.dedent("""\
        [settings]
        interval = "soon"

        [[targets]]
        name = "api"
        kind = "http"
        url = "http://x/"
        expect_stauts = 200

        [[targets]]
        name = "db"
        kind = "tcp"
        host = "db.internal"
        port = 99999
        send = "${GREETING}"
        interval = "30s"
        timeout = "1m"
        """))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "validate", str(config), cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and out == b""
    assert err.decode().splitlines() == [
        f'{config}:2: settings.interval: cannot read "soon" as a duration '
        '(use e.g. "250ms", "30s", "5m", "1h")',
        f"{config}:8: targets[api].expect_stauts: unknown key for kind 'http' "
        "(did you mean 'expect_status'?)",
        f"{config}:14: targets[db].port: must be at most 65535, got 99999",
        f"{config}:15: targets[db].send: environment variable GREETING is not set",
        f"{config}:17: targets[db].timeout: {TIMEOUT_TOO_LONG}",
        "5 problems in the config.",
    ]
