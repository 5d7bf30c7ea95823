"""A low open-file limit is the monitor's problem, never the targets': with
`ulimit -n 64` and hundreds of targets holding connections, no healthy
target may go DOWN, and the operator is told why probing is slower."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
from pathlib import Path

from monitor.engine.fdlimit import fit_concurrency, out_of_files

ROOT = Path(__file__).resolve().parents[2]
TARGETS = 400
BANNER_AFTER = 0.3   # each probe holds its socket this long


def test_out_of_files_follows_the_cause_chain() -> None:
    import errno
    try:
        try:
            raise OSError(errno.EMFILE, "Too many open files")
        except OSError:
            raise ValueError("wrapped") from None   # context kept, cause suppressed
    except ValueError as exc:
        assert out_of_files(exc)
    assert not out_of_files(OSError(errno.ECONNREFUSED, "refused"))
    assert not out_of_files(None)


def test_concurrency_fits_the_limit_it_cannot_raise() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = fit_concurrency(min(256, hard), in_use=hard)   # nothing left at all
    assert budget.concurrency == 1 and budget.notice is not None
    assert "ulimit -n" in budget.notice
    assert fit_concurrency(1, in_use=0).notice is None
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] == hard


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


async def test_low_ulimit_never_marks_healthy_targets_down(tmp_path: Path) -> None:
    async def slow_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(BANNER_AFTER)
            writer.write(b"220 ready\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.read(), 2)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(slow_banner, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    lines = ['[settings]\ninterval = "2s"\ntimeout = "1.5s"\n']
    lines += [f'[[targets]]\nname = "t{i}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
              f'expect = "220"\n' for i in range(TARGETS)]
    config = tmp_path / "many.toml"
    config.write_text("\n".join(lines))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "--json", "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_low_limit)
    try:
        await asyncio.sleep(5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        server.close()
        await server.wait_closed()
    results = [json.loads(line) for line in out.decode().splitlines()
               if line.startswith('{"event":"result"')]
    down = [r for r in results if r["status"] != "up"]
    assert len(results) > 50, err.decode()[-2000:]
    assert not down, down[:3]
    assert "open-file limit 64" in err.decode()
