"""The alert policy driven by the engine's own Tracker and a test clock:
thresholds, recovery with its duration, reminders, degraded, certificates,
dependencies, maintenance windows, and restarts (snapshot and restore)."""

from __future__ import annotations

import json

from monitor.alerts.policy import Decision, Held, Policy
from tests.alerts.conftest import Feed, FakeClock, config, targets

ONE_CHANNEL = """
[[alerts]]
name = "ops"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def sent(out: list) -> list[tuple[str, str, str]]:
    """(channel, event, target) of each decision to send."""
    return [(d.channel.name, d.alert.event, d.alert.name) for d in out if isinstance(d, Decision)]


def held(out: list) -> list[str]:
    return [h.why for h in out if isinstance(h, Held)]


def setup(text: str, clock: FakeClock | None = None) -> tuple[Policy, Feed, FakeClock]:
    clock = clock or FakeClock()
    cfg = config(text)
    policy = Policy(cfg, clock)
    return policy, Feed(cfg, policy, clock), clock


def test_down_only_after_the_failure_threshold_and_once():
    policy, feed, clock = setup(targets("api", threshold=3) + ONE_CHANNEL)
    assert feed("api", "up") == []
    assert feed("api", "down", "connection refused") == []
    assert feed("api", "down", "connection refused") == []
    out = feed("api", "down", "connection refused")
    assert sent(out) == [("ops", "down", "api")]
    alert = out[0].alert
    assert alert.previous_state == "up" and alert.reason == "connection refused"
    assert alert.summary() == "DOWN api (127.0.0.1:9): connection refused \u2014 since 10:00 UTC"
    for _ in range(5):   # still down: nothing more without `repeat`
        clock.advance(60)
        assert sent(feed("api", "down", "connection refused") + policy.tick()) == []


def test_recovery_says_how_long_the_outage_lasted():
    policy, feed, clock = setup(targets("api", threshold=1) + ONE_CHANNEL)
    feed("api", "up")
    assert sent(feed("api", "down", "refused")) == [("ops", "down", "api")]
    clock.advance(725)
    out = feed("api", "up")
    assert sent(out) == [("ops", "up", "api")]
    recovery = out[0].alert
    assert recovery.duration_s == 725
    assert recovery.summary() == "UP api (127.0.0.1:9): back after 12m5s"
    assert recovery.payload()["since"] == "2025-06-02T10:00:00.000Z"


def test_a_recovery_nobody_was_told_about_is_not_sent():
    policy, feed, _ = setup(targets("api", threshold=1) + ONE_CHANNEL.replace(
        'kind = "webhook"', 'kind = "webhook"\non = ["up"]'))
    feed("api", "up")
    assert sent(feed("api", "down", "refused")) == []
    assert sent(feed("api", "up")) == []


def test_reminders_every_repeat_while_down_then_stop():
    policy, feed, clock = setup(targets("api", threshold=1) + ONE_CHANNEL + 'repeat = "10m"\n')
    feed("api", "up")
    feed("api", "down", "refused")
    reminders = []
    for _ in range(35):   # 35 minutes, a tick a minute
        clock.advance(60)
        reminders += policy.tick()
    assert sent(reminders) == [("ops", "reminder", "api")] * 3
    assert [r.alert.summary() for r in reminders][0] == \
        "STILL DOWN api (127.0.0.1:9): refused \u2014 down 10m, since 10:00 UTC"
    assert len({r.alert.id for r in reminders}) == 3
    feed("api", "up")
    clock.advance(3600)
    assert policy.tick() == []


def test_degraded_only_for_channels_that_ask():
    text = targets("api", threshold=1) + ONE_CHANNEL + """
