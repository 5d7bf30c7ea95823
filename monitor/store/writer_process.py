"""The history writer in a process of its own, for the engine's process.

A writer thread shares the engine's GIL: at 1,000 probes/s its batches (a few
ms of Python each, under load up to tens of ms of wall time) made probes late,
and history was the largest difference left between the CLI's latency tail
and a bare aiohttp loop's (bench/README.md, "The history writer in its own
process"). Here the engine keeps only the cheap half. `put` appends to a deque
as before; a feeder thread turns what waits into plain tuples
(codec.queue_item) and writes them down a pipe as marshal frames, at the
writer's own rhythm (every FLUSH_EVERY, sooner once BATCH_WAKE wait). The
child (writer_child.py) runs an ordinary Writer on them at a lower priority.

What stays here: the owner lock and the first open, so a refusal is still
raised by HistoryStore.open. The lock is the engine's alone: when the engine
is killed, a restart may claim the database at once, while the orphaned child
writes its last batch beside it (SQLite serialises the two; the child writes
nothing else once its pipe has closed). Handing the child the lock made such a
restart fail, refused, for as long as a child at nice 19 took to finish.

The child stops when its pipe closes (the engine closed the store, or died),
after writing everything it received; it ignores the signals a terminal or a
service manager sends the whole group (writer_child.GROUP_SIGNALS). If it dies, health
says so and another is started RETRY_EVERY later: what the dead one held
unwritten is lost (a batch interval at most), what had not reached it goes to
the next one, bounded like the writer's own queue.
"""

from __future__ import annotations

import logging
import marshal
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from monitor.probes.text import printable
from monitor.store import upkeep, writer as tuning
from monitor.store.codec import queue_item
from monitor.store.writer import Health, Inbox, Writer, drop_oldest_result

log = logging.getLogger(__name__)

# The child's niceness. The probing process and (in benches) the target
# server must never wait for a CPU because history is being written: at nice 0
# the child made the CLI's latency tail worse than a writer thread sharing the
# GIL, at 5 less so, at 19 better (bench/README.md, "The history writer in its
# own process"). On a saturated machine history waits, queued (MAX_PENDING).
NICE = 19
FRAME_ITEMS = 5_000   # items per frame at most (a backlog goes in several)
MAX_FRAME = 64 << 20
LAST_WORDS = 4096     # bytes of a dead child's stderr that are kept
TUNING = {tuning: ("FLUSH_EVERY", "BATCH_WAKE", "HEARTBEAT", "RETRY_EVERY", "MAX_PENDING",
                   "TARGET_TOUCH_MS", "REASON_TOUCH_MS"),
          upkeep: ("SETTLE_ROWS", "SETTLE_AGE_MS", "SETTLE_CHUNK", "PRUNE_EVERY",
                   "PRUNE_TARGETS")}


def write_frame(stream: IO[bytes], value: Any) -> None:
    body = marshal.dumps(value)
    stream.write(len(body).to_bytes(4, "big") + body)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame's value, or None at the end of the stream (or a torn
    frame: the other side died mid-write)."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    size = int.from_bytes(header, "big")
    if size > MAX_FRAME:
        raise ValueError(f"history writer pipe: a frame of {size} bytes")
    body = stream.read(size)
    if len(body) < size:
        return None
    return marshal.loads(body)


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit status {code}"


