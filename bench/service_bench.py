#!/usr/bin/env python3
"""Service benchmark: what attached viewers cost `monitor serve`.

One `monitor serve --json` process probes N http targets once a second (the
loopback target server of engine_bench: every path answered after 20 ms, its
own process), and this script alternates windows with no viewer and with V
viewers attached to its socket, in the same run (order alternating between
pairs). A viewer here is a thread that connects and reads every byte (the
service's side of a dashboard; decoding is the dashboard's own CPU).

Per window: the service's CPU (utime+stime from /proc, % of one core), the
latency error of its results whose checked_at falls in the window (latency -
20 ms, p50/p99, from its JSON lines), probes counted, and bytes per second per
viewer (the snapshot on attaching is reported apart). Aim: CPU and p99 with
viewers <= 1.1x without.

    python bench/service_bench.py [--targets 1000] [--viewers 10] [--seconds 20]
                                  [--warmup 8] [--pairs 2] [--json]

Bounded: every loop counts or has a deadline, an overall SIGALRM limit, and
every process started is stopped on every exit path. Traffic: 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cli_bench as cb          # beside this script: the target server, configs, JSON windows

db = cb.db
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from monitor.engine.wire import FrameReader  # noqa: E402
from monitor.service.paths import socket_name  # noqa: E402


class Viewer(threading.Thread):
    """Connects to the service and reads everything until told to stop."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(0.5)
        self.bytes = 0
        self.stop = threading.Event()
        self.snapshot_bytes = 0          # the first snapshot, once its end came
        self.attached = threading.Event()
        self._frames: FrameReader | None = FrameReader()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.bytes += len(chunk)
            if self._frames is not None and any(
                    m[0] == "snapshot_end" for m in self._frames.feed(chunk)):
                self._frames, self.snapshot_bytes = None, self.bytes   # the stream only, now
                self.attached.set()

    def close(self) -> None:
        self.stop.set()
        self.join(2)
        self.sock.close()


def window(pid: int, reader: cb.PipeReader, seconds: float, viewers: list[Viewer]
           ) -> dict[str, Any]:
    cpu0, got0 = db._cpu(pid), [v.bytes for v in viewers]
    t0 = time.time()
    time.sleep(seconds)
    t1 = time.time()
    cpu1, got1 = db._cpu(pid), [v.bytes for v in viewers]
    per_viewer = [(b - a) / (t1 - t0) for a, b in zip(got0, got1)]
    return {"viewers": len(viewers), "cpu_pct": db._r(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "bytes_per_s_per_viewer": db._r(statistics.mean(per_viewer), 0) if viewers else None,
            **cb.window_results(reader.lines(), t0, t1)}


def attach(path: Path, count: int) -> tuple[list[Viewer], float, float]:
    """`count` viewers attached; the snapshot's bytes (each) and how long it took."""
    began = time.monotonic()
    viewers = [Viewer(path) for _ in range(count)]
    for viewer in viewers:
        viewer.start()
    for viewer in viewers:
        viewer.attached.wait(max(0.0, 60 - (time.monotonic() - began)))
    took = time.monotonic() - began
    time.sleep(1.0)   # past the snapshots' tail
    return viewers, statistics.mean(v.snapshot_bytes for v in viewers), took


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="svcb-", dir="/tmp"))
    bench = cb.Bench(argparse.Namespace(keepalive=False), workdir)
    service: subprocess.Popen[bytes] | None = None
    try:
        life = args.warmup + args.pairs * 2 * (args.seconds + 35) + 60
        bench.start_server(life)
        config = bench.config(args.targets)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(workdir), HOME=str(workdir))
        env.pop("NOTIFY_SOCKET", None)
        service = bench._spawn([sys.executable, "-m", "monitor", "serve", "--json",
                                "--stats-every", "0", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert service.stdout is not None
        reader = cb.PipeReader(service.stdout.fileno(), time.monotonic() + life)
        reader.start()
        path = workdir / "monitor" / socket_name(config)
        for _ in range(300):
            if path.exists():
                break
            time.sleep(0.1)
        time.sleep(args.warmup)
        rows, snapshots = [], []
        for pair in range(args.pairs):
            for count in ((0, args.viewers) if pair % 2 == 0 else (args.viewers, 0)):
                viewers: list[Viewer] = []
                if count:
                    viewers, size, took = attach(path, count)
                    snapshots.append({"bytes": round(size), "seconds": round(took, 2)})
                rows.append(window(service.pid, reader, args.seconds, viewers))
                for viewer in viewers:
                    viewer.close()
                time.sleep(1.0)
        return {"targets": args.targets, "viewers": args.viewers, "rows": rows,
                "snapshots": snapshots, "summary": summary(rows)}
    finally:
        if service is not None:
            bench._stop(service, 5.0)
        bench.cleanup()


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str, attached: bool) -> float | None:
        values = [r[key] for r in rows if bool(r["viewers"]) is attached and r[key] is not None]
        return statistics.median(values) if values else None
    out: dict[str, Any] = {}
    for key in ("cpu_pct", "error_p99_ms"):
        alone, watched = median(key, False), median(key, True)
        out[key] = {"no_viewers": alone, "viewers": watched,
                    "ratio": db._r(watched / alone, 2) if alone and watched else None}
    out["bytes_per_s_per_viewer"] = median("bytes_per_s_per_viewer", True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    limit = args.warmup + args.pairs * 2 * (args.seconds + 35) + 120
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("overall limit")))
    signal.alarm(int(limit))
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for row in result["rows"]:
        print(f"viewers {row['viewers']:3}  cpu {row['cpu_pct']:6}%  probes {row['probes']:6}  "
              f"error p50 {row['error_p50_ms']} p99 {row['error_p99_ms']} ms  "
              f"bytes/s/viewer {row['bytes_per_s_per_viewer']}")
    print("snapshots:", result["snapshots"])
    print("summary:", json.dumps(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
