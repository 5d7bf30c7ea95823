"""The alert sink: the engine's events in, deliveries out, never in the way.

The engine calls it on its loop; it decides at once (policy.py, no I/O) and
queues each delivery on its channel's own queue. Every channel has its own
worker task, so a channel that hangs holds up only its own queue: never a
probe, never another channel. Every outcome (sent, retrying, failed,
dropped, held, bell) is a `Delivery` given to `on_event` (the lead wires it
to the event log and the headless log) and kept in `recent`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.alerts.channels import Channel, make_channel
from monitor.alerts.channels.base import attempt
from monitor.alerts.maintenance import ActiveWindow
from monitor.alerts.message import Alert
from monitor.alerts.policy import Clock, Decision, Held, Policy
from monitor.alerts.state import StateFile, state_path
from monitor.config import Config, ConfigError, parse_config
from monitor.config.alerting import AlertChannel
from monitor.engine.result import ProbeResult, iso
from monitor.engine.sinks import ConfigReloaded, MonitorStarted, MonitorStopped, Sink
from monitor.engine.state import Transition

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000        # deliveries waiting per channel before the oldest is dropped
RECENT = 200              # deliveries kept in memory for a panel
TICK = 1.0                # seconds between looks at reminders and held-back alerts
FLUSH_GRACE = 5.0         # seconds to finish queued deliveries when the monitor stops
MAX_BACKOFF = 300.0
# The first change after a quiet spell is saved at once; a burst is saved at
# most this often (each save is a JSON dump and an fsync in a thread).
SAVE_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outcome, for the event log: `outcome` is "sent", "retrying",
    "failed", "dropped", "held" (policy kept it back: maintenance, a parent
    down), "bell" (show it in the app and ring) or "notice"."""
    at: datetime
    outcome: str
    channel: str
    channel_kind: str
    alert: Alert | None
    detail: str
    attempt: int = 1

    def text(self) -> str:
        """'alert ops (webhook) sent: DOWN api (...): ... [HTTP 200]'."""
        what = self.alert.summary() if self.alert is not None else ""
        if self.outcome in ("held", "notice"):
            return f"alert: {self.detail}"
        where = f"alert {self.channel} ({self.channel_kind})"
        tried = f" (try {self.attempt})" if self.attempt > 1 else ""
        return f"{where} {self.outcome}{tried}: {what} [{self.detail}]"

    def to_json(self) -> dict[str, Any]:
        return {"event": "alert", "at": iso(self.at), "outcome": self.outcome,
                "channel": self.channel, "channel_kind": self.channel_kind,
                "attempt": self.attempt, "detail": self.detail,
                "alert": self.alert.payload() if self.alert is not None else None}


