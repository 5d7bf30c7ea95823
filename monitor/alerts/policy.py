"""Who is told what, and when: the alerting decisions, with no I/O.

The engine's tracker already applies the failure threshold (DOWN needs that
many consecutive failures) and the success threshold; this policy turns its
confirmed states into alerts, per channel:

- a channel opens an *episode* when its target goes DOWN (or DEGRADED, for a
  channel whose `on` names it) and sends it; the episode's end (UP, or out of
  DOWN into a state the channel does not follow) sends the recovery with the
  outage's duration, to channels whose `on` has "up";
- `repeat` reminds while an episode stays DOWN;
- `cert_days` sends once per certificate when it has fewer days left;
- nothing opens, escalates or reminds while the target is in a maintenance
  window or unreachable via a `depends_on` parent that is DOWN (or failing
  and not yet confirmed). A target held back that way is looked at again on
  every tick and result, so one still down when the window ends, or whose
  parent came back while it did not, alerts then: one outage, one alert.
  Recoveries are always sent: they close something a person was told.

Episodes survive restarts through `snapshot()`/`restore()`: a target DOWN
before and after a restart is one episode (no second DOWN), and one found UP
after a restart sends its recovery once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.alerts.maintenance import Calendar
from monitor.alerts.message import Alert
from monitor.config.alerting import AlertChannel
from monitor.config.model import Config, Target
from monitor.engine.result import ProbeResult, Status, iso
from monitor.engine.state import State, Transition
from monitor.probes.text import shown

STATE_VERSION = 1
HOLD_SLACK = 1.0   # seconds beyond a parent's interval + timeout to wait for its verdict


@dataclass
class Clock:
    """Injectable clocks: wall (aware UTC) for what people read and what is
    persisted, monotonic for durations within a run."""
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = field(default=time.monotonic)


@dataclass(frozen=True, slots=True)
class Decision:
    """Send `alert` to `channel`."""
    channel: AlertChannel
    alert: Alert


@dataclass(frozen=True, slots=True)
class Held:
    """An alert not sent (yet), and why: for the event log."""
    name: str
    event: str
    why: str
    at: datetime

    def text(self) -> str:
        return f"alert held: {self.event.upper()} {self.name}: {self.why}"


@dataclass
class Episode:
    """An alert a channel was sent and that is not yet closed."""
    event: str                    # "down" | "degraded"
    since: datetime               # when the bad state began (wall)
    since_mono: float | None      # same, on this run's monotonic clock (None: a previous run)
    last_sent: datetime
    last_sent_mono: float
    sent: int = 1                 # alerts sent in this episode (first + reminders)


@dataclass
class Watch:
    """What the policy knows of one target."""
    state: State = State.PENDING
    previous: State | None = None
    since: datetime | None = None
    since_mono: float | None = None
    reason: str | None = None
    open: dict[str, Episode] = field(default_factory=dict)      # channel -> episode
    cert_told: dict[str, str] = field(default_factory=dict)     # channel -> expiry it was told of
    last: ProbeResult | None = None
    last_mono: float | None = None
    held: str | None = None       # the reason last reported as held, so it is told once


class Policy:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.watches: dict[str, Watch] = {}
        self.waiting: set[str] = set()     # held back: looked at again on tick and result
        self.with_open: set[str] = set()   # targets with an open episode (for reminders)
        self.started_mono = self.clock.monotonic()
        self.reconfigure(config)

    # -- configuration --------------------------------------------------------

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.targets: dict[str, Target] = {t.name: t for t in config.targets}
        self.channels = {c.name: c for c in config.alerts}
        default = config.settings.alerts
        self.routes: dict[str, tuple[AlertChannel, ...]] = {}
        for target in config.targets:
            names = target.alerts if target.alerts is not None else (
                default if default is not None else tuple(self.channels))
            self.routes[target.name] = tuple(self.channels[n] for n in names if n in self.channels)
        self.calendar = Calendar.of(config)
        self.children: dict[str, list[str]] = {}
        for target in config.targets:
            for parent in target.depends_on:
                self.children.setdefault(parent, []).append(target.name)
        self.cert_targets = {name for name, chans in self.routes.items()
                             if any(c.cert_days for c in chans)}
        for name in list(self.watches):
            if name not in self.targets:
                del self.watches[name]
                self.waiting.discard(name)
                self.with_open.discard(name)
            else:
                routed = {c.name for c in self.routes[name]}
                watch = self.watches[name]
                watch.open = {c: e for c, e in watch.open.items() if c in routed}
                watch.cert_told = {c: e for c, e in watch.cert_told.items() if c in routed}
                (self.with_open.add if watch.open else self.with_open.discard)(name)
                self.waiting.add(name)   # routing may have changed what it should have

    def watch(self, name: str) -> Watch:
        found = self.watches.get(name)
        if found is None:
            found = self.watches[name] = Watch()
        return found

    # -- events ---------------------------------------------------------------

    def on_result(self, result: ProbeResult) -> list[Decision | Held]:
        name = result.name
        if name not in self.targets:
            return []
        watch = self.watch(name)
        watch.last, watch.last_mono = result, self.clock.monotonic()
        out: list[Decision | Held] = []
        if result.cert is not None and name in self.cert_targets:
            out += self._certificate(name, watch, result)
        if name in self.waiting:
            out += self._reconcile(name)
        children = self.children.get(name)
        if children is not None:   # its verdict may be what a child waits for
            for child in children:
                if child in self.waiting:
                    out += self._reconcile(child)
        return out

    def on_transition(self, transition: Transition) -> list[Decision | Held]:
        name = transition.name
        if name not in self.targets:
            return []
        watch = self.watch(name)
        watch.previous, watch.state = transition.from_state, transition.to_state
        watch.reason = transition.reason
        # an episode already open keeps its own start (degraded, then down, is one)
        watch.since, watch.since_mono = transition.at, self.clock.monotonic()
        watch.held = None
        out = self._reconcile(name, transition)
        for child in self.children.get(name, ()):
            if child in self.waiting:
                out += self._reconcile(child)
        return out

    def tick(self) -> list[Decision | Held]:
        """Reminders that are due, and targets held back that may go now."""
        out: list[Decision | Held] = []
        for name in list(self.waiting):
            out += self._reconcile(name)
        now = self.clock.monotonic()
        for name in list(self.with_open):
            watch = self.watches[name]
            if watch.state is not State.DOWN:
                continue
            for channel_name, episode in watch.open.items():
                channel = self.channels.get(channel_name)
                if channel is None or not channel.repeat or episode.event != "down" or \
                        now - episode.last_sent_mono < channel.repeat:
                    continue
                why = self.held_by(name)
                if why is not None:
                    continue
                episode.sent += 1
                episode.last_sent, episode.last_sent_mono = self.clock.wall(), now
                out.append(Decision(channel, self._alert("reminder", name, watch, episode.since,
                                                         seq=episode.sent)))
        return out

    # -- what holds an alert back ---------------------------------------------

    def held_by(self, name: str) -> str | None:
        """Why `name` may not alert now: a maintenance window, or a parent."""
        active = self.calendar.in_maintenance(name, self.clock.wall()) if self.calendar else None
        if active is not None:
            return f"in maintenance: {active.describe()}"
        parent = self.unreachable_via(name)
        if parent is not None:
            return f"unreachable via {parent}"
        return None

    def unreachable_via(self, name: str) -> str | None:
        """The parent `name` depends on that is DOWN or failing, or whose verdict
        since `name` went bad has not come yet (the dashboard shows the target
        as "unreachable via <parent>")."""
        target = self.targets.get(name)
        if target is None or not target.depends_on:
            return None
        mine = self.watches.get(name)
        bad_since = mine.since_mono if mine is not None else None
        now = self.clock.monotonic()
        for parent in target.depends_on:
            watch = self.watches.get(parent)
            spec = self.targets.get(parent)
            if watch is None or watch.last_mono is None:
                # no verdict from it yet in this run (its first probe may be an interval away)
                if spec is not None and bad_since is not None and \
                        now < self.started_mono + spec.interval + spec.timeout + HOLD_SLACK:
                    return parent
                continue
            if watch.state is State.DOWN or (watch.last is not None
                                             and watch.last.status is Status.DOWN):
                return parent
            if bad_since is not None and spec is not None and watch.last_mono < bad_since and \
                    now < watch.last_mono + spec.interval + spec.timeout + HOLD_SLACK:
                return parent   # its verdict on the same moment is still to come
        return None

    def _stale(self, name: str, watch: Watch) -> bool:
        """A parent changed state after this target's last answer: wait (an
        interval at most) for its next one before telling of it."""
        target = self.targets[name]
        if not target.depends_on or watch.last_mono is None:
            return False
        changed = max((self.watches[p].since_mono or 0.0 for p in target.depends_on
                       if p in self.watches), default=0.0)
        return watch.last_mono < changed and \
            self.clock.monotonic() < watch.last_mono + target.interval + target.timeout + HOLD_SLACK

    # -- decisions ------------------------------------------------------------

    def _reconcile(self, name: str, transition: Transition | None = None) -> list[Decision | Held]:
        self.waiting.discard(name)
        watch = self.watches.get(name)
        if watch is None or watch.state in (State.PENDING, State.PAUSED):
            return []   # nothing confirmed: episodes stay as they are
        out: list[Decision | Held] = []
        why: str | None = None
        checked = False
        for channel in self.routes.get(name, ()):
            episode = watch.open.get(channel.name)
            want = _wanted(watch.state, channel)
            if episode is not None and episode.event == want:
                continue
            if want is not None:
                if transition is None and (not _still(watch, want) or self._stale(name, watch)):
                    # held back, and its latest answer is better: its transition
                    # (or a success threshold) decides next, not a stale state
                    self.waiting.add(name)
                    continue
                if not checked:
                    why, checked = self.held_by(name), True
                if why is not None:
                    self.waiting.add(name)
                    if watch.held != why:
                        watch.held = why
                        out.append(Held(name, want, why, self.clock.wall()))
                    continue
            if episode is not None:
                del watch.open[channel.name]
                if want is None and "up" in channel.on:
                    out.append(Decision(channel, self._recovery(name, watch, episode, transition)))
            if want is not None:
                since, since_mono = watch.since or self.clock.wall(), watch.since_mono
                if episode is not None:   # escalation within one bad episode keeps its start
                    since, since_mono = episode.since, episode.since_mono
                watch.open[channel.name] = Episode(want, since, since_mono,
                                                   self.clock.wall(), self.clock.monotonic())
                out.append(Decision(channel, self._alert(want, name, watch, since, seq=1,
                                                         previous=watch.previous)))
        if watch.open:
            self.with_open.add(name)
        else:
            self.with_open.discard(name)
        return out

    def _recovery(self, name: str, watch: Watch, episode: Episode,
                  transition: Transition | None) -> Alert:
        if episode.since_mono is not None:
            duration = self.clock.monotonic() - episode.since_mono
        else:   # the outage began in an earlier run: only the wall clock spans both
            duration = (self.clock.wall() - episode.since).total_seconds()
        note = None
        if transition is not None and transition.from_state is State.PENDING and \
                episode.since_mono is None:
            note = "found up after the monitor restarted"
        return self._alert("up", name, watch, episode.since, seq=episode.sent + 1,
                           previous=episode.event, duration=duration, note=note)

    def _certificate(self, name: str, watch: Watch, result: ProbeResult) -> list[Decision | Held]:
        days = result.cert_days_left
        assert result.cert is not None and days is not None
        expires = iso(result.cert.expires_at) or ""
        out: list[Decision | Held] = []
        for channel in self.routes[name]:
            if not channel.cert_days:
                continue
            if days >= channel.cert_days:
                watch.cert_told.pop(channel.name, None)   # renewed: a later shortfall is news
                continue
            if watch.cert_told.get(channel.name) == expires:
                continue
            why = self.calendar.in_maintenance(name, self.clock.wall()) if self.calendar else None
            if why is not None:
                continue   # told on a result after the window
            watch.cert_told[channel.name] = expires
            out.append(Decision(channel, self._alert("cert", name, watch, None, seq=1,
                                                     key=expires)))
        return out

    def _alert(self, event: str, name: str, watch: Watch, since: datetime | None, *, seq: int,
               previous: str | None = None, duration: float | None = None,
               note: str | None = None, key: str | None = None) -> Alert:
        target = self.targets[name]
        secrets = self.config.secrets
        last = watch.last
        now = self.clock.wall()
        if event == "reminder" and since is not None:
            duration = (now - since).total_seconds()
        reason = shown(watch.reason, secrets) if watch.reason else None
        if event == "cert":
            reason = None
        return Alert(
            event=event, name=name, kind=target.kind, target=target.display_target,
            group=target.group, state=str(watch.state),
            previous_state=str(previous) if previous is not None else None, reason=reason,
            since=since, at=now, duration_s=duration,
            latency_ms=last.latency_ms if last else None,
            phases_ms=dict(last.phases_ms) if last else {},
            http_status=last.http_status if last else None,
            cert_days_left=last.cert_days_left if last else None,
            cert_expires_at=last.cert.expires_at if last and last.cert else None,
            note=note, id=f"{name}/{key or iso(since) or '-'}/{event}/{seq}")

    # -- persistence ----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart: open episodes and certificates told."""
        targets: dict[str, Any] = {}
        for name, watch in self.watches.items():
            if not watch.open and not watch.cert_told:
                continue
            targets[name] = {
                "state": str(watch.state), "since": iso(watch.since),
                "open": {c: {"event": e.event, "since": iso(e.since),
                             "last_sent": iso(e.last_sent), "sent": e.sent}
                         for c, e in watch.open.items()},
                "cert_told": dict(watch.cert_told),
            }
        return {"version": STATE_VERSION, "targets": targets}

    def restore(self, data: dict[str, Any]) -> None:
        """Take back a snapshot from an earlier run; anything unreadable in
        it is skipped (the state file is a cache of what was sent, not config)."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return
        now, now_mono = self.clock.wall(), self.clock.monotonic()
        for name, item in (data.get("targets") or {}).items():
            if name not in self.targets or not isinstance(item, dict):
                continue
            # the engine starts every target PENDING: what was open waits for its verdict
            watch = self.watch(name)
            try:
                for channel, raw in (item.get("open") or {}).items():
                    last = _when(raw["last_sent"]) or now
                    watch.open[channel] = Episode(
                        raw["event"], _when(raw["since"]) or now, None, last,
                        now_mono - max(0.0, (now - last).total_seconds()), int(raw.get("sent", 1)))
                watch.cert_told = {str(k): str(v) for k, v in
                                   (item.get("cert_told") or {}).items()}
            except (KeyError, TypeError, ValueError):
                self.watches.pop(name, None)
        self.reconfigure(self.config)


def _wanted(state: State, channel: AlertChannel) -> str | None:
    if state is State.DOWN and "down" in channel.on:
        return "down"
    if state is State.DEGRADED and "degraded" in channel.on:
        return "degraded"
    return None


def _still(watch: Watch, want: str) -> bool:
    last = watch.last
    if last is None:
        return True
    return last.status is Status.DOWN if want == "down" else last.status is not Status.UP


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
