"""net.connect_resolved / connect_socket, on asyncio's loop and on uvloop, against
real loopback sockets: a connect that completes, one refused, one cancelled while
the peer's accept queue is full (the socket must not leak)."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from monitor.probes.net import connect_resolved

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {"asyncio": None}
try:
    import uvloop
    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:   # Windows, PyPy: asyncio's loop only
    pass


def run_on(loop_name: str, coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        return runner.run(coro)


@contextmanager
def listener(backlog: int = 16) -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    try:
        yield sock
    finally:
        sock.close()


def info(port: int) -> tuple[Any, ...]:
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_connects_and_the_peer_accepts(loop_name: str) -> None:
    with listener() as server:
        port = server.getsockname()[1]
        sock = run_on(loop_name, connect_resolved(info(port)))
        try:
            assert sock.getpeername() == ("127.0.0.1", port)
            assert not sock.getblocking()
            server.settimeout(5)
            peer, _ = server.accept()
            peer.close()
        finally:
            sock.close()


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_refused_is_an_oserror_with_its_errno(loop_name: str) -> None:
    with listener() as server:
        port = server.getsockname()[1]
    made: list[socket.socket] = []

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        made.append(socket.socket(addr_info[0], addr_info[1], addr_info[2]))
        return made[-1]

    with pytest.raises(OSError) as caught:
        run_on(loop_name, connect_resolved(info(port), factory))
    assert caught.value.errno == errno.ECONNREFUSED
    assert made[0].fileno() == -1   # closed, not leaked


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_cancelled_while_connecting_closes_the_socket(loop_name: str) -> None:
    made: list[socket.socket] = []

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        made.append(socket.socket(addr_info[0], addr_info[1], addr_info[2]))
        return made[-1]

    with listener(backlog=0) as server:
        port = server.getsockname()[1]

        async def main() -> None:
            fillers = []
            for _ in range(8):   # bounded: the queue holds one or two
                try:
                    async with asyncio.timeout(0.3):
                        fillers.append(await connect_resolved(info(port)))
                except TimeoutError:
                    break
            else:
                pytest.skip("this kernel accepted every connect; nothing stays pending")
            try:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await connect_resolved(info(port), factory)
            finally:
                for sock in fillers:
                    sock.close()

        run_on(loop_name, main())
    assert len(made) == 1 and made[0].fileno() == -1
