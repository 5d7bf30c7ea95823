"""`kind = "command"`: run a program (an argv list, never a shell) with the
JSON payload on stdin and the payload's scalars as MONITOR_* variables.

Its exit status and the end of its stderr are kept for the log. A program
that outlives the channel's timeout is killed with its whole process group
(it was started in a session of its own), so a hung script leaves nothing
behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal

from monitor.alerts.channels.base import Channel, ChannelError
from monitor.alerts.message import Alert

TAIL = 4096   # bytes of stdout/stderr kept: a chatty script must not fill memory


class CommandChannel(Channel):
    kind = "command"

    async def send(self, alert: Alert) -> str:
        argv = self.spec.options.command
        payload = json.dumps(alert.payload(), ensure_ascii=False).encode() + b"\n"
        env = {**os.environ, **alert.environment(self.spec.name)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise ChannelError(self.mask(f"cannot run {argv[0]}: {exc.strerror or exc}"),
                               retry=False) from None
        try:
            out, err, _ = await asyncio.gather(_tail(proc.stdout), _tail(proc.stderr),
                                               _feed(proc.stdin, payload))
            code = await proc.wait()
        except BaseException:   # cancelled at the timeout: the program goes too
            _kill_group(proc)
            await proc.wait()
            raise
        said = _last_line(err) or _last_line(out)
        if code != 0:
            how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
            raise ChannelError(self.mask(how + (f": {said}" if said else "")))
        return self.mask("exit 0" + (f": {said}" if said else ""))


async def _feed(stdin: asyncio.StreamWriter | None, data: bytes) -> None:
    if stdin is None:
        return
    try:
        stdin.write(data)
        await stdin.drain()
        stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass   # a program that does not read its stdin is still a program


async def _tail(stream: asyncio.StreamReader | None) -> bytes:
    kept = b""
    if stream is None:
        return kept
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-TAIL:]
    return kept


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
