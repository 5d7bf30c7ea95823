#!/usr/bin/env python3
"""CLI benchmark: the command users run, next to the bare loop, in the same run.

engine_bench.py measures the Engine in-process; this measures the product:
`python -m monitor run --headless --json --config F` as a subprocess whose
stdout (one JSON line per result) is read by this script through a pipe, as a
log shipper would. Against the same loopback target server (engine_bench's:
aiohttp on uvloop at 127.0.0.1, every path answered after 20 ms, its own
process) and with the same workload -- N http targets, each probed once a
second, 900 ms timeout, a fresh connection per request -- the clients run one
after the other, their order alternating between repeats:

  cli        `monitor run --headless --json`: results are the JSON lines whose
             `checked_at` falls in the window; latency error = latency_ms - 20;
             CPU is utime+stime from /proc/PID/stat over the window; RSS at its end.
  bare       engine_bench's bare aiohttp loop (its `_client --client bare` role).
  blackbox   blackbox_exporter, when a `blackbox_exporter` binary is on PATH:
             module http_2xx (timeout 900ms), driven by N scrapers of
             /probe?target=...&module=http_2xx once a second (a separate process
             whose CPU is not counted); latency = probe_duration_seconds.
  dashboard  (--dashboard) the full-screen `python -m monitor --config F
             --record R` in a private tmux server at 160x50; results are read
             from the record file R; CPU is the UI's plus the engine worker's.

Before each run the script waits (at most --idle-wait s) until the machine's
busy share over 2 s is below --idle-below % of all cores, and records what it
saw; during the window it records the host's busy CPU and what everyone else
used (others, % of one core, as engine_bench does).

"Kept its schedule" means >= 99 % of the scheduled probes (targets x window /
1 s) were counted from the client's results AND were seen by the target server
itself: the server notes the arrival time of every request, and after each run
GET /_count?from=T0&to=T1 gives its own count for the client's window [T0, T1).

Reported per target count and client: CPU seconds per 1000 probes as median
[min-max] over the repeats, the ratio to the bare loop (per pair, then the
median), probes counted / scheduled, server-seen / scheduled, kept yes/no per
run, latency error p50/p95/p99/max, RSS, host busy % -- and a verdict per
target count against the aims: CPU per probe <= 1.2x the bare loop's; the
schedule kept in every run where the bare loop kept it; error p99 <= 2x the
bare loop's.

    python bench/cli_bench.py [--targets 100 1000] [--seconds 30] [--warmup 5]
                              [--repeat 3] [--dashboard] [--idle-below 15]
                              [--idle-wait 60] [--profile DIR] [--json] [--save FILE]

Every loop here is bounded in count and time, there is an overall SIGALRM
limit, children die with this process (PR_SET_PDEATHSIG) and every exit path
kills every process it started (and its private tmux server). Traffic goes to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import dashboard_bench as db   # beside this script: tmux, Sampler, /proc helpers
import kinds                   # the target server and its /_count

eb = db.eb                     # engine_bench, as dashboard_bench loaded it: Child, bare client

HERE = Path(__file__).resolve().parent
DELAY_MS = kinds.DELAY_S["http"] * 1000.0   # the server's answer delay: the true latency
KEPT = 0.99                                  # share of scheduled probes that keeps the schedule
AIM_CPU, AIM_P99 = 1.2, 2.0
STDOUT_KEPT = 256 << 20                      # bytes of the CLI's stdout kept (the rest drained)
CLIENTS = ("cli", "bare", "blackbox", "dashboard")
BLACKBOX_CONFIG = """modules:
  http_2xx:
    prober: http
    timeout: 900ms
    http:
      preferred_ip_protocol: ip4
