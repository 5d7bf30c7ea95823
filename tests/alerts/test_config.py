"""`[[alerts]]`, `[[maintenance]]`, target `alerts`/`depends_on` and the
`[settings]` keys: what loads, and every problem as FILE:LINE: key: problem."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, parse_config
from monitor.config.alerting import CHANNEL_KINDS, ChannelCommon
from monitor.config.fields import option_names
from monitor.config.maintenance import MaintenanceKeys
from tests.alerts.conftest import config, targets
from tests.config.test_hostile import FRAGMENTS, SECRET, VALUES, assert_contract, config_file

__all__ = ["config_file"]   # the hostile tests' fixture (sets API_TOKEN to SECRET)

ALERTING = textwrap.dedent("""\
    [settings]
    alerts = ["ops", "phone"]
    maintenance_uptime = "include"

    [[targets]]
    name = "gateway"
    kind = "tcp"
    host = "127.0.0.1"
    port = 9

    [[targets]]
    name = "api"
    kind = "http"
    url = "http://127.0.0.1:9/health"
    group = "web"
    alerts = ["ops", "script", "screen"]
    depends_on = ["gateway"]

    [[alerts]]
    name = "ops"
    kind = "webhook"
    url = "https://hooks.example/${API_TOKEN}"
    headers = { Authorization = "Bearer ${API_TOKEN}" }
    on = ["down", "up", "degraded"]
    repeat = "30m"
    cert_days = 14
    retries = 5
    backoff = "1s"
    timeout = "5s"

    [[alerts]]
    name = "phone"
    kind = "apprise"
    urls = ["ntfy://ntfy.example/${API_TOKEN}", "json://127.0.0.1:9/x"]

    [[alerts]]
    name = "script"
    kind = "command"
    command = ["/usr/local/bin/page", "--team", "ops"]

    [[alerts]]
    name = "screen"
    kind = "bell"

    [[maintenance]]
    name = "nightly"
    groups = ["web"]
    weekdays = ["mon-fri"]
    start = "23:30"
    end = "00:30"
    timezone = "Europe/Paris"

    [[maintenance]]
    targets = ["gateway"]
    start = 2025-06-01T22:00:00Z
    end = "2025-06-02 02:00"
    """)


def load(text: str, tmp_path: Path, environ: dict[str, str] | None = None):
    path = tmp_path / "monitor.toml"
    return parse_config(textwrap.dedent(text), path, {"API_TOKEN": SECRET, **(environ or {})})


def problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path)
    return [str(p).split(": ", 1)[1] for p in caught.value.problems]


def test_everything_loads(tmp_path: Path):
    cfg = load(ALERTING, tmp_path)
    ops, phone, script, screen = cfg.alerts
    assert (ops.kind, phone.kind, script.kind, screen.kind) == ("webhook", "apprise", "command", "bell")
    assert ops.on == {"down", "up", "degraded"} and ops.repeat == 1800 and ops.cert_days == 14
    assert (ops.retries, phone.retries, script.retries) == (5, 2, 0)   # per-kind defaults
    assert script.options.command == ("/usr/local/bin/page", "--team", "ops")
    assert cfg.settings.alerts == ("ops", "phone") and cfg.settings.maintenance_uptime == "include"
    api = cfg.target("api")
    assert api.alerts == ("ops", "script", "screen") and api.depends_on == ("gateway",)
    nightly, once = cfg.maintenance
    assert nightly.recurring and nightly.weekdays == {0, 1, 2, 3, 4} and nightly.groups == {"web"}
    assert nightly.start_time == dt.time(23, 30) and nightly.timezone == "Europe/Paris"
    assert once.start == dt.datetime(2025, 6, 1, 22, tzinfo=dt.UTC)
    assert once.end == dt.datetime(2025, 6, 2, 2, tzinfo=dt.UTC)


def test_channels_are_shown_without_their_secrets(tmp_path: Path):
    cfg = load(ALERTING, tmp_path)
    for channel in cfg.alerts:
        assert SECRET not in channel.describe()
    assert cfg.alerts[0].describe() == "https://hooks.example/${API_TOKEN}"
    assert "${API_TOKEN}" not in cfg.alerts[1].describe() or SECRET not in cfg.alerts[1].describe()


def test_who_hears_about_a_target_is_not_what_is_probed(tmp_path: Path):
    """Editing alerts or depends_on must not restart the target's probing."""
    before = load(ALERTING, tmp_path).target("api")
    after = load(ALERTING.replace('depends_on = ["gateway"]', "").replace(
        'alerts = ["ops", "script", "screen"]', "alerts = []"), tmp_path).target("api")
    assert before == after and after.alerts == () and after.depends_on == ()


