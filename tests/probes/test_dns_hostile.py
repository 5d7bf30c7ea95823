"""Hostile DNS answers cost the engine little, and say why they fail.

Issue 8 item 1: a 64 KB answer of backward compression-pointer chains took
11 s of CPU to parse, freezing every other probe in the event loop. The
answers come from a real responder on loopback, and a healthy canary is
probed in the same event loop at the same time: it must still get its result.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.config.model import Target
from monitor.engine.result import ProbeResult, Status
from monitor.engine.runner import run_probe
from monitor.probes.base import ProbeContext
from tests.servers.dns_responder import DnsResponder

ZONE: dict[str, dict[str, list[Any]]] = {
    "example.org": {
        "A": ["192.0.2.1"],
        "TXT": ["\x1b]0;owned\x07\x1b[2Jbell"],
        "CAA": ['0 issue "ca\x1b[31m.example"'],
    },
}


def dns_target(server: str, **keys: Any) -> Target:
    fields = {"query_name": "example.org", "server": server, "timeout": "1s", **keys}
    lines = ['[[targets]]', 'name = "d"', 'kind = "dns"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    return parse_config("\n".join(lines) + "\n").targets[0]


@pytest.fixture
async def responders() -> Any:
    hostile, canary = DnsResponder(ZONE), DnsResponder(ZONE)
    await hostile.start()
    await canary.start()
    yield hostile, canary
    await hostile.close()
    await canary.close()


async def probe_beside_canary(hostile: DnsResponder,
                              canary: DnsResponder) -> tuple[ProbeResult, ProbeResult]:
    # The canary's timeout is shorter than the hostile probe's: an engine frozen
    # by the hostile answer would time the canary out.
    hostile_result, canary_result = await asyncio.gather(
        run_probe(dns_target(hostile.address, timeout="3s"), ProbeContext()),
        run_probe(dns_target(canary.address, timeout="2s"), ProbeContext()))
    return hostile_result, canary_result


@pytest.mark.parametrize(("mode", "records", "problem"), [
    # as in the issue: refused on the record count in its header, before any parsing
    ("pointer_chains", 3000, "3001 records, more than the 500 this probe reads"),
    # fewer records: dnspython meets the chain and refuses it
    ("pointer_chains", 400, "answer record 2: a chain of more than 16 compression pointers"),
    ("truncated_pointer_chains", 3000, "3001 records, more than the 500 this probe reads"),
    ("truncated_pointer_chains", 400,
     "answer record 2: a chain of more than 16 compression pointers"),
    # every chain short, but 400 records of 127-label names: the label budget
    ("long_names", 400, "answer record 41: its names decompress to more than 10000 labels"),
])
async def test_hostile_answer_fails_at_once_and_the_canary_answers(
        responders: tuple[DnsResponder, DnsResponder], mode: str, records: int,
        problem: str) -> None:
    hostile, canary = responders
    hostile.mode, hostile.hostile_records = mode, records
    result, canary_result = await probe_beside_canary(hostile, canary)
    assert result.status is Status.DOWN
    # Not "timed out": the answer was refused before the probe's timeout fired.
    assert result.reason == f"malformed DNS response: {problem}"
    assert result.latency_ms is None
    transports = [q.transport for q in hostile.queries]
    assert transports == (["udp", "tcp"] if mode.startswith("truncated") else ["udp"])
    assert canary_result.status is Status.UP, canary_result.reason
    assert canary_result.details["answers"] == ["192.0.2.1"]


async def test_trailing_junk_is_malformed(
        responders: tuple[DnsResponder, DnsResponder]) -> None:
    hostile, _ = responders
    hostile.mode = "trailing"
    result = await run_probe(dns_target(hostile.address), ProbeContext())
    assert result.reason == "malformed DNS response: 4 stray bytes after the last record"


async def test_control_bytes_in_answers_reach_the_result_printable(
        responders: tuple[DnsResponder, DnsResponder]) -> None:
    server, _ = responders
    txt = await run_probe(dns_target(server.address, record_type="TXT",
                                     expect_answer_regex="bell$"), ProbeContext())
    assert txt.status is Status.UP, txt.reason  # the regex saw the text as sent
    assert txt.details["answers"] == ["\\e]0;owned\\x07\\e[2Jbell"]
    wrong = await run_probe(dns_target(server.address, record_type="TXT",
                                       expect_answer_regex="^v=spf1"), ProbeContext())
    assert wrong.reason == "no answer matches /^v=spf1/ (got \\e]0;owned\\x07\\e[2Jbell)"
    caa = await run_probe(dns_target(server.address, record_type="CAA"), ProbeContext())
    assert caa.status is Status.UP, caa.reason
    assert caa.details["answers"] == ['0 issue "ca\\027[31m.example"']