"""


# --- the server's own count -------------------------------------------------------------

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def server_seen(port: int, t0: float, t1: float) -> int:
    """Requests the target server itself received in [t0, t1) (time.time() values)."""
    url = f"http://{kinds.HOST}:{port}{kinds.COUNT_PATH}?from={t0!r}&to={t1!r}"
    with _NO_PROXY.open(url, timeout=5) as reply:
        data = json.loads(reply.read())
    if not data.get("complete", True):
        raise RuntimeError("the target server kept no more arrival times (kinds.COUNT_KEPT)")
    return int(data["window"])


# --- the idle gate ----------------------------------------------------------------------------

def wait_for_idle(below_pct: float, max_wait: float, sample_s: float = 2.0) -> dict[str, Any]:
    """Sample the machine's busy share (% of all cores) over `sample_s` until it is
    below `below_pct`, for at most `max_wait` seconds (at least one sample)."""
    begin = time.monotonic()
    busy = None
    for _ in range(int(max_wait / sample_s) + 1):
        before = eb._host_busy()
        time.sleep(sample_s)
        after = eb._host_busy()
        total = after[1] - before[1]
        busy = 100.0 * (after[0] - before[0]) / total if total else 0.0
        if busy < below_pct or time.monotonic() - begin + sample_s > max_wait:
            break
    return {"idle_ok": busy is not None and busy < below_pct,
            "idle_busy_pct": db._r(busy, 1),
            "idle_waited_s": round(time.monotonic() - begin, 1)}


# --- results from JSON lines --------------------------------------------------------------

def window_results(lines: Iterable[bytes | str], t0: float, t1: float) -> dict[str, Any]:
    """Result lines whose checked_at (the probe's start) is in [t0, t1)."""
    errors: list[float] = []
    probes = failures = unparsed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if item.get("event") != "result":
                continue
            at = datetime.fromisoformat(item["checked_at"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError, AttributeError):
            unparsed += 1
            continue
        if not t0 <= at < t1:
            continue
        probes += 1
        if item.get("ok") and item.get("latency_ms") is not None:
            errors.append(item["latency_ms"] - DELAY_MS)
        else:
            failures += 1
    return {"probes": probes, "failures": failures, "unparsed_lines": unparsed,
            **error_tails(errors)}


def error_tails(errors: list[float]) -> dict[str, Any]:
    ordered = sorted(errors)
    return {f"error_{name}_ms": db._r(eb._percentile(ordered, q), 3)
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))} | {
        "error_max_ms": db._r(ordered[-1] if ordered else None, 3)}


class PipeReader(threading.Thread):
    """Drains a pipe until EOF or a deadline, keeping the first STDOUT_KEPT bytes,
    so the program writing to it never blocks on us."""

    def __init__(self, fd: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.fd, self.deadline = fd, deadline
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def run(self) -> None:
        for _ in range(100_000_000):
            left = self.deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 1 << 20)
            except OSError:
                return
            if not chunk:
                return
            if self.kept < STDOUT_KEPT:
                self.chunks.append(chunk)
                self.kept += len(chunk)
            else:
                self.dropped += len(chunk)

    def lines(self) -> list[bytes]:
        return b"".join(self.chunks).split(b"\n")


# --- the blackbox_exporter scraper (a child role) -------------------------------------------