class WriterProcess(Inbox):
    """The same face to HistoryStore as Writer: put, start, close, health, dropped."""

    def __init__(self, opened: Writer, python: str | None = None) -> None:
        super().__init__()
        self.path = opened.path
        self.owner = opened.owner
        self.retention = opened.retention
        self.lock = opened.lock
        self.on_health = opened.on_health
        self.health = opened.health
        self._dropped_here = 0               # while no child could take them
        self._said: dict[int, tuple[int, int]] = {}   # child pid -> written, dropped it said
        self._opened = opened                # its connection is closed at start; its lock is kept
        self._python = python                # None: this interpreter
        self._stopping = threading.Event()
        self._close_by = float("inf")        # monotonic deadline once close() was called
        self._child: subprocess.Popen[bytes] | None = None
        self._next_spawn = 0.0
        self._ready = 0                      # pid of the child that said it has started
        self._unsent: list[tuple] = []       # plain items not yet in the pipe
        self._unsent_results = 0
        self._listeners: list[threading.Thread] = []
        self._last_words: dict[int, IO[bytes]] = {}   # child pid -> its stderr
        self._feeder = threading.Thread(target=self._feed, name="history-feeder", daemon=True)

    @property
    def written(self) -> int:
        """Results the children have committed (as far as they have said)."""
        return sum(written for written, _ in list(self._said.values()))

    @property
    def dropped(self) -> int:
        """Results not kept: here, while no child could take them, and by the children."""
        return self._dropped_here + sum(dropped for _, dropped in list(self._said.values()))

    def _count_dropped(self) -> None:
        self._dropped_here += 1

    def start(self) -> None:
        self._opened.disconnect()
        self._feeder.start()

    def close(self, timeout: float = 5.0) -> None:
        self._close_by = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        if self._feeder.is_alive():
            self._feeder.join(timeout)

    # --- the feeder thread ------------------------------------------------------------

    def _feed(self) -> None:
        try:
            while True:
                stopping = self._stopping.is_set()
                self._take()
                self._tend_child(now=stopping)
                if stopping:
                    self._await_ready()
                if self._child is not None and self._child.pid == self._ready and self._unsent:
                    self._send()
                if stopping:
                    return
                self._wake.wait(tuning.FLUSH_EVERY)
                self._wake.clear()
        except Exception:   # a bug here must not take probing down with it
            log.exception("history feeder failed")
            self._set_health(Health(False, "history writing stopped: internal error (see the log)"))
        finally:
            self._finish()

    def _await_ready(self) -> None:
        """At close: a child that has just started gets the time left to say
        it is ready, and then what is left."""
        while (self._child is not None and self._child.pid != self._ready
               and self._child.poll() is None and time.monotonic() < self._close_by):
            self._wake.wait(0.05)
            self._wake.clear()

    def _take(self) -> None:
        queue, unsent = self._queue, self._unsent
        while queue:
            item = queue_item(queue.popleft())
            if item[0] == "r":
                if self._unsent_results >= tuning.MAX_PENDING:
                    self._drop_oldest_result()
                self._unsent_results += 1
            unsent.append(item)

    def _drop_oldest_result(self) -> None:
        if drop_oldest_result(self._unsent):
            self._unsent_results -= 1
            self._dropped_here += 1

    def _send(self) -> None:
        assert self._child is not None and self._child.stdin is not None
        while self._unsent:
            chunk = self._unsent[:FRAME_ITEMS]
            try:
                write_frame(self._child.stdin, chunk)
            except (OSError, ValueError):   # it died (a torn frame is not read)
                self._tend_child()
                return
            del self._unsent[:len(chunk)]
            self._unsent_results -= sum(1 for item in chunk if item[0] == "r")

    def _tend_child(self, now: bool = False) -> None:
        """Notice a child that died; start one when none runs and it is time
        (`now`: at close, to write what is left)."""
        child = self._child
        if child is not None:
            code = child.poll()
            if code is None:
                return
            self._child = None
            self._forget(child)
            self._next_spawn = time.monotonic() + tuning.RETRY_EVERY
            why = describe_exit(code)
            if words := self._words_of(child):
                why += f": {words}"
            self._set_health(Health(False, f"history writer process ended ({why}); "
                                           f"starting another in {tuning.RETRY_EVERY:g}s"))
        if now or time.monotonic() >= self._next_spawn:
            self._spawn()

    def _spawn(self) -> None:
        spec = {"path": self.path, "owner": self.owner, "nice": NICE,
                "retention": [self.retention.raw_ms, self.retention.minutes_ms,
                              self.retention.hours_ms],
                "tuning": {module.__name__: {name: getattr(module, name) for name in names}
                           for module, names in TUNING.items()}}
        python = self._python or sys.executable
        try:
            # its stderr (a traceback, should it crash) goes to a file read when it ends:
            # a pipe would hold our own stderr's readers open, or fill up unread
            stderr = tempfile.TemporaryFile()
            child = subprocess.Popen(
                [python, "-m", "monitor.store.writer_child"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        except OSError as exc:
            self._next_spawn = time.monotonic() + tuning.RETRY_EVERY
            self._set_health(Health(False, "history writer process could not start "
                                           f"({python}): {exc.strerror or exc}; retrying"))
            return
        assert child.stdin is not None
        try:
            write_frame(child.stdin, spec)   # its first frame: what to write, and how
        except OSError:
            pass   # it died at once: noticed on the next round
        self._child = child
        self._last_words[child.pid] = stderr
        listener = threading.Thread(target=self._listen, args=(child,), name="history-listener",
                                    daemon=True)
        self._listeners = [*(alive for alive in self._listeners if alive.is_alive()), listener]
        listener.start()

    def _words_of(self, child: subprocess.Popen[bytes]) -> str:
        """The last line it wrote to stderr (a traceback ends with the error);
        the whole of it goes to the log."""
        stderr = self._last_words.pop(child.pid, None)
        if stderr is None:
            return ""
        with stderr:
            stderr.seek(0, os.SEEK_END)
            stderr.seek(max(0, stderr.tell() - LAST_WORDS))
            text = stderr.read().decode(errors="replace")
        lines = [printable(line.strip()) for line in text.splitlines() if line.strip()]
        if lines:
            log.warning("history writer process %d said:\n%s", child.pid, "\n".join(lines))
        return lines[-1] if lines else ""

    @staticmethod
    def _forget(child: subprocess.Popen[bytes]) -> None:
        if child.stdin is not None:
            try:
                child.stdin.close()
            except OSError:
                pass

    def _finish(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            try:
                if child.stdin is not None:
                    child.stdin.close()   # the end: the child writes what it holds, then exits
            except OSError:
                pass
            try:
                code = child.wait(max(0.0, self._close_by - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.info("history writer process %d still writing; it ends on its own", child.pid)
            else:
                self._words_of(child)
                if code != 0:
                    log.warning("history writer process ended (%s)", describe_exit(code))
        for listener in self._listeners:
            listener.join(max(0.0, self._close_by - time.monotonic()))
        for stderr in self._last_words.values():
            stderr.close()
        if self.lock is not None:
            self.lock.release()

    # --- what the child says ----------------------------------------------------------------

    def _listen(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        try:
            while (messages := read_frame(child.stdout)) is not None:
                for message in messages:
                    self._heard(child, message)
        except (OSError, ValueError, EOFError, TypeError, IndexError) as exc:
            log.warning("history writer process: unreadable message (%s)", exc)
        finally:
            child.stdout.close()

    def _heard(self, child: subprocess.Popen[bytes], message: tuple) -> None:
        kind = message[0]
        if kind == "ready":   # only now is anything sent: a child that cannot start loses nothing
            self._ready = child.pid
            self._wake.set()
        elif kind == "health":
            self._set_health(Health(message[1], message[2]))
        elif kind == "counts":
            self._said[child.pid] = (message[1], message[2])
            if message[3] and not self.health.ok and child is self._child:
                # a new child has written (its own faults it says itself)
                self._set_health(Health(True, "history resumed"))
        elif kind == "log":
            log.log(message[1], "history writer process: %s", message[2])


__all__ = ["WriterProcess", "read_frame", "write_frame"]
