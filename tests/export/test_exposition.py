"""The per-target text: blackbox_exporter's names, bounded labels, a valid
exposition (read back by prometheus-client's parser), re-rendered only
where figures changed."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from monitor.engine.result import Status
from monitor.engine.state import State, Transition
from monitor.export.exposition import (FAMILIES, escape, label_text, number, render_phase_histogram,
                                       render_targets)
from monitor.export.series import PhaseHistogram, SinceStart, TargetSeries
from tests.export.helpers import one, parse, pick, result


def series(name: str = "api", kind: str = "http", group: str = "web", window: int = 10,
           state: State = State.PENDING) -> TargetSeries:
    labels = label_text((("target", name), ("kind", kind), ("group", group)))
    return TargetSeries(name, kind, labels, state, 0.0, 1000.0, window)


def move(target: TargetSeries, to: State, at: float) -> None:
    target.move(Transition(target.name, target.state, to, None, datetime.now(UTC), at, None))


def render(*targets: TargetSeries, now: float = 100.0):
    return parse("".join(render_targets(list(targets), SinceStart(), now)))


def test_an_up_http_target_in_blackbox_names():
    api = series()
    move(api, State.UP, 10.0)
    api.observe(result(cert_days=30))
    got = render(api, now=20.0)
    labels = {"target": "api", "kind": "http", "group": "web"}
    assert one(got, "probe_success", **labels) == 1
    assert one(got, "probe_duration_seconds", **labels) == 0.0125
    assert one(got, "probe_dns_lookup_time_seconds", **labels) == 0.001
    phases = {dict(key)["phase"]: value
              for key, value in pick(got, "probe_http_duration_seconds", **labels).items()}
    assert phases == {"resolve": 0.001, "connect": 0.002, "tls": 0.003, "processing": 0.005,
                      "transfer": 0.0015}
    assert one(got, "probe_http_status_code", **labels) == 200
    expiry = one(got, "probe_ssl_earliest_cert_expiry", **labels)
    assert abs(expiry - (api.last.checked_at.timestamp() + 30 * 86400)) < 1
    assert one(got, "monitor_state", state="up", **labels) == 1
    assert one(got, "monitor_uptime_ratio", window="since_start", **labels) == 1.0
    assert one(got, "monitor_probes_total", **labels) == 1
    assert one(got, "monitor_probe_failures_total", **labels) == 0
    assert one(got, "monitor_consecutive_failures", **labels) == 0
    assert one(got, "monitor_loss_ratio", **labels) == 0.0
    assert one(got, "monitor_probe_latency_seconds_count", **labels) == 1


def test_a_down_target_and_its_counts():
    api = series(window=4)
    move(api, State.UP, 0.0)
    for status in (Status.UP, Status.UP, Status.DOWN, Status.DOWN, Status.DOWN):
        api.observe(result(status=status, latency_ms=None if status is Status.DOWN else 10.0,
                           http_status=None if status is Status.DOWN else 200,
                           phases={"connect": 1.0}))
    move(api, State.DOWN, 75.0)
    got = render(api, now=100.0)
    assert one(got, "probe_success") == 0
    assert not pick(got, "probe_duration_seconds")      # nothing answered: no latency
    assert one(got, "probe_http_status_code") == 0
    assert one(got, "probe_http_duration_seconds", phase="connect") == 0.001
    assert not pick(got, "probe_http_duration_seconds", phase="tls")   # did not run
    assert one(got, "monitor_state", state="down") == 1
    assert len(pick(got, "monitor_state")) == 1         # one series per target
    assert one(got, "monitor_consecutive_failures") == 3
    assert one(got, "monitor_loss_ratio") == 0.75       # 3 of the last 4
    assert one(got, "monitor_probes_total") == 5
    assert one(got, "monitor_probe_failures_total") == 3
    assert one(got, "monitor_uptime_ratio") == 0.75     # 75 s up, 25 s down
    assert one(got, "monitor_probe_latency_seconds_sum") == 0.02


def test_degraded_still_answers_and_icmp_and_tcp_have_their_own_series():
    slow = series("slow")
    slow.observe(result("slow", status=Status.DEGRADED, reason="slow: 900ms > max 800ms"))
    ping = series("ping", kind="icmp")
    ping.observe(result("ping", kind="icmp", latency_ms=0.05, phases={"dns": 0.2},
                        http_status=None))
    db = series("db", kind="tcp")
    db.observe(result("db", kind="tcp", phases={"connect": 0.3}, http_status=None))
    got = render(slow, ping, db)
    assert one(got, "probe_success", target="slow") == 1
    assert one(got, "probe_icmp_duration_seconds", target="ping", phase="rtt") == 0.00005
    assert one(got, "probe_icmp_duration_seconds", target="ping", phase="resolve") == 0.0002
    assert not pick(got, "probe_http_duration_seconds", target="ping")
    assert not pick(got, "probe_http_status_code", target="db")
    assert not pick(got, "probe_dns_lookup_time_seconds", target="db")   # an address: no lookup


def test_paused_or_pending_targets_have_no_probe_series_but_keep_their_state_and_counts():
    api = series()
    move(api, State.UP, 0.0)
    api.observe(result(status=Status.DOWN, latency_ms=None))
    move(api, State.PAUSED, 10.0)
    api.observe(result())    # in flight when it was paused: counted, not shown as the last
    got = render(api)
    assert not [key for key in got if key[0].startswith("probe_")]
    assert one(got, "monitor_state", state="paused") == 1
    assert one(got, "monitor_probes_total") == 2
    fresh = render(series("new"))
    assert one(fresh, "monitor_state", state="pending") == 1
    assert not pick(fresh, "monitor_uptime_ratio")     # no known time yet: no ratio
    assert not pick(fresh, "monitor_loss_ratio")


def test_no_reason_url_or_other_free_text_becomes_a_label():
    api = series()
    api.observe(result(status=Status.DOWN, reason="expected 2xx, got 503 Service Unavailable"))
    text = "".join(render_targets([api], SinceStart(), 1.0))
    assert "503 Service" not in text and "example.org" not in text
    label_names = {name for key in parse(text) for name, _ in key[1]}
    assert {"target", "kind", "state"} <= label_names <= {"target", "kind", "group", "phase", "state",
                                                         "window"}


def test_odd_names_are_escaped_and_read_back_whole():
    odd = 'say "hi" \\ to ünïcode ⚡'
    weird = series(odd, group='a"b')
    weird.observe(result(odd))
    got = render(weird)
    assert one(got, "probe_success", target=odd, group='a"b') == 1
    assert escape("a\nb") == "a\\nb"


def test_only_changed_targets_are_rendered_again():
    a, b = series("a"), series("b")
    render_targets([a, b], SinceStart(), 1.0)
    cached_a, cached_b = a.cache, b.cache
    a.observe(result("a"))
    text = "".join(render_targets([a, b], SinceStart(), 1.0))
    assert b.cache is cached_b and a.cache is not cached_a
    assert one(parse(text), "monitor_probes_total", target="a") == 1
    # every family's header once, in the order of FAMILIES
    headers = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert headers[:len(FAMILIES)] == [family.name for family in FAMILIES]


def test_phase_histogram_is_per_kind_and_phase_not_per_target():
    histogram = PhaseHistogram()
    for name in ("a", "b", "c"):
        histogram.observe(result(name, phases={"connect": 0.3, "ttfb": 40.0}))
    got = parse(render_phase_histogram(histogram, 'location="paris"'))
    connect = pick(got, "monitor_phase_duration_seconds_bucket", kind="http", phase="connect")
    by_edge = {dict(key)["le"]: value for key, value in connect.items()}
    assert by_edge["0.0005"] == 3 and by_edge["+Inf"] == 3
    ttfb = pick(got, "monitor_phase_duration_seconds_bucket", phase="ttfb")
    assert {dict(k)["le"]: v for k, v in ttfb.items()}["0.025"] == 0
    assert one(got, "monitor_phase_duration_seconds_count", phase="ttfb",
               location="paris") == 3
    assert math.isclose(one(got, "monitor_phase_duration_seconds_sum", phase="ttfb"), 0.12)
    assert not [key for key in got if ("target", "a") in key[1]]


def test_numbers_in_the_format():
    assert number(0.5) == "0.5" and number(3) == "3.0"
    assert (number(math.inf), number(-math.inf), number(math.nan)) == ("+Inf", "-Inf", "NaN")