async def scrape(args: argparse.Namespace) -> dict[str, Any]:
    """N scrapers of blackbox_exporter's /probe, once a second each, on one keep-alive
    session (as Prometheus scrapes); latency = the probe_duration_seconds it reports."""
    import aiohttp

    loop = asyncio.get_running_loop()
    window = eb.Window(DELAY_MS)
    skips = 0
    begin = loop.time()
    end = begin + args.warmup + args.seconds + 2 * eb.INTERVAL_S
    max_rounds = math.ceil(args.warmup + args.seconds) + 5
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, use_dns_cache=False))
    base = f"http://{kinds.HOST}:{args.bb_port}/probe"
    duration = re.compile(rb"^probe_duration_seconds ([0-9.eE+-]+)$", re.M)

    async def scraper(i: int, first: float) -> None:
        nonlocal skips
        due = first
        params = {"module": "http_2xx", "target": f"http://{kinds.HOST}:{args.port}/t{i}"}
        for _ in range(max_rounds):
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if loop.time() >= end:
                return
            ok, latency_ms = False, None
            try:
                async with asyncio.timeout(1.0):   # a scrape_timeout of 1 s
                    async with session.get(base, params=params) as resp:
                        body = await resp.read()
                ok = b"\nprobe_success 1" in body
                found = duration.search(body)
                latency_ms = float(found.group(1)) * 1000.0 if found else None
            except Exception:
                pass
            window.record(ok, latency_ms)
            due += eb.INTERVAL_S
            now = loop.time()
            if due <= now:
                missed = int((now - due) // eb.INTERVAL_S) + 1
                skips += missed
                due += missed * eb.INTERVAL_S

    tasks = [asyncio.create_task(scraper(i, begin + eb.INTERVAL_S * i / args.targets))
             for i in range(args.targets)]
    try:
        skipped = await eb._measure(args, window, None, lambda: skips)
        return window.finish("blackbox-scraper", args.targets, {"skips": skipped})
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()


def scrape_main(args: argparse.Namespace) -> int:
    eb._die_with_parent()
    eb._hard_deadline(args.deadline)
    with asyncio.Runner(loop_factory=eb._new_loop) as runner:
        result = runner.run(scrape(args))
    eb._emit({"event": "result", **result})
    return 0


# --- the bench ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((kinds.HOST, 0))
        return int(sock.getsockname()[1])


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.server: Any = None
        self.port = 0
        self.server_pid = 0
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dash: Any = None          # dashboard_bench.Bench: tmux and its panes
        self.blackbox = shutil.which("blackbox_exporter")
        self.serial = 0

    # -- setup and teardown

    def start_server(self, life: float) -> None:
        self.server = eb.Child([sys.executable, str(HERE / "engine_bench.py"), "_server",
                                "--kind", "http", "--port", "0", "--deadline", str(life)])
        hello = self.server.read(30.0)
        self.port, self.server_pid = hello["port"], hello["pid"]

    def cleanup(self) -> None:
        if self.dash is not None:
            self.dash.cleanup()   # its panes, their processes and the private tmux server
        for proc in self.procs:
            self._stop(proc, 3.0)
        if self.server is not None:
            self.server.close()

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes], wait: float) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _spawn(self, argv: list[str], stdout: Any, stderr: Any,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                cwd=self.workdir, env=env, preexec_fn=db._pdeathsig)
        self.procs.append(proc)
        return proc

    def config(self, targets: int) -> Path:
        keepalive = self.args.keepalive
        path = self.workdir / f"http{targets}{'-keepalive' if keepalive else ''}.toml"
        if not path.exists():
            lines = ["[settings]", 'interval = "1s"', 'timeout = "900ms"', *self.args.setting, ""]
            for i in range(targets):
                lines += [*kinds.target_lines("http", i, self.port),
                          *(["keepalive = true"] if keepalive else []), ""]
            path.write_text("\n".join(lines))
        return path

    def _count_window(self, row: dict[str, Any]) -> None:
        """What the server itself received in the client's window [t0, t1), asked
        once the window's last requests have arrived."""
        time.sleep(max(0.0, row["t1"] + 0.1 - time.time()))
        row["server_seen"] = server_seen(self.port, row["t0"], row["t1"])

    # -- one run of one client

    def run(self, client: str, targets: int, rep: int, position: int) -> dict[str, Any]:
        gate = wait_for_idle(self.args.idle_below, self.args.idle_wait)
        if client == "cli" or client.startswith("cli-"):
            row = self.run_cli(targets, *self.args.also_cli.get(client, (sys.executable, None)))
        elif client == "bare":
            row = self.run_bare(targets)
        elif client == "blackbox":
            row = self.run_blackbox(targets)
        else:
            row = self.run_dashboard(targets)
        row.update(gate)
        row.update({"client": client, "targets": targets, "run": rep + 1, "position": position})
        row["scheduled"] = max(1, round(targets * row["window_s"] / eb.INTERVAL_S))
        row["probes_pct"] = db._r(100.0 * row["probes"] / row["scheduled"], 2)
        row["server_pct"] = db._r(100.0 * row["server_seen"] / row["scheduled"], 2)
        row["kept"] = (row["probes"] >= KEPT * row["scheduled"]
                       and row["server_seen"] >= KEPT * row["scheduled"])
        if row.get("cpu_s") is not None and row["probes"]:
            row["cpu_s_per_1000"] = round(row["cpu_s"] / row["probes"] * 1000.0, 4)
        return row

    def run_cli(self, targets: int, python: str = sys.executable,
                source: str | None = None) -> dict[str, Any]:
        """`monitor run --headless --json` under `python`; with `source`, the
        monitor package is imported from that directory (a snapshot of another
        commit) instead of the installed one."""
        args = self.args
        err = self.workdir / "cli.err"
        argv = [python, "-m", "monitor", "run", "--headless", "--json",
                "--config", str(self.config(targets))]
        if args.profile:   # the whole life of the process, start-up and warm-up included
            self.serial += 1
            out = os.path.join(args.profile, f"cli-{targets}-{self.serial}.pstats")
            argv[1:2] = ["-m", "cProfile", "-o", out, "-m"]
        # its history and service files in the scratch directory, removed with it
        # (same filesystem as the user's data dir here), not left behind per run
        env = {**os.environ, "XDG_DATA_HOME": str(self.workdir / "data"),
               "XDG_STATE_HOME": str(self.workdir / "state")}
        if source is not None:
            env["PYTHONPATH"] = source
        with open(err, "wb") as stderr:
            proc = self._spawn(argv, subprocess.PIPE, stderr, env)
        assert proc.stdout is not None
        startup = 30.0 + targets / 100.0
        reader = PipeReader(proc.stdout.fileno(),
                            time.monotonic() + startup + args.warmup + args.seconds + 30.0)
        reader.start()
        try:
            deadline = time.monotonic() + startup
            while reader.kept == 0:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("monitor run --headless --json printed nothing: "
                                       + err.read_text(errors="replace")[-800:])
                time.sleep(0.05)
            time.sleep(args.warmup)
            sampler = db.Sampler({"monitor": proc.pid, "server": self.server_pid,
                                  "bench": os.getpid()})
            sched0, wall0 = eb.loop_sched(proc.pid), time.monotonic()
            sampler.begin()
            time.sleep(args.seconds)
            row = sampler.end()
            row.update(eb.sched_fields(sched0, eb.loop_sched(proc.pid), time.monotonic() - wall0))
            # with its children (the history writer): CPU likewise, see db.Sampler
            row["rss_mib"] = db._tree_mib(proc.pid)
            row["hwm_mib"] = db._tree_mib(proc.pid, "VmHWM")
            if proc.poll() is not None:
                raise RuntimeError("monitor run exited during the window: "
                                   + err.read_text(errors="replace")[-800:])
            time.sleep(eb.TIMEOUT_S + 0.5)   # the window's last probes finish and are printed
        finally:
            self._stop(proc, 10.0)
            reader.join(10.0)
        row["exit_code"] = proc.returncode
        lines = reader.lines()
        row["stdout_lines"] = len(lines) - 1      # over its whole life, start-up included
        row["stdout_bytes_per_line"] = round(reader.kept / max(1, len(lines) - 1))
        row["stdout_dropped_bytes"] = reader.dropped
        row.update(window_results(lines, row["t0"], row["t1"]))
        self._count_window(row)
        row["cpu_s"] = row.pop("monitor_cpu_s")
        row["cpu_pct"] = row.pop("monitor_cpu_pct")
        row["others_cpu_pct"] = row.pop("other_cpu_pct")  # bench (its pipe reader) excluded
        return row

    def run_bare(self, targets: int) -> dict[str, Any]:
        args = self.args
        settings = argparse.Namespace(kind="http", seconds=args.seconds, warmup=args.warmup,
                                      prefill=False)
        row = eb.run_client(str(HERE / "engine_bench.py"), "bare", targets, self.port, settings,
                            [self.server], args.profile)
        self._count_window(row)
        row.pop("error_p90_ms", None)
        return row

    def run_blackbox(self, targets: int) -> dict[str, Any]:
        args = self.args
        assert self.blackbox is not None
        conf = self.workdir / "blackbox.yml"
        conf.write_text(BLACKBOX_CONFIG)
        bb_port = _free_port()
        cpu: dict[str, float] = {}
        with open(self.workdir / "blackbox.log", "ab") as log:
            bb = self._spawn([self.blackbox, f"--config.file={conf}",
                              f"--web.listen-address={kinds.HOST}:{bb_port}"], log, log)
        try:
            for _ in range(150):   # up to 15 s until it answers
                try:
                    with _NO_PROXY.open(f"http://{kinds.HOST}:{bb_port}/-/healthy", timeout=1):
                        break
                except OSError:
                    if bb.poll() is not None:
                        raise RuntimeError(f"blackbox_exporter exited ({bb.returncode})") from None
                    time.sleep(0.1)
            else:
                raise RuntimeError("blackbox_exporter did not answer in 15 s")

            def on_window(phase: str) -> None:
                cpu[phase] = eb._proc_cpu(bb.pid)
                if phase == "close":
                    cpu["rss"] = db._mib(bb.pid) or 0.0
                    cpu["hwm"] = db._mib(bb.pid, "VmHWM") or 0.0

            scraper = eb.Child([sys.executable, str(Path(__file__).resolve()), "_scrape",
                                "--port", str(self.port), "--bb-port", str(bb_port),
                                "--targets", str(targets), "--seconds", str(args.seconds),
                                "--warmup", str(args.warmup),
                                "--deadline", str(args.warmup + args.seconds + 40.0)])
            row = eb.measure_child(scraper, "blackbox", [self.server], args.warmup + 30.0,
                                   args.seconds + 30.0, on_window)
        finally:
            self._stop(bb, 5.0)
        self._count_window(row)
        row["scraper_cpu_pct"] = row.pop("cpu_pct")
        row["scraper_rss_mib"] = row.pop("rss_mib")
        row["cpu_s"] = cpu["close"] - cpu["open"]
        row["cpu_pct"] = db._r(100.0 * row["cpu_s"] / row["window_s"], 1)
        row["rss_mib"], row["hwm_mib"] = cpu["rss"], cpu["hwm"]
        if row.get("others_cpu_pct") is not None:
            row["others_cpu_pct"] = db._r(max(0.0, row["others_cpu_pct"] - row["cpu_pct"]), 1)
        for key in ("error_p90_ms", "cpu_s_per_1000", "gc_runs", "gc_max_ms", "full_gc_ms",
                    "gc_tracked"):
            row.pop(key, None)
        return row

    def run_dashboard(self, targets: int) -> dict[str, Any]:
        args = self.args
        if self.dash is None:
            self.dash = db.Bench(argparse.Namespace(py_spy=None), self.workdir)
            self.dash.server_pid, self.dash.port = self.server_pid, self.port
        self.serial += 1
        record = self.workdir / f"record-{targets}-{self.serial}.jsonl"
        record.write_bytes(b"")
        name, control, ui, worker = self.dash.open_dashboard(
            "cli", self.config(targets), record, 60.0 + targets / 50.0)
        try:
            time.sleep(args.warmup)
            sampler = db.Sampler({"ui": ui, "engine": worker, "tmux": self.dash.tmux.server_pid(),
                                  "server": self.server_pid})
            sampler.begin()
            time.sleep(args.seconds)
            row = sampler.end()
            row["ui_rss_mib"], row["engine_rss_mib"] = db._mib(ui), db._mib(worker)
            control.check_alive()
            time.sleep(eb.TIMEOUT_S + 0.5)   # the window's last probes finish and are recorded
        finally:
            self.dash.close_pane(name, control, "q", [ui, worker])
        with open(record, "rb") as handle:
            row.update(window_results(handle, row["t0"], row["t1"]))
        self._count_window(row)
        row["cpu_s"] = (row.pop("ui_cpu_s") or 0.0) + (row.pop("engine_cpu_s") or 0.0)
        row["cpu_pct"] = db._r(100.0 * row["cpu_s"] / row["window_s"], 1)
        row["rss_mib"] = db._r((row["ui_rss_mib"] or 0.0) + (row["engine_rss_mib"] or 0.0), 1)
        row["others_cpu_pct"] = row.pop("other_cpu_pct")
        return row