class AlertSink(Sink):
    def __init__(self, config: Config, on_event: Callable[[Delivery], None] | None = None, *,
                 state: Path | None = None, clock: Clock | None = None,
                 queue_limit: int = QUEUE_LIMIT, tick: float = TICK) -> None:
        self.config = config
        self.policy = Policy(config, clock)
        self.on_event = on_event
        self.recent: deque[Delivery] = deque(maxlen=RECENT)
        self.counts: dict[str, int] = {}            # outcome -> how many, for benches and tests
        self._state = StateFile(state or state_path(config.path))
        self._queue_limit = queue_limit
        self._tick_every = tick
        self._channels: dict[str, Channel] = {}
        self._queues: dict[str, asyncio.Queue[Alert | None]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._active = True
        self._dirty = False
        self._saving: asyncio.Task[None] | None = None
        self._resting = False

    # -- what the dashboard asks ----------------------------------------------

    def in_maintenance(self, name: str, at: datetime | None = None) -> ActiveWindow | None:
        return self.policy.calendar.in_maintenance(name, at or datetime.now(UTC))

    def unreachable_via(self, name: str) -> str | None:
        return self.policy.unreachable_via(name)

    # -- engine events ----------------------------------------------------------

    def on_start(self, event: MonitorStarted) -> None:
        self._start()

    def on_result(self, result: ProbeResult) -> None:
        decisions = self.policy.on_result(result)
        if decisions:
            self._dispatch(decisions)

    def on_transition(self, transition: Transition) -> None:
        self._dispatch(self.policy.on_transition(transition))

    def on_reload(self, event: ConfigReloaded) -> None:
        self._spawn(self._reload(event.config_text))

    def on_stop(self, event: MonitorStopped) -> None:
        self._mark_dirty()

    async def aclose(self) -> None:
        """Let queued deliveries finish (a while), then stop; save the state."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._queues.values():
            queue.put_nowait(None)   # each worker ends after what is queued before it
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=FLUSH_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            left = sum(q.qsize() for q in self._queues.values())
            if late or left:
                self._report("notice", "", "", None,
                             f"stopping: {left + len(late)} alert deliveries not finished")
        for channel in self._channels.values():
            try:
                await channel.aclose()
            except Exception:
                log.exception("closing channel %s", channel.spec.name)
        if self._saving is not None:
            if self._resting:   # the final save below covers what it waited to write
                self._saving.cancel()
            await asyncio.gather(self._saving, return_exceptions=True)
        if self._active and self._started:
            self._save_now()
        self._state.release()

    # -- starting, reloading ------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if not self.config.alerts:
            # no channels: no lock, no state file, until a reload brings some
            self._active = False
            return
        self._active = True
        holder = self._state.acquire()
        if holder is not None:
            self._active = False
            who = f"process {holder}" if holder else "another process"
            self._report("notice", "", "", None,
                         f"{who} is already alerting for this config; this one sends none")
            return
        data, problem = self._state.load()
        if problem:
            self._report("notice", "", "", None, problem)
        self.policy.restore(data)
        self._apply_channels(self.config.alerts)
        self._spawn(self._ticker())

    def start(self) -> None:
        """Start without an engine (tests, `monitor alert test`): needs a running loop."""
        self._start()

    async def _reload(self, text: str) -> None:
        if not text:
            return
        try:   # the host has validated it: this is the same text, read in a thread
            fresh = await asyncio.to_thread(parse_config, text, self.config.path)
        except ConfigError as exc:
            self._report("notice", "", "", None, f"reload not applied to alerts: {exc}")
            return
        self.config = fresh
        self.policy.reconfigure(fresh)
        if self._started and not self._active and fresh.alerts and self._state.held is None:
            self._started = False   # the first channels: start for real
            self._start()
        elif self._active and self._started:
            self._apply_channels(fresh.alerts)

    def _apply_channels(self, specs: tuple[AlertChannel, ...]) -> None:
        wanted = {spec.name: spec for spec in specs}
        for name in list(self._channels):
            if name not in wanted:   # the worker ends after what is already queued
                self._queues.pop(name).put_nowait(None)
                channel = self._channels.pop(name)
                self._workers.pop(name).add_done_callback(
                    lambda _, c=channel: self._spawn(c.aclose()))
        for name, spec in wanted.items():
            current = self._channels.get(name)
            if current is not None and current.spec == spec:
                continue
            self._channels[name] = make_channel(spec, self._bell)
            if current is not None:   # its worker now sends with the new one
                self._spawn(current.aclose())
                continue
            self._queues[name] = asyncio.Queue()
            self._workers[name] = asyncio.get_running_loop().create_task(self._worker(name))

    # -- deciding and delivering --------------------------------------------------

    def _dispatch(self, decisions: list[Decision | Held]) -> None:
        if not decisions:
            return
        if not self._started:
            self._start()
        for decision in decisions:
            if isinstance(decision, Held):
                self._report("held", "", "", None, decision.text())
                continue
            self._mark_dirty()
            if not self._active:
                continue
            queue = self._queues.get(decision.channel.name)
            if queue is None:
                continue
            if queue.qsize() >= self._queue_limit:
                dropped = queue.get_nowait()
                if dropped is not None:
                    self._report("dropped", decision.channel.name, decision.channel.kind, dropped,
                                 f"over {self._queue_limit} deliveries waiting on this channel")
            queue.put_nowait(decision.alert)

    async def _worker(self, name: str) -> None:
        queue = self._queues[name]
        while (alert := await queue.get()) is not None:
            channel = self._channels.get(name)
            if channel is not None:
                await self._deliver(channel, alert)

    async def _deliver(self, channel: Channel, alert: Alert) -> None:
        spec = channel.spec
        attempts = 1 + spec.retries
        for number in range(1, attempts + 1):
            try:
                delivered, detail, retry = await attempt(channel, alert)
            except Exception as exc:   # a channel's bug: logged, never the end of the worker
                log.exception("alert channel %s", spec.name)
                delivered, detail, retry = False, f"internal error: {type(exc).__name__}", False
            if delivered:
                self._report("sent", spec.name, spec.kind, alert, detail, number)
                return
            if retry and number < attempts:
                delay = min(spec.backoff * 2 ** (number - 1), MAX_BACKOFF)
                self._report("retrying", spec.name, spec.kind, alert,
                             f"{detail}; again in {delay:g}s", number)
                await asyncio.sleep(delay)
                continue
            self._report("failed", spec.name, spec.kind, alert, detail, number)
            return

    def _bell(self, channel: str, alert: Alert) -> None:
        self._report("bell", channel, "bell", alert, "ring the terminal bell and notify")

    def _report(self, outcome: str, channel: str, kind: str, alert: Alert | None, detail: str,
                attempt: int = 1) -> None:
        event = Delivery(self.policy.clock.wall(), outcome, channel, kind, alert, detail, attempt)
        self.recent.append(event)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("alert event callback failed")

    # -- timers and state ----------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick_every)
            self._dispatch(self.policy.tick())

    def _mark_dirty(self) -> None:
        self._dirty = True
        if self._active and self._started and (self._saving is None or self._saving.done()):
            self._saving = asyncio.get_running_loop().create_task(self._save_soon())

    async def _save_soon(self) -> None:
        while self._dirty:
            self._dirty = False
            data = self.policy.snapshot()
            try:
                await asyncio.to_thread(self._state.save, data)
            except OSError as exc:
                self._report("notice", "", "", None,
                             f"cannot save alert state to {self._state.path}: "
                             f"{exc.strerror or exc}")
                return
            self._resting = True    # between saves: safe to cancel (nothing half-done)
            try:
                await asyncio.sleep(SAVE_EVERY)
            finally:
                self._resting = False

    def _save_now(self) -> None:
        try:
            self._state.save(self.policy.snapshot())
        except OSError as exc:
            log.warning("cannot save alert state: %s", exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def alert_sink(config: Config, notice: Callable[[str], None]) -> AlertSink:
    """The sink as `run --headless` and the dashboard's engine add it: every
    outcome as one line through `notice` (their event log)."""
    return AlertSink(config, lambda event: notice(event.text()))
