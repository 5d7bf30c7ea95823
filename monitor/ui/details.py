"""A result's `details` (per probe kind, keyed for machines: `truncated`,
`rtts_ms`, `hostname_match`) as words for the detail screen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from monitor.ui import format as fmt


def _ms(value: Any) -> str:
    return fmt.latency(value) if isinstance(value, int | float) else "—"


def _listed(value: Any) -> str:
    """A list for people: commas, a lost echo as "lost", nothing as "—"."""
    if isinstance(value, list | tuple):
        return ", ".join("lost" if item is None else str(item) for item in value) or "—"
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# key -> (label, how its value reads); in the order they are shown
_WORDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "http_version": ("HTTP version", _plain),
    "redirects": ("redirects", lambda v: " → ".join(map(str, v)) if v else "none"),
    "address": ("address", _plain),
    "server": ("server", _plain),
    "transport": ("transport", lambda v: str(v).upper()),
    "rcode": ("response code", _plain),
    "answers": ("answers", _listed),
    "cnames": ("aliases (CNAME)", _listed),
    "ttl": ("TTL", lambda v: "—" if v is None else f"{v}s"),
    "flags": ("flags", lambda v: " ".join(map(str, v)) if v else "none"),
    "rtts_ms": ("round trips (ms)", _listed),
    "median_ms": ("median", _ms),
    "min_ms": ("min", _ms),
    "avg_ms": ("avg", _ms),
    "max_ms": ("max", _ms),
    "jitter_ms": ("jitter", _ms),
    "loss_pct": ("loss", lambda v: fmt.percent(v, round_up=True)),
    "socket": ("socket", lambda v: {"raw": "raw (root)", "dgram": "unprivileged (datagram)"}
               .get(v, _plain(v))),
    "timestamps": ("timestamps from", _plain),
    "errors": ("errors", _listed),
    "received": ("received", _plain),
    "tls_version": ("TLS version", _plain),
    "cipher": ("cipher", _plain),
    "subject": ("subject", _plain),
    "issuer": ("issuer", _plain),
    "earliest": ("earliest expiry", _plain),
    "hostname_match": ("host name", lambda v: "—" if v is None else
                       ("matches" if v else "MISMATCH")),
    "chain_length": ("chain", lambda v: "—" if v is None else f"{v} certificates"),
    "cert_subject": ("certificate", _plain),
    "cert_error": ("certificate not read", _plain),
}


# details the probes repeat from the certificate (shown from it when there is one)
CERT_DETAILS = ("subject", "issuer", "earliest", "hostname_match", "chain_length")


def detail_rows(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs: known keys in a fixed order with their own
    words, then any others with the key's underscores as spaces."""
    rows: list[tuple[str, str]] = []
    if "bytes" in details:
        body = f"{details['bytes']:,} bytes" if isinstance(details["bytes"], int) \
            else _plain(details["bytes"])
        if details.get("truncated"):
            body += ", the rest not read (body_limit)"
        rows.append(("body", body))
    if "sent" in details and "received" in details and "rtts_ms" in details:
        rows.append(("echoes", f"{details['received']} of {details['sent']} answered"))
    shown = {"bytes", "truncated", "sent"} | ({"received"} if "rtts_ms" in details else set())
    for key, (label, words) in _WORDS.items():
        if key in details and key not in shown:
            rows.append((label, words(details[key])))
    rows += [(key.replace("_", " "), _listed(value)) for key, value in details.items()
             if key not in _WORDS and key not in shown]
    return rows
