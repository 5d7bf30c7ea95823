"""Output that never stalls the probes: the engine's frames to the UI, the
JSON lines of `run --headless`, the `--record` file.

An `Outbox` collects messages and writes them as one batch at most every
`every` seconds (a burst of results is one write and wakes the reader once;
nothing to send, no wake-ups at all). It writes to a sink that never blocks
the event loop:

* a pipe or socket: the event loop's non-blocking write transport. It also
  notices at once when the reader is gone (`monitor run --headless | head
  -1`), even when there is nothing to write.
* anything else (a terminal, a file, /dev/null): `ThreadSink`, plain blocking
  writes in a thread of their own. A terminal on a frozen SSH link or a stalled
  disk blocks that thread, never the probes. (O_NONBLOCK is no answer for a
  terminal: the shell's stderr shares the open file and would turn
  non-blocking too; uvloop aborts on files and /dev/null as pipes.)

A reader that stops reading must not stall the probes nor make memory grow
without bound: above `limit` bytes waiting, droppable messages (results) are
dropped and counted until the backlog halves; the others (transitions,
errors) still go, up to `hard_limit` when one is set, and are counted
beyond it. With a `gap_note`, the stream itself says what it lost, once
output flows again.
"""

from __future__ import annotations

import asyncio
import os
import queue
import select
import stat
import sys
import threading
from collections.abc import Callable
from typing import BinaryIO, Generic, Protocol, TypeVar

M = TypeVar("M")


class Sink(Protocol):
    """What an Outbox needs of asyncio.WriteTransport."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def close(self) -> None: ...


class Outbox(asyncio.Protocol, Generic[M]):
    """Batches of messages, encoded by `encode`, to a sink that never blocks.

    It is the sink's protocol: the sink hands itself over in
    `connection_made` and reports in `connection_lost` that it can take no
    more (the reader left, or a write failed), which the Outbox passes on to
    `on_lost` unless it closed the sink itself.
    """

    def __init__(self, encode: Callable[[list[M]], bytes], *, limit: int = 4 << 20,
                 every: float = 0.05, hard_limit: int | None = None,
                 gap_note: Callable[[int, int], M] | None = None,
                 on_lost: Callable[[BaseException | None], None] | None = None) -> None:
        self.encode = encode
        self.limit = limit
        self.hard_limit = hard_limit
        self.every = every
        self.gap_note = gap_note
        self.on_lost = on_lost
        self.sink: Sink | None = None
        self.dropped = 0    # droppable messages not sent
        self.lost = 0       # must-go messages not sent (beyond hard_limit)
        self._noted = (0, 0)      # (dropped, lost) as of the last gap note
        self._gap_open = False    # something dropped since
        self._shedding = False
        self._closed = False
        self._messages: list[M] = []
        self._pending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sink = transport   # type: ignore[assignment]

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._closed and self.on_lost is not None:
            self.on_lost(exc)

    def emit(self, message: M, droppable: bool = False) -> None:
        backlog = self.sink.get_write_buffer_size()   # type: ignore[union-attr]
        if backlog > self.limit:
            self._shedding = True
        elif self._shedding and backlog <= self.limit // 2:
            # hysteresis: a reader just keeping up gets one gap and one note, not one per result
            self._shedding = False
        if self._shedding and (droppable or (self.hard_limit is not None
                                             and backlog > self.hard_limit)):
            if droppable:
                self.dropped += 1
            else:
                self.lost += 1
            self._gap_open = True
            return
        if self._gap_open and not self._shedding:   # once output flows again: one note a stall
            self._note_gap()
        self._messages.append(message)
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.every, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._messages and self.sink is not None and not self.sink.is_closing():
            self.sink.write(self.encode(self._messages))
        self._messages = []

    async def close(self, wait: float = 2.0) -> None:
        """Send what is left and give the reader a moment to take it."""
        if self._gap_open:
            self._note_gap()
        self.flush()
        sink = self.sink
        if sink is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (sink.get_write_buffer_size() and not sink.is_closing()
               and loop.time() < deadline):
            await asyncio.sleep(0.01)
        self._closed = True
        sink.close()

    def _note_gap(self) -> None:
        """Say in the stream, where the gap is, what fell into it."""
        if self.gap_note is not None:
            dropped, lost = self._noted
            self._messages.append(self.gap_note(self.dropped - dropped, self.lost - lost))
        self._noted = (self.dropped, self.lost)
        self._gap_open = False


class ThreadSink:
    """The Sink interface over plain blocking writes, done by a thread of its own.

    `write` only hands the bytes over; the thread writes whatever queued up
    meanwhile in one go, so a sink that was slow for a while catches up in
    few writes. A failed write (a full disk, a terminal gone) is reported to
    the protocol once; the rest is discarded.
    """

    def __init__(self, stream: BinaryIO, protocol: asyncio.BaseProtocol, name: str) -> None:
        self._stream = stream
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        # Each counter has a single writer thread, so neither needs a lock.
        self._handed = 0    # bytes given to the thread (the loop's thread counts)
        self._done = 0      # bytes written or discarded (the writer thread counts)
        self._closing = False
        self._failed = False
        threading.Thread(target=self._run, name=name, daemon=True).start()
        protocol.connection_made(self)   # type: ignore[arg-type]

    def write(self, data: bytes) -> None:
        if self._closing or self._failed:
            return
        self._handed += len(data)
        self._chunks.put(data)

    def get_write_buffer_size(self) -> int:
        return self._handed - self._done

    def is_closing(self) -> bool:
        return self._closing or self._failed

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._chunks.put(None)   # the thread closes the stream once all before it is written

    def _run(self) -> None:
        fd = self._stream.fileno()
        closed = False
        while not closed:
            batch = [self._chunks.get()]
            while True:
                try:
                    batch.append(self._chunks.get_nowait())
                except queue.Empty:
                    break
            closed = batch[-1] is None   # close() queues nothing after it
            data = b"".join(batch[:-1] if closed else batch)   # type: ignore[arg-type]
            if data and not self._failed:
                try:
                    write_all(fd, data)
                except OSError as exc:
                    self._failed = True
                    self._report(exc)
            self._done += len(data)
        self._stream.close()

    def _report(self, exc: OSError) -> None:
        try:
            self._loop.call_soon_threadsafe(self._protocol.connection_lost, exc)
        except RuntimeError:   # the loop is closed: the process is on its way out
            pass


def write_all(fd: int, data: bytes) -> None:
    """Blocking write of all of `data`, even on a descriptor that another
    program left non-blocking (the terminal after some tools exit)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll()


def private_stdout() -> BinaryIO:
    """Take file descriptor 1 for our output alone: from here on anything
    printed to stdout (by us or a library) goes to stderr, where it cannot
    break the stream (frames, JSON lines) or block on a stalled reader."""
    if sys.stdout is not None:
        sys.stdout.flush()
    private = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return private


async def open_stdout(outbox: Outbox[M]) -> Outbox[M]:
    """Connect `outbox` to stdout (see `private_stdout`). Raises OSError when
    there is no stdout to write to."""
    stream = private_stdout()
    mode = os.fstat(stream.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        await asyncio.get_running_loop().connect_write_pipe(lambda: outbox, stream)
    else:
        ThreadSink(stream, outbox, name="stdout writer")
    return outbox
