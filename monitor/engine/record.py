"""`--record FILE`: every result appended to FILE as JSON lines, and the
reader of such files.

A record must survive the monitor's own crash (kill -9, the OOM killer): the
results go out as whole lines, one write per batch, each batch at most
RECORD_EVERY seconds old, on a file opened O_APPEND, from a thread of their
own so a slow disk never delays a probe. After a crash the last batch at most
is missing and at most one line is torn, the one a write was cut short in.
The reader skips and counts such lines; a new recorder first ends a torn
last line, so its own first record never joins the fragment.

The lines are those of `monitor run --headless --json` (`output.result_line`):
made printable and with secrets redacted where results are made.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from monitor.engine.outbox import Outbox, ThreadSink
from monitor.engine.result import ProbeResult
from monitor.engine.sinks import Sink
from monitor.output import dropped_event, encode_lines, result_line

RECORD_EVERY = 0.5        # seconds: what kill -9 may cost, at most
RECORD_LIMIT = 16 << 20   # bytes a stalled disk may fall behind before results are dropped


async def open_recorder(path: str | Path, report: Callable[[str], None]) -> Outbox[str]:
    """An Outbox for result lines, appending to `path`.

    Raises OSError when the file cannot be opened. A write that fails later
    (a full disk) is passed to `report` as one sentence and recording stops;
    probing goes on.
    """
    stream = open(path, "ab", buffering=0)   # noqa: SIM115 (the writer thread closes it)
    try:
        if _ends_in_a_torn_line(path):
            stream.write(b"\n")
    except OSError:
        stream.close()
        raise

    def stopped(exc: BaseException | None) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        report(f"--record {path}: {reason}; recording stopped")

    outbox: Outbox[str] = Outbox(encode_lines, limit=RECORD_LIMIT, every=RECORD_EVERY,
                                 gap_note=dropped_event, on_lost=stopped)
    ThreadSink(stream, outbox, name="recorder")
    return outbox


def _ends_in_a_torn_line(path: str | Path) -> bool:
    with open(path, "rb") as existing:
        size = os.fstat(existing.fileno())
        if not stat.S_ISREG(size.st_mode) or size.st_size == 0:
            return False
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) != b"\n"


class RecordReader:
    """The entries of a record file, oldest first, each a dict.

    A line that is not a whole JSON object (the one a crash cut short) is
    skipped and counted in `torn`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.torn = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                if isinstance(entry, dict):
                    yield entry
                else:
                    self.torn += 1


class RecordSink(Sink):
    """The engine's results into a record file (`open_recorder`), as the lines
    `monitor run --headless --json` prints."""

    def __init__(self, outbox: Outbox[str]) -> None:
        self.outbox = outbox

    def on_result(self, result: ProbeResult) -> None:
        self.outbox.emit(result_line(result), droppable=True)

    async def aclose(self) -> None:
        await self.outbox.close()
