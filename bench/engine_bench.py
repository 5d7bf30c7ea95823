#!/usr/bin/env python3
"""Engine benchmark: monitor's Engine against a bare client loop, same workload.

An in-process microbenchmark of the Engine (callbacks that only count), not of
the command users run. A loopback target server (its own process, so its CPU is
not counted) answers every request after 20 ms. Two clients run one after the
other, each in its own process, against that server with the same workload: N
targets probed once a second (start to start, first starts staggered across
the second), a fresh connection per request, 900 ms timeout, on uvloop.

  (a) engine: monitor's Engine with N targets of `--kind` (http by default)
  (b) bare:   N asyncio tasks around the shortest client of that kind (http:
      one aiohttp ClientSession; dns: dnspython's asyncquery.udp; tls:
      asyncio.open_connection with ssl) -- see bench/kinds.py

After a warm-up, each client measures a fixed window: CPU seconds (getrusage
user+sys) per 1000 completed probes, RSS at the end, failures, and the latency
error (reported latency minus the true 20 ms delay) p50/p99. The parent prints a
Markdown table (or JSON with --json) with the engine/bare CPU ratio.

    python bench/engine_bench.py [--kind http|dns|tls] [--targets 100 1000] [--seconds 20]
                                 [--json]

Every loop here is bounded in count and time; children die with the parent
(PR_SET_PDEATHSIG, stdin EOF) and each has its own hard deadline. Traffic goes
to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import kinds   # bench/kinds.py, beside this script

INTERVAL_S = 1.0
TIMEOUT_S = 0.9
PREFILL_S = 60.0         # allowance for --prefill (1000 targets x 1000 samples: a few s)
LAG_KEPT = 512           # like Engine._lateness: lag = worst of the last 512 starts


# --- small helpers shared by all roles ------------------------------------------

def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so no child outlives a crash."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        if os.getppid() == 1:           # parent already gone
            os._exit(3)
    except Exception:
        pass


def _hard_deadline(seconds: float) -> None:
    """Exit no matter what (even with the event loop blocked) after `seconds`."""
    timer = threading.Timer(seconds, lambda: os._exit(4))
    timer.daemon = True
    timer.start()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _new_loop() -> asyncio.AbstractEventLoop:
    import uvloop   # both clients and the server run on uvloop, like monitor's CLI
    return uvloop.new_event_loop()


# --- the target server -------------------------------------------------------------

def server_main(args: argparse.Namespace) -> int:
    # The server is the yardstick: its answer should take exactly the delay.
    # Its own collector stalled it now and then (a 35 ms full collection,
    # every probe in flight late, whichever client ran): it collects as the
    # monitor's probing processes do, from its start (monitor/engine/heap.py).
    from monitor.engine.heap import collect_as_a_prober
    collect_as_a_prober()
    _die_with_parent()
    _hard_deadline(args.deadline)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def watch_stdin() -> None:   # the parent closes our stdin (or dies): stop
            try:
                sys.stdin.buffer.read()
            finally:
                loop.call_soon_threadsafe(stop.set)

        def ready(port: int) -> None:
            from monitor.engine.heap import settle
            settle()   # and freezes what it keeps, as they do
            threading.Thread(target=watch_stdin, daemon=True).start()
            _emit({"port": port, "pid": os.getpid()})

        try:
            await asyncio.wait_for(kinds.SERVERS[args.kind](args.port, ready, stop),
                                   timeout=args.deadline)
        except TimeoutError:
            pass

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(serve())
    return 0


# --- the clients ----------------------------------------------------------------------

class Window:
    """What a client saw in the measurement window."""

    def __init__(self, delay_ms: float) -> None:
        self.delay_ms = delay_ms   # the server's own answer delay: the "true" latency
        self.open = False
        self.probes = 0
        self.failures = 0
        self.errors_ms: list[float] = []
        self.cpu0 = 0.0
        self.t0 = 0.0
        self.wall0 = 0.0
        self.gc_runs = [0, 0, 0]     # collections per generation in the window
        self.gc_max_ms = 0.0         # longest collection in the window (an event-loop stall)
        self._gc_t = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t = time.perf_counter()
        elif self.open:
            self.gc_runs[info["generation"]] += 1
            self.gc_max_ms = max(self.gc_max_ms, (time.perf_counter() - self._gc_t) * 1000.0)

    def record(self, ok: bool, latency_ms: float | None) -> None:
        if not self.open:
            return
        self.probes += 1
        if ok and latency_ms is not None:
            self.errors_ms.append(latency_ms - self.delay_ms)
        else:
            self.failures += 1

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self.cpu0 = _cpu_seconds()
        self.t0 = time.perf_counter()
        self.wall0 = time.time()
        self.open = True

    def finish(self, client: str, targets: int, extra: dict[str, Any]) -> dict[str, Any]:
        cpu = _cpu_seconds() - self.cpu0
        wall = time.perf_counter() - self.t0
        wall1 = time.time()
        self.open = False
        gc.callbacks.remove(self._on_gc)
        ordered = sorted(self.errors_ms)
        rss, hwm = _proc_status_kib("VmRSS"), _proc_status_kib("VmHWM")
        begin = time.perf_counter()
        gc.collect()   # after the window: what one full collection costs with this heap
        full_gc_ms = (time.perf_counter() - begin) * 1000.0
        return {
            "client": client, "targets": targets, "window_s": round(wall, 3),
            "t0": self.wall0, "t1": wall1,   # the window on the wall clock (time.time())
            "probes": self.probes, "failures": self.failures,
            "probes_per_s": round(self.probes / wall, 1) if wall > 0 else None,
            "cpu_s": round(cpu, 4),
            "cpu_s_per_1000": round(cpu / self.probes * 1000.0, 4) if self.probes else None,
            "cpu_pct": round(100.0 * cpu / wall, 1) if wall > 0 else None,
            "rss_mib": round(rss / 1024.0, 1),
            "hwm_mib": round(hwm / 1024.0, 1),
            "gc_runs": self.gc_runs, "gc_max_ms": round(self.gc_max_ms, 2),
            "full_gc_ms": round(full_gc_ms, 2), "gc_tracked": len(gc.get_objects()),
            "error_p50_ms": _round(_percentile(ordered, 0.50)),
            "error_p90_ms": _round(_percentile(ordered, 0.90)),
            "error_p95_ms": _round(_percentile(ordered, 0.95)),
            "error_p99_ms": _round(_percentile(ordered, 0.99)),
            "error_max_ms": _round(ordered[-1] if ordered else None),
            **extra,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


async def _measure(args: argparse.Namespace, window: Window, profile: Any,
                   skips: Callable[[], int]) -> int:
    """Warm up, open the window, measure, close it (the caller reports).
    Returns the starts skipped within the window."""
    await asyncio.sleep(args.warmup)
    _emit({"event": "window"})   # the parent samples the server's CPU now
    if profile is not None:
        profile.enable()
    skips0 = skips()
    window.start()
    await asyncio.sleep(args.seconds)
    if profile is not None:
        profile.disable()
    return skips() - skips0


async def engine_client(args: argparse.Namespace, profile: Any) -> dict[str, Any]:
    from monitor.config import parse_config
    from monitor.engine.heap import collect_as_a_prober, settle
    from monitor.engine.scheduler import Engine

    collect_as_a_prober()   # as `monitor run --headless` does, before its config is read
    lines = ['[settings]', 'interval = "1s"', 'timeout = "900ms"', '']
    for i in range(args.targets):
        lines += [*kinds.target_lines(args.kind, i, args.port), '']
    config = parse_config("\n".join(lines))
    window = Window(kinds.DELAY_S[args.kind] * 1000.0)

    def on_result(result: Any) -> None:
        window.record(result.ok, result.latency_ms)

    engine = Engine(config, on_result=on_result)
    await engine.start()
    settle()   # as the CLI's hosts do: history that accumulates later is not frozen
    if args.prefill:   # before any probe task has run: no await since start()
        _prefill(engine)
    try:
        skipped = await _measure(args, window, profile, engine.skips)
        return window.finish("engine", args.targets, {
            "lag_ms": round(engine.lag_ms(), 3), "skips": skipped})
    finally:
        await engine.stop()


def _prefill(engine: Any) -> None:
    """Fill every target's history to `settings.history` samples, as after
    history x interval of running, so RSS and GC cost are the steady state's."""
    from datetime import UTC, datetime

    from monitor.engine.result import ProbeResult, Status

    size = engine.settings.history
    for name, view in engine.views.items():
        for k in range(size):
            view.apply_result(ProbeResult(
                name=name, kind="http", target=name, status=Status.UP,
                latency_ms=kinds.DELAY_S["http"] * 1000.0 + k * 1e-3,
                phases_ms={"connect": 0.1, "ttfb": 20.0, "transfer": 0.02}, reason=None,
                checked_at=datetime.now(UTC), started=k - float(size), http_status=200,
                details={"bytes": 2, "truncated": False, "http_version": "1.1"}))
    gc.collect()