# --- summary and report ---------------------------------------------------------------------------

def _pair_ratios(rows: list[dict[str, Any]], client: str, targets: int, key: str) -> list[float]:
    """client/bare for `key`, per repeat (the pair ran back to back)."""
    bare = {r["run"]: r.get(key) for r in rows if r["client"] == "bare" and r["targets"] == targets}
    out = []
    for row in rows:
        if row["client"] == client and row["targets"] == targets:
            base, value = bare.get(row["run"]), row.get(key)
            if base and value is not None:
                out.append(value / base)
    return out


def _spread(values: list[float | None]) -> dict[str, float | None]:
    present = sorted(v for v in values if v is not None)
    if not present:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(present), "min": present[0], "max": present[-1]}


def summarise(rows: list[dict[str, Any]], targets_list: list[int],
              clients: list[str]) -> list[dict[str, Any]]:
    out = []
    for targets in targets_list:
        for client in clients:
            mine = sorted((r for r in rows if r["client"] == client and r["targets"] == targets),
                          key=lambda r: r["run"])
            if not mine:
                continue
            out.append({
                "targets": targets, "client": client, "runs": len(mine),
                "cpu_s_per_1000": _spread([r.get("cpu_s_per_1000") for r in mine]),
                "ratio": _spread(_pair_ratios(rows, client, targets, "cpu_s_per_1000")),
                "probes_pct": _spread([r["probes_pct"] for r in mine]),
                "server_pct": _spread([r["server_pct"] for r in mine]),
                "kept": [r["kept"] for r in mine],
                "failures": sum(r["failures"] for r in mine),
                "error_p50_ms": _spread([r["error_p50_ms"] for r in mine]),
                "error_p95_ms": _spread([r["error_p95_ms"] for r in mine]),
                "error_p99_ms": _spread([r["error_p99_ms"] for r in mine]),
                "error_max_ms": _spread([r["error_max_ms"] for r in mine]),
                "p99_ratio": _spread(_pair_ratios(rows, client, targets, "error_p99_ms")),
                "rss_mib": _spread([r.get("rss_mib") for r in mine]),
                "host_busy_pct": _spread([r.get("host_busy_pct") for r in mine]),
                "others_cpu_pct": _spread([r.get("others_cpu_pct") for r in mine]),
                "idle_ok": sum(1 for r in mine if r["idle_ok"]),
            })
    return out