[[alerts]]
name = "picky"
kind = "webhook"
url = "http://127.0.0.1:9/picky"
on = ["down", "up", "degraded"]
"""
    policy, feed, clock = setup(text)
    feed("api", "up")
    assert sent(feed("api", "degraded", "slow: 300ms > max 250ms")) == [("picky", "degraded", "api")]
    # worse: both hear DOWN; the degraded episode's start is kept
    clock.advance(30)
    out = feed("api", "down", "refused")
    assert sorted(sent(out)) == [("ops", "down", "api"), ("picky", "down", "api")]
    since = {d.channel.name: d.alert.since.strftime("%H:%M:%S") for d in out}
    assert since == {"picky": "10:00:00", "ops": "10:00:30"}
    # better but not well: "ops" (no degraded) hears the outage ended, "picky" hears degraded
    clock.advance(30)
    out = feed("api", "degraded", "slow")
    assert sorted(sent(out)) == [("ops", "up", "api"), ("picky", "degraded", "api")]
    ops = next(d.alert for d in out if d.channel.name == "ops")
    assert ops.summary().startswith("NO LONGER DOWN api (127.0.0.1:9): back after 30s; now degraded")
    assert sent(feed("api", "up")) == [("picky", "up", "api")]


def test_certificate_days_told_once_per_certificate():
    text = targets("api", threshold=1) + ONE_CHANNEL + "cert_days = 14\n"
    policy, feed, clock = setup(text)
    assert sent(feed("api", "up", cert_days=30)) == []
    out = feed("api", "up", cert_days=13.5)
    assert sent(out) == [("ops", "cert", "api")]
    assert out[0].alert.summary().startswith("CERT api (127.0.0.1:9): certificate expires in 13.5 days")
    clock.advance(3600)
    assert sent(feed("api", "up", cert_days=13.5 - 1 / 24)) == []   # the same certificate
    assert sent(feed("api", "up", cert_days=90)) == []            # renewed
    assert sent(feed("api", "up", cert_days=10)) == [("ops", "cert", "api")]   # and short again


def test_children_of_a_down_parent_are_held_as_unreachable():
    text = targets("gateway", threshold=1, interval="5m") + targets(
        "api", "db", threshold=1, interval="5m", extra='depends_on = ["gateway"]\n') + ONE_CHANNEL
    policy, feed, clock = setup(text)
    for name in ("gateway", "api", "db"):
        feed(name, "up")
    out = feed("gateway", "down", "timeout")
    out += feed("api", "down", "timeout") + feed("db", "down", "timeout")
    assert sent(out) == [("ops", "down", "gateway")]
    assert held(out) == ["unreachable via gateway"] * 2
    assert policy.unreachable_via("api") == "gateway"
    clock.advance(60)
    assert sent(policy.tick() + feed("api", "down", "timeout")) == []   # held, and said once
    # the gateway comes back; api with it, db does not: db alerts now, api never did
    clock.advance(60)
    out = feed("gateway", "up") + feed("api", "up") + feed("db", "down", "timeout")
    assert sent(out) == [("ops", "up", "gateway"), ("ops", "down", "db")]
    assert policy.unreachable_via("db") is None


def test_a_child_waits_for_its_parents_verdict_on_the_same_moment():
    """The child's probe failed first; the gateway's probe of that moment has
    not come yet: the child holds until it does (or its interval passes)."""
    text = targets("gateway", threshold=1) + targets(
        "api", threshold=1, extra='depends_on = ["gateway"]\n') + ONE_CHANNEL
    policy, feed, clock = setup(text)
    feed("gateway", "up")
    feed("api", "up")
    clock.advance(5)
    out = feed("api", "down", "timeout")
    assert sent(out) == [] and held(out) == ["unreachable via gateway"]
    clock.advance(2)
    out = feed("gateway", "down", "timeout")
    assert sent(out) == [("ops", "down", "gateway")]
    assert sent(policy.tick()) == []   # one outage, one alert
    # Another time the gateway answers: the child's own outage is told
    clock.advance(60)
    feed("gateway", "up")
    feed("api", "up")
    clock.advance(5)
    assert sent(feed("api", "down", "timeout")) == []
    clock.advance(1)
    assert sent(feed("gateway", "up")) == [("ops", "down", "api")]


def test_a_silent_parent_holds_its_child_only_for_one_interval():
    text = targets("gateway", threshold=1, interval="10s") + targets(
        "api", threshold=1, extra='depends_on = ["gateway"]\n') + ONE_CHANNEL
    policy, feed, clock = setup(text)
    feed("gateway", "up")
    feed("api", "up")
    clock.advance(1)
    assert sent(feed("api", "down", "timeout")) == []
    clock.advance(5)
    assert sent(policy.tick()) == []
    clock.advance(10)   # past the gateway's interval + timeout: it was not the gateway
    assert sent(policy.tick()) == [("ops", "down", "api")]


MAINTENANCE = """
[[maintenance]]
name = "deploy"
targets = ["api"]
start = 2025-06-02T10:30:00Z
end = 2025-06-02T11:00:00Z
"""


def test_nothing_alerts_in_a_window_and_a_target_still_down_after_it_does():
    policy, feed, clock = setup(targets("api", "web", threshold=1) + ONE_CHANNEL + MAINTENANCE)
    feed("api", "up")
    feed("web", "up")
    clock.advance(35 * 60)   # 10:35, inside the window
    assert policy.calendar.in_maintenance("api", clock.now).describe() == "deploy until 11:00 UTC"
    assert policy.calendar.in_maintenance("web", clock.now) is None
    out = feed("api", "down", "503")
    assert sent(out) == [] and held(out) == ["in maintenance: deploy until 11:00 UTC"]
    assert sent(feed("web", "down", "503")) == [("ops", "down", "web")]   # not in the window
    clock.advance(20 * 60)
    assert sent(policy.tick()) == []
    clock.advance(6 * 60)    # 11:01: the window is over and api is still down
    out = policy.tick()
    assert sent(out) == [("ops", "down", "api")]
    assert out[0].alert.since.strftime("%H:%M") == "10:35"


def test_down_and_up_inside_a_window_tell_nobody():
    policy, feed, clock = setup(targets("api", threshold=1) + ONE_CHANNEL + MAINTENANCE)
    feed("api", "up")
    clock.advance(31 * 60)
    assert sent(feed("api", "down", "503")) == []
    clock.advance(60)
    assert sent(feed("api", "up")) == []
    clock.advance(3600)
    assert sent(policy.tick()) == []


def test_a_recovery_inside_a_window_closes_what_was_sent_before_it():
    policy, feed, clock = setup(targets("api", threshold=1) + ONE_CHANNEL + MAINTENANCE)
    feed("api", "up")
    clock.advance(60)
    assert sent(feed("api", "down", "503")) == [("ops", "down", "api")]
    clock.advance(35 * 60)   # 10:36: in the window
    assert sent(feed("api", "up")) == [("ops", "up", "api")]


def test_a_restart_during_an_outage_sends_no_second_down():
    text = targets("api", threshold=1) + ONE_CHANNEL + 'repeat = "30m"\n'
    policy, feed, clock = setup(text)
    feed("api", "up")
    assert sent(feed("api", "down", "refused")) == [("ops", "down", "api")]
    saved = json.loads(json.dumps(policy.snapshot()))   # as the state file keeps it
    clock.advance(20 * 60)
    again, feed2, _ = setup(text, clock)   # a new process: the engine starts PENDING
    again.restore(saved)
    assert sent(feed2("api", "down", "refused")) == []
    clock.advance(9 * 60)
    assert sent(again.tick()) == []
    clock.advance(60)        # 30 minutes after the DOWN, across the restart
    assert sent(again.tick()) == [("ops", "reminder", "api")]
    out = feed2("api", "up")
    assert sent(out) == [("ops", "up", "api")]
    assert out[0].alert.duration_s == 30 * 60


def test_a_recovery_while_stopped_is_sent_once():
    text = targets("api", threshold=1) + ONE_CHANNEL
    policy, feed, clock = setup(text)
    feed("api", "up")
    feed("api", "down", "refused")
    saved = policy.snapshot()
    clock.advance(3600)
    again, feed2, _ = setup(text, clock)
    again.restore(saved)
    out = feed2("api", "up")
    assert sent(out) == [("ops", "up", "api")]
    assert out[0].alert.note == "found up after the monitor restarted"
    assert out[0].alert.duration_s == 3600
    third, feed3, _ = setup(text, clock)   # and the next restart has nothing left to send
    third.restore(again.snapshot())
    assert sent(feed3("api", "up")) == []


def test_a_damaged_snapshot_is_skipped_not_fatal():
    policy, feed, _ = setup(targets("api", threshold=1) + ONE_CHANNEL)
    policy.restore({"version": 1, "targets": {"api": {"open": {"ops": {"since": 3}}},
                                              "gone": {}, "x": "y"}})
    policy.restore({"version": 99})
    policy.restore([])   # type: ignore[arg-type]
    feed("api", "up")
    assert sent(feed("api", "down", "refused")) == [("ops", "down", "api")]


def test_routing_default_channels_and_opting_out():
    text = targets("a", threshold=1) + targets("b", threshold=1, extra="alerts = []\n") + \
        targets("c", threshold=1, extra='alerts = ["pager"]\n') + ONE_CHANNEL + """
[[alerts]]
name = "pager"
kind = "bell"
"""
    policy, feed, _ = setup(text)
    out = []
    for name in "abc":
        feed(name, "up")
        out += feed(name, "down", "x")
    assert sent(out) == [("ops", "down", "a"), ("pager", "down", "a"), ("pager", "down", "c")]
    policy, feed, _ = setup('[settings]\nalerts = ["ops"]\n' + text)
    feed("a", "up")
    assert sent(feed("a", "down", "x")) == [("ops", "down", "a")]


def test_secrets_stay_out_of_alerts():
    cfg = config(targets("api", threshold=1).replace('host = "127.0.0.1"', 'host = "${HOST}"')
                 + ONE_CHANNEL, {"HOST": "127.0.0.1"})
    clock = FakeClock()
    policy = Policy(cfg, clock)
    feed = Feed(cfg, policy, clock)
    feed("api", "up")
    out = feed("api", "down", "cannot reach 127.0.0.1")
    text = json.dumps(out[0].alert.payload())
    assert "127.0.0.1" not in text and "${HOST}" in text
