"""The per-target half of /metrics in Prometheus' text format (0.0.4).

Names follow blackbox_exporter's, so dashboards and alert rules written for
it work unchanged; our own figures are under `monitor_`. Every series has
the labels `target` (the name), `kind`, `group` and `location` (the last two
only when set); no reason, URL or other free text is ever a label, so the
number of series is a small multiple of the number of targets.

prometheus-client writes the handful of process and engine series
(`sink.py`), but its writer formats every sample afresh (labels validated
and escaped each time): 4.8 s for the 182,000 samples of 10,000 targets on
this project's machine (bench/metrics_bench.py). Here each target's lines
are kept as text and written again only when its figures change, and a
scrape joins them, a family at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.engine.result import Status
from monitor.export.series import PhaseHistogram, TargetSeries, UptimeSource

# Our phases under blackbox_exporter's names for them.
HTTP_PHASES: tuple[tuple[str, str], ...] = (
    ("dns", "resolve"), ("connect", "connect"), ("tls", "tls"), ("ttfb", "processing"),
    ("transfer", "transfer"))


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    type: str
    help: str

    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.type}\n"


# One chunk of text per family per target, in this order (the format wants
# each family's lines together).
FAMILIES: tuple[Family, ...] = (
    Family("probe_success", "gauge",
           "Whether the last probe answered (1), including DEGRADED, or failed (0)."),
    Family("probe_duration_seconds", "gauge",
           "Latency of the last answered probe in seconds (ICMP: the median round trip)."),
    Family("probe_dns_lookup_time_seconds", "gauge",
           "Time the last probe spent resolving the target's name."),
    Family("probe_http_duration_seconds", "gauge",
           "Duration of the last HTTP probe by phase (resolve, connect, tls, processing, "
           "transfer): the phases that ran."),
    Family("probe_http_status_code", "gauge",
           "Response status of the last HTTP probe, 0 when nothing answered."),
    Family("probe_ssl_earliest_cert_expiry", "gauge",
           "Earliest expiry in the certificate chain last seen, Unix seconds."),
    Family("probe_icmp_duration_seconds", "gauge",
           "Duration of the last ICMP probe by phase (resolve, rtt: the median round trip)."),
    Family("monitor_state", "gauge",
           "The target's confirmed state, as the state label (pending, up, degraded, down, "
           "paused); the value is always 1."),
    Family("monitor_state_change_timestamp_seconds", "gauge",
           "When the target entered its current state, Unix seconds."),
    Family("monitor_consecutive_failures", "gauge",
           "DOWN results in a row, up to the last probe."),
    Family("monitor_loss_ratio", "gauge",
           "Share of DOWN results over the last [settings] history probes, as the dashboard."),
    Family("monitor_probes_total", "counter", "Probes completed, rechecks included."),
    Family("monitor_probe_failures_total", "counter", "Probes that were DOWN."),
    Family("monitor_probe_latency_seconds", "summary",
           "Latency of every answered probe: rate(_sum)/rate(_count) is the mean over any "
           "range, unlike the last-probe gauges."),
)
UPTIME = Family("monitor_uptime_ratio", "gauge",
                "Time up (UP or DEGRADED) over time in a known state, by window; time "
                "pending, paused or with the monitor stopped counts neither way.")
PHASE_HISTOGRAM = Family("monitor_phase_duration_seconds", "histogram",
                         "Every probe's phases (dns, connect, tls, ttfb, transfer) across "
                         "all targets, by kind.")


def escape(value: str) -> str:
    """A label value as the format wants it: backslash, quote and newline escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def label_text(pairs: Iterable[tuple[str, str]]) -> str:
    """`a="x",b="y"` for the pairs whose value is not empty (an empty label
    is the same as none to Prometheus)."""
    return ",".join(f'{name}="{escape(value)}"' for name, value in pairs if value)