def step_up(bench: Bench, clients: list[str], steps: list[int]) -> list[dict[str, Any]]:
    """--max: each client at each target count in turn, up to its first count
    that does not keep its schedule (one step past what it can sustain)."""
    rows: list[dict[str, Any]] = []
    for position, client in enumerate(clients, 1):
        for targets in steps:
            if not bench.args.json:
                print(f"… {targets} targets, {client} (stepping up)", file=sys.stderr, flush=True)
            row = bench.run(client, targets, 0, position)
            rows.append(row)
            if not row["kept"]:
                break
    return rows


def ceilings(rows: list[dict[str, Any]], clients: list[str]) -> list[str]:
    """--max: the highest probe rate each client kept, and where it fell behind."""
    lines = []
    for client in clients:
        mine = [r for r in rows if r["client"] == client]
        kept = [r["targets"] for r in mine if r["kept"]]
        failed = [r for r in mine if not r["kept"]]
        held = f"kept its schedule up to {max(kept)} probes/s" if kept else "kept no step"
        fell = (f"; fell behind at {failed[0]['targets']} ({_f(failed[0]['probes_pct'], 1)} % "
                f"of scheduled probes, error p50 {_f(failed[0]['error_p50_ms'])} ms)"
                if failed else "; never fell behind (add higher --targets)")
        lines.append(f"**{client}**: {held}{fell}.")
    return lines


