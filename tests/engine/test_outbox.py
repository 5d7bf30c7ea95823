"""The Outbox on a real pipe that nobody reads: what it holds is bounded,
and what it could not hold is counted and said in the stream, where the gap is."""

from __future__ import annotations

import asyncio
import os

from monitor.engine.outbox import Outbox
from monitor.output import dropped_line, encode_lines


async def drain(read_fd: int, outbox: Outbox[str]) -> bytes:
    data = b""
    for _ in range(1000):                     # bounded
        try:
            chunk = os.read(read_fd, 1 << 16)
        except BlockingIOError:
            chunk = b""
        data += chunk
        if not chunk:
            if not outbox.sink.get_write_buffer_size():   # type: ignore[union-attr]
                break
            await asyncio.sleep(0.005)
    return data


async def test_state_changes_beyond_the_hard_limit_are_counted_and_noted():
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    outbox: Outbox[str] = Outbox(encode_lines, limit=16 * 1024, hard_limit=64 * 1024,
                                 gap_note=dropped_line)
    await loop.connect_write_pipe(lambda: outbox, os.fdopen(write_fd, "wb"))
    try:
        changes = 0
        for i in range(4000):                 # ~800 KB: far beyond the pipe and both limits
            if i % 4 == 0:
                outbox.emit(f"change {i} {'s' * 190}")
                changes += 1
            else:
                outbox.emit(f"result {i} {'r' * 190}", droppable=True)
            if i % 50 == 0:
                outbox.flush()                # never blocks, whatever the reader does
        outbox.flush()
        assert outbox.dropped > 0 and outbox.lost > 0
        backlog = outbox.sink.get_write_buffer_size()   # type: ignore[union-attr]
        assert backlog <= 64 * 1024 + 50 * 200    # bounded: the hard limit and one batch
        before = (await drain(read_fd, outbox)).decode().splitlines()
        outbox.emit("after the stall")
        outbox.flush()
        after = (await drain(read_fd, outbox)).decode().splitlines()
    finally:
        outbox.sink.close()   # type: ignore[union-attr]
        os.close(read_fd)
    assert sum(line.startswith("change") for line in before) == changes - outbox.lost
    assert len(before) == 4000 - outbox.dropped - outbox.lost
    note, last = after
    assert note.endswith(f"monitor: output stalled; not written: {outbox.dropped} results, "
                         f"{outbox.lost} state changes")
    assert last == "after the stall"