async def bare_client(args: argparse.Namespace, profile: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    window = Window(kinds.DELAY_S[args.kind] * 1000.0)
    lateness: list[float] = []
    skips = 0
    begin = loop.time()
    end = begin + args.warmup + args.seconds + 2 * INTERVAL_S
    max_rounds = math.ceil(args.warmup + args.seconds) + 5   # a hard bound on each loop
    bare_probe = kinds.BareProbe(args.kind, args.port)
    await bare_probe.open()

    async def probe_loop(i: int, first: float) -> None:
        nonlocal skips
        due = first
        for _ in range(max_rounds):
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            start = loop.time()
            if start >= end:
                return
            lateness.append(start - due)
            if len(lateness) > 4 * LAG_KEPT:
                del lateness[:-LAG_KEPT]
            t0 = time.perf_counter()
            ok, latency_ms = False, None
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    ok = await bare_probe.once(i)
                    latency_ms = (time.perf_counter() - t0) * 1000.0
            except Exception:   # timeouts, refusals, a malformed answer: a failure
                pass
            window.record(ok, latency_ms)
            due += INTERVAL_S
            now = loop.time()
            if due <= now:   # same rule as the engine: a start that cannot happen on time is skipped
                missed = int((now - due) // INTERVAL_S) + 1
                skips += missed
                due += missed * INTERVAL_S

    count = max(1, args.targets)
    tasks = [asyncio.create_task(probe_loop(i, begin + INTERVAL_S * i / count))
             for i in range(args.targets)]
    try:
        skipped = await _measure(args, window, profile, lambda: skips)
        lag = max(lateness[-LAG_KEPT:], default=0.0) * 1000.0
        return window.finish("bare", args.targets, {"lag_ms": round(lag, 3), "skips": skipped})
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bare_probe.close()


def client_main(args: argparse.Namespace) -> int:
    _die_with_parent()
    _hard_deadline(args.deadline)
    profile = None
    if args.profile:
        import cProfile
        profile = cProfile.Profile()
    body = engine_client if args.client == "engine" else bare_client
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        result = runner.run(body(args, profile))
    if profile is not None:
        profile.dump_stats(args.profile)
        result["profile"] = args.profile
    _emit({"event": "result", **result})
    return 0


# --- the parent --------------------------------------------------------------------

class Child:
    """A child process speaking JSON lines on stdout."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None, close_fds=True)
        self._buffer = b""

    def read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer from pid {self.proc.pid} in {timeout:.0f}s")
                if sel.select(left):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        raise RuntimeError(f"pid {self.proc.pid} exited "
                                           f"(code {self.proc.wait(5)}) without answering")
                    self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self, wait: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(wait)
            except (subprocess.TimeoutExpired, OSError):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def loop_sched(pid: int) -> tuple[int, int, int] | None:
    """(ns on a CPU, ns waiting for one, times run) of a process's main
    thread (its event loop), from /proc/PID/schedstat; None elsewhere."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            run_ns, wait_ns, runs = (int(v) for v in stat.read().split()[:3])
    except (OSError, ValueError):
        return None
    return run_ns, wait_ns, runs


def sched_fields(first: tuple[int, int, int] | None, last: tuple[int, int, int] | None,
                 wall: float) -> dict[str, float | None]:
    """How the loop thread ran over a window: how often it was put on a CPU,
    for how long each time, and how long it waited for one while runnable.
    (A loop that runs long each time keeps answers waiting behind its work;
    one that waits for a CPU was crowded out by other processes.)"""
    if first is None or last is None or wall <= 0 or last[2] <= first[2]:
        return {"loop_runs_per_s": None, "loop_ms_per_run": None, "loop_cpu_wait_ms_per_s": None}
    runs = last[2] - first[2]
    return {"loop_runs_per_s": round(runs / wall, 1),
            "loop_ms_per_run": round((last[0] - first[0]) / runs / 1e6, 3),
            "loop_cpu_wait_ms_per_s": round((last[1] - first[1]) / wall / 1e6, 2)}


def _host_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]   # idle + iowait
    total = sum(values[:8])         # guest time is already in user
    return total - idle, total


def machine_facts() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), "")
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "nproc": os.cpu_count(),
            "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "aiohttp": version("aiohttp"),
            "uvloop": version("uvloop"), "monitor": version("monitor")}


