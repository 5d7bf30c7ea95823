"""The history writer's own process (started by writer_process.WriterProcess).

    python -m monitor.store.writer_child

Reads a first frame that says what to write and how (WriterProcess._spawn),
then frames of plain items (codec.queue_item) on stdin, and hands them to an
ordinary Writer; says its health, its counts and its errors on stdout, as
frames. It ends when stdin closes, after writing what it was sent. Signals
sent to the whole process group are ignored (GROUP_SIGNALS): the engine
closes the pipe when it is done, or the kernel does when it dies.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from typing import Any, BinaryIO

from monitor.store.writer import Health, Retention, Writer
from monitor.store.writer_process import read_frame, write_frame

# What a terminal or a service manager sends the whole process group: Ctrl-C,
# Ctrl-\, a hang-up (an SSH session that dropped), a stop. They are the engine's
# to act on; this process ends when the engine closes the pipe or dies.
GROUP_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM)
COUNTS_EVERY = 1.0   # seconds: how often the engine hears what was written
CLOSE_WAIT = 60.0    # seconds the last batch may take once stdin closed


class Reporter:
    """Frames to the engine, from the main thread and the writer's thread.
    An engine that has gone is not an error: the writing goes on."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._gone = False

    def send(self, message: tuple) -> None:
        with self._lock:
            if self._gone:
                return
            try:
                write_frame(self._stream, [message])
            except (OSError, ValueError):
                self._gone = True


class Forward(logging.Handler):
    """Errors (with their tracebacks) go to the engine's log: this process has none."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.ERROR)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reporter.send(("log", record.levelno, self.format(record)))
        except Exception:   # noqa: BLE001 (logging must not raise)
            pass


def apply_tuning(tuning: dict[str, dict[str, Any]]) -> None:
    """The engine's values for the writer's constants (tests shorten them)."""
    for module_name, values in tuning.items():
        module = importlib.import_module(module_name)
        for name, value in values.items():
            setattr(module, name, value)


def main() -> int:
    for group_wide in GROUP_SIGNALS:
        signal.signal(group_wide, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    spec = read_frame(stdin)
    if spec is None:
        return 0   # the engine went before saying anything
    apply_tuning(spec["tuning"])
    try:
        os.nice(spec["nice"])
    except OSError:
        pass
    reporter = Reporter(sys.stdout.buffer)
    logging.getLogger().addHandler(Forward(reporter))

    def on_health(health: Health) -> None:
        reporter.send(("health", health.ok, health.message))

    writer = Writer(spec["path"], owner=spec["owner"], retention=Retention(*spec["retention"]),
                    lock=None, on_health=on_health)
    writer.start()
    reporter.send(("ready",))
    done = threading.Event()
    counter = threading.Thread(target=tell_counts, args=(writer, reporter, done),
                               name="history-counts", daemon=True)
    counter.start()
    while (items := read_frame(stdin)) is not None:
        for item in items:
            writer.put(item)
    writer.close(CLOSE_WAIT)
    done.set()
    counter.join()
    return 0


def tell_counts(writer: Writer, reporter: Reporter, done: threading.Event) -> None:
    said = None
    while True:
        stop = done.wait(COUNTS_EVERY)
        counts = (writer.written, writer.dropped, writer.writing)
        if counts != said:
            reporter.send(("counts", *counts))
            said = counts
        if stop:
            return


if __name__ == "__main__":
    sys.exit(main())