def number(value: float) -> str:
    if math.isfinite(value):
        return repr(float(value))
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def render_series(series: TargetSeries) -> tuple[str, ...]:
    """One chunk per family in FAMILIES for this target (empty when it has
    nothing to say there). Durations to the microsecond's order (6
    significant digits): a full repr of every float made the body a third
    longer for digits no one reads. One tuple is the only container made
    (lists and generators per target fed the cyclic collector, whose full
    passes stalled the loop during a scrape)."""
    labels = series.labels
    last = series.last
    success = duration = lookup = http = status = icmp = cert = loss = ""
    if last is not None:
        success = f"probe_success{{{labels}}} {0 if last.status is Status.DOWN else 1}\n"
        latency = last.latency_ms
        if latency is not None:
            duration = f"probe_duration_seconds{{{labels}}} {latency / 1000:.6g}\n"
        phases = last.phases_ms
        dns = phases.get("dns")
        if dns is not None:
            lookup = f"probe_dns_lookup_time_seconds{{{labels}}} {dns / 1000:.6g}\n"
        if series.kind == "http":
            for ours, theirs in HTTP_PHASES:
                ms = phases.get(ours)
                if ms is not None:
                    http += (f'probe_http_duration_seconds{{{labels},phase="{theirs}"}} '
                             f"{ms / 1000:.6g}\n")
            status = f"probe_http_status_code{{{labels}}} {last.http_status or 0}\n"
        elif series.kind == "icmp":
            if dns is not None:
                icmp = f'probe_icmp_duration_seconds{{{labels},phase="resolve"}} {dns / 1000:.6g}\n'
            if latency is not None:
                icmp += f'probe_icmp_duration_seconds{{{labels},phase="rtt"}} {latency / 1000:.6g}\n'
    if series.cert_expiry is not None:
        cert = f"probe_ssl_earliest_cert_expiry{{{labels}}} {series.cert_expiry:.0f}\n"
    ratio = series.loss_ratio
    if ratio is not None:
        loss = f"monitor_loss_ratio{{{labels}}} {ratio:.6g}\n"
    return (
        success, duration, lookup, http, status, cert, icmp,
        f'monitor_state{{{labels},state="{series.state}"}} 1\n',
        f"monitor_state_change_timestamp_seconds{{{labels}}} {series.state_changed_at:.3f}\n",
        f"monitor_consecutive_failures{{{labels}}} {series.consecutive_failures}\n",
        loss,
        f"monitor_probes_total{{{labels}}} {series.probes}\n",
        f"monitor_probe_failures_total{{{labels}}} {series.failures}\n",
        # a sum that rate() differentiates: every digit kept
        f"monitor_probe_latency_seconds_sum{{{labels}}} {series.latency_sum!r}\n"
        f"monitor_probe_latency_seconds_count{{{labels}}} {series.latency_count}\n")


def render_targets(records: Sequence[TargetSeries], uptime: UptimeSource,
                   now: float) -> list[str]:
    """The per-target families for `records`, as one part per family,
    re-rendering only the targets whose figures changed since the last call
    (callers serialise calls). Parts, not one string: a join holds the GIL
    for as long as it copies, and one of 20 MB stalled the probes' loop."""
    rendered: list[tuple[str, ...]] = []
    keep = rendered.append
    for series in records:
        version = series.version            # read before: an update meanwhile renders again
        if series.cache_version != version:
            series.cache = render_series(series)
            series.cache_version = version
        keep(series.cache)
    # one column per family, each joined in one call: the format wants a
    # family's lines together, and a loop in Python per line cost 5x more
    columns = zip(*rendered) if rendered else ((),) * len(FAMILIES)
    out: list[str] = []
    for family, column in zip(FAMILIES, columns):
        out.append(family.header())
        out.append("".join(column))
    # uptime moves with time, not only with results: written fresh each scrape
    lines = [UPTIME.header()]
    ratio = uptime.ratio
    for index, window in enumerate(uptime.windows):
        for series in records:
            value = ratio(series, index, now)
            if value is not None:
                lines.append(f'monitor_uptime_ratio{{{series.labels},window="{window}"}} '
                             f"{value:.6g}\n")
    out.append("".join(lines))
    return out


def render_phase_histogram(histogram: PhaseHistogram, common: str) -> str:
    """`common`: labels every series carries (the location), or ""."""
    out = [PHASE_HISTOGRAM.header()]
    name = PHASE_HISTOGRAM.name
    edges = [number(edge) for edge in histogram.buckets] + ["+Inf"]
    prefix = f"{common}," if common else ""
    for kind, phase, counts, total in histogram.snapshot():
        labels = f'{prefix}kind="{escape(kind)}",phase="{phase}"'
        running = 0
        for edge, count in zip(edges, counts):
            running += count
            out.append(f'{name}_bucket{{{labels},le="{edge}"}} {running}\n')
        out.append(f"{name}_sum{{{labels}}} {number(total)}\n")
        out.append(f"{name}_count{{{labels}}} {running}\n")
    return "".join(out)