def run_client(script: str, client: str, targets: int, port: int, args: argparse.Namespace,
               servers: list[Child], profile_dir: str | None,
               on_window: Callable[[str], None] | None = None) -> dict[str, Any]:
    prefill_s = PREFILL_S if args.prefill and client == "engine" else 0.0
    budget = prefill_s + args.warmup + args.seconds + 40.0
    argv = [sys.executable, script, "_client", "--kind", args.kind, "--client", client,
            "--port", str(port),
            "--targets", str(targets), "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--deadline", str(budget)]
    if profile_dir:
        argv += ["--profile", os.path.join(profile_dir, f"{client}-{targets}.pstats")]
    if args.prefill:
        argv.append("--prefill")
    return measure_child(Child(argv), client, servers, prefill_s + args.warmup + 30.0,
                         args.seconds + 30.0, on_window)


def measure_child(child: Child, client: str, servers: list[Child], start_timeout: float,
                  window_timeout: float,
                  on_window: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Wait for a client's {"event": "window"}, then for its result line; add the
    servers' and the host's CPU over that window. `on_window("open"/"close")` is
    called as the window opens and right after the result arrives (bench/cli_bench.py
    reads the server's request count there). The child is closed on every path."""
    try:
        message = child.read(start_timeout)
        if message.get("event") != "window":
            raise RuntimeError(f"unexpected message from the {client} client: {message}")
        if on_window is not None:
            on_window("open")
        server0 = sum(_proc_cpu(s.proc.pid) for s in servers)
        host0 = _host_busy()
        sched0 = loop_sched(child.proc.pid)
        wall0 = time.perf_counter()
        result = child.read(window_timeout)
        wall = time.perf_counter() - wall0
        result.update(sched_fields(sched0, loop_sched(child.proc.pid), wall))
        if on_window is not None:
            on_window("close")
        server = sum(_proc_cpu(s.proc.pid) for s in servers) - server0
        host1 = _host_busy()
        result.pop("event", None)
        result["server_cpu_pct"] = round(100.0 * server / wall, 1)
        total = host1[1] - host0[1]
        result["host_busy_pct"] = round(100.0 * (os.cpu_count() or 1)
                                        * (host1[0] - host0[0]) / total, 1) if total else None
        if result["host_busy_pct"] is not None and result["cpu_pct"] is not None:
            # whatever else ran on the machine meanwhile (noise), in % of one core
            result["others_cpu_pct"] = round(max(0.0, result["host_busy_pct"] - result["cpu_pct"]
                                                 - result["server_cpu_pct"]), 1)
        child.proc.wait(30)
        return result
    finally:
        child.close(wait=1.0)


def markdown(rows: list[dict[str, Any]], facts: dict[str, Any], args: argparse.Namespace) -> str:
    def f(value: Any, digits: int = 2) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    out = [
        f"Engine benchmark ({args.kind}), {facts['date']}: {facts['nproc']} cores ({facts['cpu']}), "
        f"Linux {facts['kernel']}, Python {facts['python']}, aiohttp {facts['aiohttp']}, "
        f"uvloop {facts['uvloop']}; server: {args.server_procs} process(es); "
        f"warm-up {args.warmup:g} s, window {args.seconds:g} s"
        f"{'; engine history prefilled' if args.prefill else ''}.",
        "",
        "| targets | client | probes | failures | CPU s / 1000 probes | ratio vs bare "
        "| RSS MiB | error p50 ms | error p99 ms | lag ms | full GC ms | client CPU % "
        "| server CPU % | other CPU % |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        out.append(
            f"| {row['targets']} | {row['client']} | {row['probes']} | {row['failures']} "
            f"| {f(row['cpu_s_per_1000'], 3)} | {f(row.get('ratio'))} | {f(row['rss_mib'], 1)} "
            f"| {f(row['error_p50_ms'])} | {f(row['error_p99_ms'])} | {f(row['lag_ms'], 1)} "
            f"| {f(row['full_gc_ms'], 1)} "
            f"| {f(row['cpu_pct'], 0)} | {f(row['server_cpu_pct'], 0)} "
            f"| {f(row.get('others_cpu_pct'), 0)} |")
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> int:
    import importlib.util
    missing = [name for name in ("uvloop", "aiohttp", "monitor")
               if importlib.util.find_spec(name) is None]
    if missing:
        print(f"engine_bench: {', '.join(missing)} not importable; from the repository root: "
              "pip install -e .", file=sys.stderr)
        return 2
    script = os.path.abspath(__file__)
    facts = machine_facts()   # the date is the run's start
    facts["server_procs"] = args.server_procs
    clients = ["engine", "bare"] if args.order == "engine-first" else ["bare", "engine"]
    runs = len(args.targets) * args.repeat * len(clients)
    per_run = args.warmup + args.seconds + 15.0 + (PREFILL_S / 2 if args.prefill else 0.0)
    overall = args.timeout or 30.0 + runs * per_run
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"benchmark exceeded its overall limit of {overall:.0f}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(math.ceil(overall)))
    server_life = str(overall + 30.0)
    servers: list[Child] = []
    rows: list[dict[str, Any]] = []
    try:
        first = Child([sys.executable, script, "_server", "--kind", args.kind, "--port", "0",
                       "--deadline", server_life])
        servers.append(first)
        port = first.read(30.0)["port"]
        for _ in range(args.server_procs - 1):   # more listeners on the same port (SO_REUSEPORT)
            servers.append(Child([sys.executable, script, "_server", "--kind", args.kind,
                                  "--port", str(port), "--deadline", server_life]))
            servers[-1].read(30.0)
        for targets in args.targets:
            for rep in range(args.repeat):
                order = clients if rep % 2 == 0 else clients[::-1]
                pair: dict[str, dict[str, Any]] = {}
                for client in order:
                    if not args.json:
                        print(f"… {targets} targets, {client} client "
                              f"(run {rep + 1}/{args.repeat})", file=sys.stderr, flush=True)
                    row = run_client(script, client, targets, port, args, servers, args.profile)
                    row["run"] = rep + 1
                    pair[client] = row
                bare = pair["bare"]["cpu_s_per_1000"]
                for client in ("engine", "bare"):
                    row = pair[client]
                    row["ratio"] = (round(row["cpu_s_per_1000"] / bare, 3)
                                    if bare and row["cpu_s_per_1000"] else None)
                    rows.append(row)
    finally:
        signal.alarm(0)
        for server in servers:
            server.close()

    if args.json:
        print(json.dumps({"facts": facts, "settings": {
            "kind": args.kind, "seconds": args.seconds, "warmup": args.warmup,
            "delay_ms": kinds.DELAY_S[args.kind] * 1000,
            "interval_s": INTERVAL_S, "timeout_s": TIMEOUT_S}, "rows": rows}, indent=1))
    else:
        print(markdown(rows, facts, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_server", "_client"):   # internal roles
        role = argparse.ArgumentParser(prog=f"engine_bench {argv[0]}")
        role.add_argument("--port", type=int, required=True)
        role.add_argument("--deadline", type=float, required=True)
        role.add_argument("--kind", choices=tuple(kinds.SERVERS), default="http")
        if argv[0] == "_server":
            return server_main(role.parse_args(argv[1:]))
        role.add_argument("--client", choices=("engine", "bare"), required=True)
        role.add_argument("--targets", type=int, required=True)
        role.add_argument("--seconds", type=float, required=True)
        role.add_argument("--warmup", type=float, required=True)
        role.add_argument("--profile")
        role.add_argument("--prefill", action="store_true")
        return client_main(role.parse_args(argv[1:]))

    parser = argparse.ArgumentParser(
        description="monitor's Engine vs a bare aiohttp loop against a 20 ms loopback target.")
    parser.add_argument("--kind", choices=tuple(kinds.SERVERS), default="http",
                        help="probe kind and its target server (http; see bench/kinds.py)")
    parser.add_argument("--targets", type=int, nargs="+", default=[100, 1000],
                        help="target counts to run (default: 100 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window (20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before it (5)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="engine/bare pairs per target count, order alternating (1)")
    parser.add_argument("--order", choices=("engine-first", "bare-first"), default="engine-first")
    parser.add_argument("--server-procs", type=int, default=1, choices=(1, 2),
                        help="target server processes sharing the port with SO_REUSEPORT (1)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard overall limit in seconds (default: from the workload)")
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile each client's window into DIR/*.pstats "
                             "(inflates the CPU figures: do not compare them)")
    parser.add_argument("--prefill", action="store_true",
                        help="engine: fill every target's history ([settings] history = 1000 "
                             "samples) before the warm-up, to see steady-state RSS and GC")
    parser.add_argument("--json", action="store_true", help="JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.repeat < 1 or min(args.targets) < 1:
        parser.error("--seconds > 0, --warmup >= 0, --repeat >= 1, --targets >= 1")
    try:
        return parent_main(args)
    except (TimeoutError, RuntimeError) as exc:   # children are already gone (finally blocks)
        print(f"engine_bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