@pytest.mark.parametrize("text, expected", [
    (targets("a") + '\n[[alerts]]\nname = "x"\nkind = "webhook"\nurl = "http://h/"\nrepat = "5m"\n',
     "alerts[x].repat: unknown key for kind 'webhook' (did you mean 'repeat'?)"),
    (targets("a") + '\n[[alerts]]\nname = "x"\nkind = "bell"\n\n[[alerts]]\nname = "x"\nkind = "bell"\n',
     "alerts[x].name: duplicate name: already used by the channel on line 10"),
    (targets("a") + '\n[[alerts]]\nname = "x"\nkind = "apprise"\nurls = ["nosuch://a/b"]\n',
     "alerts[x].urls: Apprise cannot use 'nosuch://a/b': unknown service 'nosuch' or a "
     "malformed URL (see the Apprise wiki for its forms)"),
    (targets("a") + '\n[[alerts]]\nname = "x"\nkind = "apprise"\nurls = []\n',
     "alerts[x].urls: give at least one Apprise URL"),
    (targets("a") + '\n[[alerts]]\nname = "x"\nkind = "command"\ncommand = []\n',
     'alerts[x].command: expected an argument list such as ["/usr/local/bin/page", "--team", '
     '"ops"] (no shell is used)'),
    (targets("a") + '\n[[alerts]]\nname = "x"\nkind = "webhook"\nurl = "http://h/"\nrepeat = "0s"\n',
     "alerts[x].repeat: must be between 1s and 30d, got 0ms"),
    (targets("a", extra='depends_on = ["a"]\n'), "targets[a].depends_on: a target cannot depend on itself"),
    (targets("a", extra='alerts = ["x"]\n'),
     "targets[a].alerts: unknown channel 'x' (no [[alerts]] channel is defined)"),
    (targets("a") + '\n[[maintenance]]\nstart = "02:00"\nend = 2025-06-01T00:00:00Z\n',
     "maintenance[#1].end: start and end must both be date-times (a one-off window) or both "
     "times of day (a recurring one)"),
    (targets("a") + '\n[[maintenance]]\nweekdays = ["sat"]\nstart = 2025-06-01T00:00:00Z\n'
     'end = 2025-06-02T00:00:00Z\n',
     'maintenance[#1].weekdays: only for a recurring window (start and end as times of day, '
     'e.g. "02:00")'),
    (targets("a") + '\n[[maintenance]]\nweekdays = ["fri", "caturday"]\nstart = "1:00"\nend = "2:00"\n',
     "maintenance[#1].start: expected a date-time (2025-06-01T22:00:00Z, or without an offset "
     'in `timezone`) or a time of day ("02:00")'),
    (targets("a") + '\n[[maintenance]]\ntargets = ["b"]\ngroups = ["web"]\nstart = "01:00"\nend = "02:00"\n',
     "maintenance[#1].targets: no target named 'b'"),
    (targets("a") + '\n[[maintenance]]\nstart = 07:32:00-05:00\nend = "02:00"\n',
     "TOML"),
    ('[settings]\nmaintenance_uptime = "exclud"\n' + targets("a"),
     "settings.maintenance_uptime: expected one of 'exclude', 'include', got 'exclud'"),
])
def test_problems_are_named(text: str, expected: str, tmp_path: Path):
    found = problems(text, tmp_path)
    assert any(p.startswith(expected) for p in found), found


def test_unknown_weekday_and_group_are_both_named(tmp_path: Path):
    found = problems(targets("a", extra='group = "web"\n') +
                     '\n[[maintenance]]\nweekdays = ["caturday"]\nstart = "01:00"\nend = "02:00"\n'
                     '\n[[maintenance]]\ngroups = ["wbe"]\nstart = "01:00"\nend = "02:00"\n',
                     tmp_path)
    assert found == ["maintenance[#1].weekdays: unknown weekday 'caturday' (mon, tue, ... sun, "
                     'or a range such as "mon-fri")',
                     "maintenance[#2].groups: no target is in group 'wbe' (did you mean 'web'?)"]


def test_a_long_dependency_chain_and_its_cycle(tmp_path: Path):
    text = "".join(targets(f"t{i}", extra=f'depends_on = ["t{i + 1}"]\n') for i in range(2000))
    found = problems(text + targets("t2000", extra='depends_on = ["t0"]\n'), tmp_path)
    assert len(found) == 1 and found[0].startswith("targets[t0].depends_on: dependency cycle: "
                                                    "t0 -> t1 -> t2 -> ")


ALERT_OPTIONS = sorted({*option_names(ChannelCommon), *option_names(MaintenanceKeys),
                        *(k for cls, _ in CHANNEL_KINDS.values() for k in option_names(cls)),
                        "alerts", "depends_on"})


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = ALERTING.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "option", "insert", "delete"]))
        value = draw(st.sampled_from(VALUES + ['"mon-sun"', '"25:00"', '"Mars/Base"', '["x"]',
                                               '["gateway"]', '["api"]']))
        if op == "value" and "=" in lines[at]:
            lines[at] = lines[at][:lines[at].index("=") + 1] + " " + value
        elif op == "option":
            lines.insert(at + 1, f"{draw(st.sampled_from(ALERT_OPTIONS))} = {value}")
        elif op == "insert":
            fragment = draw(st.sampled_from(FRAGMENTS)).decode("latin-1")
            lines[at] = lines[at] + fragment
        else:
            del lines[at]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=mutated())
def test_any_mutated_alerting_config_loads_or_names_a_line(config_file: Path, data: bytes):
    config_file.write_bytes(data)
    assert_contract(config_file)


def test_conftest_config_helper_has_no_alerts_by_default():
    assert config(targets("a")).alerts == ()
