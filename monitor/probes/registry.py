"""Probe kinds by name. Adding a kind: one module plus one line here."""

from __future__ import annotations

from importlib import import_module

from monitor.probes.base import Probe

_KINDS: dict[str, str] = {
    "http": "monitor.probes.http:HttpProbe",
    "tcp": "monitor.probes.tcp:TcpProbe",
    "dns": "monitor.probes.dns:DnsProbe",
    "icmp": "monitor.probes.icmp:IcmpProbe",
    "tls": "monitor.probes.tls:TlsProbe",
}


def kinds() -> list[str]:
    return list(_KINDS)


def probe_class(kind: str) -> type[Probe]:
    module, _, name = _KINDS[kind].partition(":")
    return getattr(import_module(module), name)