def verdicts(rows: list[dict[str, Any]], summary: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in summary:
        if not item["client"].startswith("cli"):
            continue
        targets = item["targets"]
        ratio, p99 = item["ratio"], item["p99_ratio"]
        cpu_met = "met" if (ratio["median"] or 0.0) <= AIM_CPU else "NOT met"
        p99_met = "met" if (p99["median"] or 0.0) <= AIM_P99 else "NOT met"
        kept = {(r["client"], r["run"]): r["kept"] for r in rows if r["targets"] == targets}
        bare = {run: k for (client, run), k in kept.items() if client == "bare"}
        cli = {run: k for (client, run), k in kept.items() if client == item["client"]}
        judged = [run for run, kept in bare.items() if kept and run in cli]
        held = sum(1 for run in judged if cli[run])
        parts = []
        if ratio["median"] is None:
            parts.append("CPU ratio: –")
        else:
            parts.append(f"CPU per probe {ratio['median']:.2f}x the bare loop "
                         f"[{ratio['min']:.2f}–{ratio['max']:.2f}] "
                         f"({cpu_met}, aim ≤ {AIM_CPU})")
        if judged:
            parts.append(f"schedule kept in {held} of the {len(judged)} run(s) where the bare "
                         f"loop kept it ({'met' if held == len(judged) else 'NOT met'})")
        else:
            parts.append("schedule: not judged (the bare loop kept it in no run)")
        if p99["median"] is None:
            parts.append("error p99 ratio: –")
        else:
            parts.append(f"error p99 {p99['median']:.2f}x the bare loop's "
                         f"[{p99['min']:.2f}–{p99['max']:.2f}] "
                         f"({p99_met}, aim ≤ {AIM_P99:g})")
        busy = item["runs"] - item["idle_ok"]
        noise = (f"; the machine was not idle before {busy} of {item['runs']} cli run(s), "
                 f"others used {_f(item['others_cpu_pct']['median'], 0)} % of a core (median)"
                 if busy else "")
        who = "" if item["client"] == "cli" else f" ({item['client']})"
        lines.append(f"**{targets} targets{who}**: " + "; ".join(parts) + noise + ".")
    return lines


def _f(value: Any, digits: int = 2) -> str:
    return db._f(value, digits)


def _mm(spread: dict[str, float | None], digits: int = 2) -> str:
    """median [min–max]"""
    if spread["median"] is None:
        return "–"
    if spread["min"] == spread["max"]:
        return _f(spread["median"], digits)
    low, high = _f(spread["min"], digits), _f(spread["max"], digits)
    return f"{_f(spread['median'], digits)} [{low}–{high}]"


def markdown(result: dict[str, Any]) -> str:
    m, s = result["facts"], result["settings"]
    out = [f"CLI benchmark, {m['date']}: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, "
           f"Python {m['python']}, aiohttp {m['aiohttp']}, uvloop {m['uvloop']}, "
           f"monitor {m['monitor']} (commit {m['commit']}); blackbox_exporter: "
           f"{result['blackbox']}; http targets at 1 s, timeout 900 ms, server delay "
           f"{DELAY_MS:g} ms; warm-up {s['warmup']:g} s, window {s['seconds']:g} s, "
           f"{s['repeat']} repeat(s), order alternating; idle gate: busy < "
           f"{s['idle_below']:g} % of the machine over 2 s, waiting up to {s['idle_wait']:g} s.",
           "",
           "| targets | client | runs | CPU s / 1000 probes | ratio vs bare | probes / scheduled % "
           "| server-seen / scheduled % | kept ≥ 99 % | failures | error p50 ms | error p95 ms "
           "| error p99 ms | p99 vs bare | error max ms | RSS MiB | host busy % | others % "
           "| idle before |",
           "|---:|---|---:|---:|---:|---:|---:|---|" + "---:|" * 10]
    for item in result["summary"]:
        kept = " ".join("yes" if k else "no" for k in item["kept"])
        out.append(
            f"| {item['targets']} | {item['client']} | {item['runs']} "
            f"| {_mm(item['cpu_s_per_1000'], 3)} | {_mm(item['ratio'])} "
            f"| {_mm(item['probes_pct'], 1)} | {_mm(item['server_pct'], 1)} | {kept} "
            f"| {item['failures']} | {_mm(item['error_p50_ms'])} | {_mm(item['error_p95_ms'])} "
            f"| {_mm(item['error_p99_ms'])} | {_mm(item['p99_ratio'])} "
            f"| {_f(item['error_max_ms']['max'])} | {_mm(item['rss_mib'], 1)} "
            f"| {_mm(item['host_busy_pct'], 0)} | {_mm(item['others_cpu_pct'], 0)} "
            f"| {item['idle_ok']}/{item['runs']} |")
    out += ["", "Medians [min–max] over the repeats; ratios are taken per repeat against the "
            "bare loop run next to it, then their median; error max is the largest of all runs; "
            "host busy and others are % of one core during the window (others: everything but "
            "the client, the target server and this script); idle before: runs that started "
            "after the gate saw an idle machine. blackbox: CPU and RSS of blackbox_exporter "
            "alone (its scrapers' are in the JSON); dashboard: UI + engine worker.", ""]
    out += result["verdicts"]
    out += ["", "Per run:", "",
            "| targets | run | # | client | CPU s / 1000 | client CPU % | probes | scheduled "
            "| server seen | kept | failures | p50 | p95 | p99 | max | RSS MiB | server CPU % "
            "| host busy % | others % | machine busy before % | loop runs/s | ms per run "
            "| loop waited for a CPU ms/s |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|" + "---:|" * 13]
    for row in result["rows"]:
        cpu = _f(row.get("cpu_pct"), 1)
        if row["client"] == "dashboard":
            cpu += f" (UI {_f(row.get('ui_cpu_pct'), 1)})"
        out.append(
            f"| {row['targets']} | {row['run']} | {row['position']} | {row['client']} "
            f"| {_f(row.get('cpu_s_per_1000'), 3)} | {cpu} | {row['probes']} "
            f"| {row['scheduled']} | {row['server_seen']} | {'yes' if row['kept'] else 'no'} "
            f"| {row['failures']} | {_f(row['error_p50_ms'])} | {_f(row['error_p95_ms'])} "
            f"| {_f(row['error_p99_ms'])} | {_f(row['error_max_ms'])} "
            f"| {_f(row.get('rss_mib'), 1)} "
            f"| {_f(row.get('server_cpu_pct'), 1)} | {_f(row.get('host_busy_pct'), 0)} "
            f"| {_f(row.get('others_cpu_pct'), 0)} | {_f(row['idle_busy_pct'], 0)} "
            f"| {_f(row.get('loop_runs_per_s'), 0)} | {_f(row.get('loop_ms_per_run'), 2)} "
            f"| {_f(row.get('loop_cpu_wait_ms_per_s'), 1)} |")
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------

def overall_limit(args: argparse.Namespace, clients: list[str]) -> float:
    per_run = args.idle_wait + 4.0 + args.warmup + args.seconds + 45.0
    limit = 60.0
    for targets in args.targets:
        for client in clients:
            extra = targets / 100.0 + (60.0 + targets / 50.0 if client == "dashboard" else 0.0)
            limit += args.repeat * (per_run + extra)
    return limit


def run(args: argparse.Namespace) -> int:
    import importlib.util
    missing = [n for n in ("uvloop", "aiohttp", "monitor")
               if importlib.util.find_spec(n) is None]
    if missing:
        print(f"cli_bench: {', '.join(missing)} not importable; from the repository root: "
              "pip install -e .", file=sys.stderr)
        return 2
    if args.dashboard and not shutil.which("tmux"):
        print("cli_bench: --dashboard needs tmux", file=sys.stderr)
        return 2
    if args.profile:
        args.profile = os.path.abspath(args.profile)
        os.makedirs(args.profile, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cli-bench-"))
    bench = Bench(args, workdir)
    clients = ["cli", *args.also_cli, "bare"] + (["blackbox"] if bench.blackbox else []) \
        + (["dashboard"] if args.dashboard else [])
    limit = args.timeout or overall_limit(args, clients)
    result: dict[str, Any] = {
        "facts": db.facts(),
        "command": shlex.join(["python", "bench/cli_bench.py", *sys.argv[1:]]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "save")}
        | {"interval_s": eb.INTERVAL_S, "timeout_s": eb.TIMEOUT_S, "delay_ms": DELAY_MS},
        "limit_s": limit,
        "blackbox": bench.blackbox or "not installed (no blackbox_exporter on PATH)"}

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise db.Overtime(f"benchmark exceeded its overall limit of {limit:.0f}s")

    signal.signal(signal.SIGALRM, on_alarm)
    def on_term(_signum: int, _frame: Any) -> None:
        raise db.Overtime("stopped by SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(math.ceil(limit))
    rows: list[dict[str, Any]] = []
    try:
        bench.start_server(limit + 30.0)
        if args.max:
            rows = step_up(bench, clients, sorted(args.targets))
        for rep in range(0 if args.max else args.repeat):
            order = clients if rep % 2 == 0 else clients[::-1]
            for targets in args.targets:
                for position, client in enumerate(order, 1):
                    if not args.json:
                        print(f"… {targets} targets, {client} (run {rep + 1}/{args.repeat})",
                              file=sys.stderr, flush=True)
                    rows.append(bench.run(client, targets, rep, position))
    finally:
        signal.alarm(0)
        bench.cleanup()
        if args.keep:
            print(f"cli_bench: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for row in rows:
        for key in [k for k in row if k.endswith("_cpu_s")]:
            row[key] = db._r(row[key], 4)
        row["cpu_s"] = db._r(row.get("cpu_s"), 4)
        row["ratio"] = None
        base = next((r for r in rows if r["client"] == "bare" and r["targets"] == row["targets"]
                     and r["run"] == row["run"]), None)
        if base and base.get("cpu_s_per_1000") and row.get("cpu_s_per_1000"):
            row["ratio"] = round(row["cpu_s_per_1000"] / base["cpu_s_per_1000"], 3)
    result["rows"] = rows
    result["summary"] = summarise(rows, args.targets, clients)
    result["verdicts"] = ceilings(rows, clients) if args.max else verdicts(rows, result["summary"])
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result))
        print(f"\nCommand: `{result['command']}`")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_scrape":   # internal role: blackbox_exporter's scrapers
        role = argparse.ArgumentParser(prog="cli_bench _scrape")
        for name in ("--port", "--bb-port", "--targets"):
            role.add_argument(name, type=int, required=True)
        for name in ("--seconds", "--warmup", "--deadline"):
            role.add_argument(name, type=float, required=True)
        return scrape_main(role.parse_args(argv[1:]))

    parser = argparse.ArgumentParser(
        description="`monitor run --headless --json` as users run it, next to the bare loop "
                    "(and blackbox_exporter when installed) against a 20 ms loopback target.")
    parser.add_argument("--targets", type=int, nargs="+", default=[100, 1000],
                        help="target counts (default: 100 1000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before it (5)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every client at every target count, order alternating (3)")
    parser.add_argument("--dashboard", action="store_true",
                        help="also run the dashboard (`monitor --config F --record R`) in tmux")
    parser.add_argument("--idle-below", type=float, default=15.0,
                        help="idle gate: the machine's busy %% over 2 s, of all cores (15)")
    parser.add_argument("--idle-wait", type=float, default=60.0,
                        help="idle gate: wait at most this long before each run, then run "
                             "anyway and say so (60; 0: one 2 s sample)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard overall limit in seconds (default: from the workload)")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile the cli (its whole life, into DIR/cli-N-K.pstats) and the "
                             "bare loop (its window, DIR/bare-N.pstats); inflates the CPU "
                             "figures: do not compare them")
    parser.add_argument("--also-cli", action="append", default=[], metavar="LABEL=PYTHON[@SRC]",
                        help="also run the cli under another interpreter (e.g. a venv without "
                             "uvloop), as client cli-LABEL; with @SRC, import monitor from the "
                             "directory SRC (a snapshot of another commit); repeatable")
    parser.add_argument("--setting", action="append", default=[], metavar="LINE",
                        help='another [settings] line for the cli\'s config, e.g. '
                             '\'history_db = "off"\' (repeatable)')
    parser.add_argument("--keepalive", action="store_true",
                        help="the cli's targets reuse connections (keepalive = true); the "
                             "bare loop still opens a fresh one per request")
    parser.add_argument("--max", action="store_true",
                        help="the one-process ceiling: run each client at each --targets count "
                             "(1 probe/s each) in increasing order, once, until it falls behind "
                             "(< 99 %% of scheduled probes counted or seen by the server)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON result to FILE")
    args = parser.parse_args(argv)
    variants: dict[str, tuple[str, str | None]] = {}
    for spec in args.also_cli:
        label, _, rest = spec.partition("=")
        python, _, source = rest.partition("@")
        if not label or not python or not shutil.which(python):
            parser.error(f"--also-cli {spec!r}: expected LABEL=PYTHON[@SRC], PYTHON runnable")
        python = os.path.abspath(python) if os.sep in python else str(shutil.which(python))
        variants[f"cli-{label}"] = (python, os.path.abspath(source) if source else None)
    args.also_cli = variants
    if args.seconds <= 0 or args.warmup < 0 or args.repeat < 1 or min(args.targets) < 1 \
            or args.idle_wait < 0:
        parser.error("--seconds > 0, --warmup >= 0, --repeat >= 1, --targets >= 1, "
                     "--idle-wait >= 0")
    try:
        return run(args)
    except (db.Overtime, RuntimeError, TimeoutError, OSError) as exc:   # cleaned up by then
        print(f"cli_bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
