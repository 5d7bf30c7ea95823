#!/usr/bin/env python3
"""Soak: does monitor stay flat over a long run with a realistic mix of targets?

A loopback target server (its own process, PR_SET_PDEATHSIG, its own hard
deadline) serves four behaviours for http, tcp and (when tests/servers is there)
dns targets:

  healthy   http 200 "ok" after 3 ms; tcp: a "OK" banner after 3 ms; dns: an A record
  failing   http 503, or a connection reset (RST on accept), or a closed port
            (bound, never listening: refused); tcp: reset or closed port;
            dns: SERVFAIL
  hanging   http: never answers (the handler is cancelled when the client
            hangs up); tcp: accepts, never writes; dns: never answers
  flapping  up (as healthy) and down (as failing) by turns, every --flap s
            (60), each http target with its own phase, tcp over 4 ports with
            phases a quarter apart, dns all together

Targets (--targets, 1,000) are mixed in fixed proportions, --mix 70,10,10,10
(healthy, failing, hanging, flapping), and within each behaviour 60 % http,
30 % tcp, 10 % dns; the assignment is a fixed shuffle, so it is the same every
run. Settings: interval 10 s, timeout 2 s (--interval, --timeout): about 100
probes/s plus the rechecks of failures; [settings] history = 10 (--history), see
"Warm-up" below.

Modes (--mode): `headless` runs `python -m monitor run --headless --json
--config F` with its stdout read continuously by a thread that counts results
and transitions (and keeps the latest {"event": "stats"} line, whose `tasks`
field, the number of asyncio tasks, is used when present: "n/a" otherwise).
`dashboard` runs `python -m monitor --config F --record R` in a private tmux
server at 160x50 (the helpers of dashboard_bench.py) and samples the UI process
and its engine-worker child; results are the lines of the record R, and the
dashboard's header line is kept at every sample. `both` runs the two side by
side, each with its own copy of the config, against the same server.

Every --every seconds (60) for --minutes (30), each process is sampled from
/proc: RSS (VmRSS) and RssAnon (the heap, where a leak lives: VmRSS also counts
mapped files, which the kernel drops under memory pressure from other
processes; a trial saw both dashboard processes lose ~9 MiB of VmRSS at once,
with no swap), open descriptors (entries of /proc/PID/fd), threads, CPU % of one
core since the previous sample (utime+stime of /proc/PID/stat over wall time),
asyncio tasks where known, results so far. A line per sample goes to stderr as
it is taken.

At the end, for each process and metric: the least-squares slope per hour over
the samples after the warm-up, the first (after the warm-up), last and largest
value, and a verdict. GROWING needs both the slope over its threshold and the
fitted rise over the measured span (slope x span) over a noise floor, so a
short run only flags gross growth and a 30-minute run flags the slopes below
("rising? run longer" when the slope is over its threshold but the rise is not
yet over its floor):

  metric    slope over   and rise over  why
  RSS/anon  5 MiB/h      2 MiB          allocator noise is ~1 MiB; 5 MiB/h is a
                                        leak of 15 bytes per probe at 100/s or
                                        ~900 bytes per transition
  fds       20 /h        10             10-30 sockets are in flight at any
                                        instant (hanging probes hold theirs 2 s);
                                        a leak per probe would be thousands/h
  threads   2 /h         2              executors grow once, then stay
  tasks     100 /h       50             one task per target plus the probes in flight
  CPU %     max(1, 10 % of mean) pp/h,  max(1, 20 % of mean) pp
                                        the machine is shared: CPU figures wobble
                                        by a point or so; work growing with time
                                        (a list scanned every frame) shows as a
                                        steady climb
  results/s "DROPPED" when an interval after the warm-up got below 70 % of the
            median rate: the engine stalled (a flat RSS is no news then)

Warm-up: the samples of the first 2 minutes or the first 2 samples, whichever
is longer (--warmup S overrides). history = 10 (monitor's smallest) so each
target's sample ring is full within that warm-up, as it is in a monitor that
has run for days: the ring grows until history x interval has passed (2.8 h for
the default 1,000 samples at 10 s, several MiB/h meanwhile, not a leak) and only a full ring
runs the eviction path that runs forever after. --history 1000 soaks the
default instead (the script warns that the ring is still filling).

    python bench/soak.py [--mode headless|dashboard|both] [--minutes 30] [--every 60]
                         [--targets 1000] [--interval 10] [--timeout 2] [--flap 60]
                         [--json] [--save FILE]

Markdown by default, --json for machines, --save FILE writes the JSON too.
Ctrl-C (or SIGTERM) ends the soak early and still reports the samples taken so
far.

Every loop is bounded in count and time; there is an overall SIGALRM limit;
children get PR_SET_PDEATHSIG; a watchdog process in its own session kills the
private tmux server (and the dashboard's processes) and removes the scratch
directory when this script exits in any way, SIGKILL included, or at its own
deadline. Traffic goes to 127.0.0.1
only.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import random
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"   # every target is on loopback
CATEGORIES = ("healthy", "failing", "hanging", "flapping")
KINDS = (("http", 60), ("tcp", 30), ("dns", 10))   # % of each behaviour
HEALTHY_DELAY_S = 0.003
HANG_S = 300.0                 # a hanging answer, if the client never hangs up
TCP_FLAP_PORTS = 4
DNS_ZONE = {"soak.test": {"A": ["192.0.2.1"]}}
STARTUP_S = 90.0               # allowance for each program to show its first result
PROCS = (("headless", "headless"), ("ui", "dashboard UI"), ("engine", "dashboard engine"))
METRICS = (("rss_mib", "RSS MiB"), ("anon_mib", "RssAnon MiB"), ("fds", "open fds"),
           ("threads", "threads"), ("cpu_pct", "CPU %"), ("tasks", "asyncio tasks"))
# metric -> (slope per hour, rise over the span): both must be exceeded for GROWING
THRESHOLDS: dict[str, tuple[float, float]] = {
    "rss_mib": (5.0, 2.0), "anon_mib": (5.0, 2.0), "fds": (20.0, 10.0), "threads": (2.0, 2.0),
    "tasks": (100.0, 50.0)}
RATE_DROP = 0.7


def _load(name: str) -> Any:
    """The other benches are scripts, not a package: load one by path."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


db = _load("dashboard_bench")   # tmux, Control, the dashboard launcher, /proc helpers
eb = db.eb                      # engine_bench: Child, PDEATHSIG, deadlines, uvloop


class Overtime(BaseException):
    """The overall limit (SIGALRM) ran out: nothing may catch this but main()."""


# --- the target server -------------------------------------------------------------

def _dns_responder() -> Any:
    """tests/servers/dns_responder.py, or None when the tests are not there."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from tests.servers.dns_responder import DnsResponder
    except ImportError:
        return None
    return DnsResponder


def server_main(args: argparse.Namespace) -> int:
    eb._die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's: it closes our stdin
    eb._hard_deadline(args.deadline)

    async def serve() -> None:
        from aiohttp import web

        loop = asyncio.get_running_loop()
        t0 = time.monotonic()

        def up(offset: float) -> bool:
            """Flapping: up for --flap seconds, then down, from a phase offset in [0, 1)."""
            return int((time.monotonic() - t0) / args.flap + offset) % 2 == 0

        async def healthy(_: web.Request) -> web.Response:
            await asyncio.sleep(HEALTHY_DELAY_S)
            return web.Response(text="ok")

        async def failing(_: web.Request) -> web.Response:
            return web.Response(status=503, text="unavailable")

        async def hanging(_: web.Request) -> web.Response:
            await asyncio.sleep(HANG_S)   # cancelled when the client hangs up
            return web.Response(text="late")

        async def flapping(request: web.Request) -> web.Response:
            if up((int(request.match_info["i"]) * 0.618034) % 1.0):
                return await healthy(request)
            return await failing(request)

        app = web.Application()
        app.router.add_get("/healthy/{i}", healthy)
        app.router.add_get("/failing/{i}", failing)
        app.router.add_get("/hanging/{i}", hanging)
        app.router.add_get("/flapping/{i}", flapping)
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               handler_cancellation=True)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        await web.SockSite(runner, sock, backlog=4096).start()
        http_port = sock.getsockname()[1]

        def banner(transport: asyncio.Transport) -> None:
            def send() -> None:
                if not transport.is_closing():
                    transport.write(b"OK\r\n")
                    transport.close()
            loop.call_later(HEALTHY_DELAY_S, send)

        def reset(transport: asyncio.Transport) -> None:
            sock = transport.get_extra_info("socket")
            with suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()   # linger 0: the close is an RST

        class Behaviour(asyncio.Protocol):
            def __init__(self, act: Any) -> None:
                self.act = act

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if self.act is not None:   # None: hang (read and drop until the peer hangs up)
                    self.act(transport)

            def eof_received(self) -> bool:
                return False               # peer hung up: close our side

        async def listen(act: Any) -> tuple[asyncio.AbstractServer, int]:
            server = await loop.create_server(lambda: Behaviour(act), HOST, 0, backlog=4096)
            return server, server.sockets[0].getsockname()[1]

        servers: list[asyncio.AbstractServer] = []
        ports: dict[str, Any] = {"http": http_port}
        for name, act in (("healthy", banner), ("reset", reset), ("hanging", None)):
            server, ports[name] = await listen(act)
            servers.append(server)
        ports["flapping"] = []
        for k in range(TCP_FLAP_PORTS):
            offset = k / TCP_FLAP_PORTS
            server, port = await listen(
                lambda t, o=offset: banner(t) if up(o) else reset(t))
            servers.append(server)
            ports["flapping"].append(port)
        closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # bound, never listening:
        closed.bind((HOST, 0))                                    # connections are refused
        ports["closed"] = closed.getsockname()[1]

        responders: dict[str, Any] = {}
        flap_dns = None
        responder_class = _dns_responder() if args.dns else None
        if responder_class is not None:
            for name, mode in (("healthy", "normal"), ("failing", "servfail"),
                               ("hanging", "silent"), ("flapping", "normal")):
                responders[name] = responder_class(DNS_ZONE, mode=mode, tcp=False)
                await responders[name].start()
            flap_dns = responders["flapping"]
        ports["dns"] = {k: r.port for k, r in responders.items()} or None

        stop = asyncio.Event()

        def watch_stdin() -> None:   # the parent closes our stdin (or dies): stop
            try:
                sys.stdin.buffer.read()
            finally:
                loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
        eb._emit({"pid": os.getpid(), "ports": ports})
        ticks = math.ceil(args.deadline) + 1
        for _ in range(ticks):   # once a second: flip the dns flapper, drop query logs
            if stop.is_set():
                break
            if flap_dns is not None:
                flap_dns.mode = "normal" if up(0.0) else "servfail"
            for responder in responders.values():
                responder.queries.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        for responder in responders.values():
            await responder.close()
        for server in servers:
            server.close()
        closed.close()
        await runner.cleanup()

    with asyncio.Runner(loop_factory=eb._new_loop) as runner:
        runner.run(serve())
    return 0


# --- the watchdog --------------------------------------------------------------------

def watchdog_main(args: argparse.Namespace) -> int:
    """Outlives this script (own session, no PDEATHSIG): when our stdin closes
    (the script ended, however) or at the deadline, kill the private tmux server
    and every process the script registered (one JSON [pid, cmdline] a line),
    if it is still that process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    registered: dict[int, str] = {}
    done = threading.Event()

    def read() -> None:
        try:
            for line in sys.stdin:
                with suppress(ValueError, TypeError):
                    pid, cmdline = json.loads(line)
                    registered[int(pid)] = str(cmdline)
        finally:
            done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(args.deadline)
    exe = shutil.which("tmux") or "tmux"
    with suppress(Exception):
        subprocess.run([exe, "-L", args.socket, "-f", args.conf, "kill-server"],
                       capture_output=True, timeout=5)
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    with suppress(OSError):
        os.unlink(os.path.join(base, f"tmux-{os.getuid()}", args.socket))
    # the hang-up from tmux's exit ends the dashboard; then TERM, then KILL what is left
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for _ in range(50):
            alive = [p for p, c in registered.items() if _running(p, c)]
            if not alive:
                break
            time.sleep(0.1)
        for pid in alive:
            with suppress(OSError):
                os.kill(pid, sig)
    if args.remove:   # the scratch directory (a --record file grows ~45 KB/s)
        shutil.rmtree(args.remove, ignore_errors=True)
    return 0


def _running(pid: int, cmdline: str) -> bool:
    """Alive (not a zombie) and still the process registered (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
    except (OSError, IndexError):
        return False
    return db._cmdline(pid) == cmdline


# --- targets and config --------------------------------------------------------------

def plan_targets(count: int, mix: list[int], dns: bool) -> list[tuple[str, str, int]]:
    """(category, kind, index) for each target: fixed proportions, fixed shuffle."""
    rng = random.Random(20261125)
    total = sum(mix)
    sizes = [count * share // total for share in mix]
    sizes[0] += count - sum(sizes)               # rounding goes to healthy
    kinds = [(k, s) for k, s in KINDS if dns or k != "dns"]
    kind_total = sum(s for _, s in kinds)
    plan: list[tuple[str, str, int]] = []
    for category, size in zip(CATEGORIES, sizes, strict=True):
        per_kind = [(k, size * s // kind_total) for k, s in kinds]
        per_kind[0] = (per_kind[0][0], per_kind[0][1] + size - sum(n for _, n in per_kind))
        plan += [(category, kind, 0) for kind, n in per_kind for _ in range(n)]
    rng.shuffle(plan)
    return [(c, k, i) for i, (c, k, _) in enumerate(plan)]


def config_text(plan: list[tuple[str, str, int]], ports: dict[str, Any],
                args: argparse.Namespace) -> str:
    host = HOST
    lines = ["# bench/soak.py: generated, loopback only", "[settings]",
             f'interval = "{args.interval:g}s"', f'timeout = "{args.timeout:g}s"',
             f"history = {args.history}", ""]
    for category, kind, i in plan:
        lines += ["[[targets]]", f'name = "{category}-{kind}-{i:05d}"', f'kind = "{kind}"',
                  f'group = "{category}"']
        if kind == "http":
            if category == "failing" and i % 3 == 1:
                url = f"http://{host}:{ports['reset']}/reset/{i}"     # connection reset
            elif category == "failing" and i % 3 == 2:
                url = f"http://{host}:{ports['closed']}/closed/{i}"   # connection refused
            else:
                url = f"http://{host}:{ports['http']}/{category}/{i}"
            lines.append(f'url = "{url}"')
        elif kind == "tcp":
            port = {"healthy": ports["healthy"], "hanging": ports["hanging"],
                    "failing": ports["reset"] if i % 2 else ports["closed"],
                    "flapping": ports["flapping"][i % len(ports["flapping"])]}[category]
            lines += [f'host = "{host}"', f"port = {port}", 'expect = "OK"']
        else:
            lines += ['query_name = "soak.test"', f'server = "{host}"',
                      f"port = {ports['dns'][category]}"]
        lines.append("")
    return "\n".join(lines)


# --- /proc sampling ------------------------------------------------------------------

def proc_sample(pid: int) -> dict[str, Any] | None:
    """RSS, fds, threads, CPU seconds of a live process (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return None
        cpu_s = (int(fields[11]) + int(fields[12])) / eb._CLK_TCK
        rss = anon = threads = None
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024.0
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) / 1024.0
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, IndexError, ValueError):
        return None
    return {"rss_mib": _r(rss), "anon_mib": _r(anon), "fds": fds,
            "threads": threads, "cpu_s": cpu_s}


class Headless:
    """`monitor run --headless --json`, its stdout counted by a thread."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.err_path = workdir / "headless.err"
        self.lock = threading.Lock()
        self.results = 0
        self.transitions = 0
        self.other_lines = 0
        self.stats: dict[str, Any] | None = None
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--headless", "--json",
                 "--config", str(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd=workdir,
                preexec_fn=db._pdeathsig, process_group=0)   # Ctrl-C is for the parent
        self.cmdline = ""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:   # ends at EOF, when the process exits
            try:
                event = json.loads(line).get("event")
            except (ValueError, AttributeError):
                event = None
            with self.lock:
                if event == "result":
                    self.results += 1
                elif event == "transition":
                    self.transitions += 1
                elif event == "stats":
                    self.stats = json.loads(line)
                else:
                    self.other_lines += 1

    def counts(self) -> dict[str, Any]:
        with self.lock:
            tasks = self.stats.get("tasks") if self.stats else None
            return {"results": self.results, "transitions": self.transitions,
                    "tasks": tasks if isinstance(tasks, int) else None}

    def wait_first_result(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for _ in range(int(seconds * 10) + 1):
            if self.counts()["results"] > 0:
                self.cmdline = db._cmdline(self.proc.pid)
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise RuntimeError(f"headless monitor gave no result in {seconds:.0f}s "
                           f"(exit {self.proc.poll()}): {self.stderr_tail()}")

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, as a service manager would; the exit code (None: had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            code = None
        self.thread.join(5)
        return code


class RecordCounter:
    """Lines of a growing file (the dashboard's --record), read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        with suppress(OSError), open(self.path, "rb") as handle:
            handle.seek(self.offset)
            for _ in range(100_000):   # 64 KiB each: bounded
                chunk = handle.read(1 << 16)
                if not chunk:
                    break
                self.lines += chunk.count(b"\n")
                self.offset += len(chunk)
        return self.lines


class Soak(db.Bench):
    """The dashboard side: dashboard_bench's tmux launcher on a socket of our own."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        super().__init__(args, workdir)
        self.tmux.socket = f"soak-{os.getpid()}"
        self.watchdog: subprocess.Popen[bytes] | None = None

    def start_watchdog(self, life: float, remove: bool) -> None:
        self.watchdog = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_watchdog",
             "--socket", self.tmux.socket, "--conf", str(self.tmux.conf),
             "--deadline", str(life)] + (["--remove", str(self.workdir)] if remove else []),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)

    def _remember(self, pid: int | None) -> None:
        super()._remember(pid)
        if pid and self.watchdog is not None and self.watchdog.stdin is not None:
            with suppress(OSError):
                self.watchdog.stdin.write((json.dumps([pid, self.spawned[pid]]) + "\n").encode())
                self.watchdog.stdin.flush()

    def cleanup(self) -> None:
        super().cleanup()
        if self.watchdog is not None:
            with suppress(OSError):
                assert self.watchdog.stdin is not None
                self.watchdog.stdin.close()       # it checks, finds nothing, exits
            try:
                self.watchdog.wait(15)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
                self.watchdog.wait(5)


# --- analysis ------------------------------------------------------------------------

def fit(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of value over time (hours) -> units per hour."""
    if len(points) < 2:
        return None
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def summarise(samples: list[dict[str, Any]], warmup_s: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kept = [s for s in samples if s["t"] >= warmup_s]
    for key, label in PROCS:
        if not any(key in s["procs"] for s in samples):
            continue
        for metric, metric_label in METRICS:
            if metric == "tasks" and key != "headless":
                continue   # only the headless process can tell (its stats event)
            points = [(s["t"] / 3600.0, s["procs"][key][metric]) for s in kept
                      if s["procs"].get(key, {}).get(metric) is not None]
            row: dict[str, Any] = {"process": key, "process_label": label, "metric": metric,
                                   "metric_label": metric_label, "samples": len(points)}
            if not points:
                row.update(first=None, last=None, max=None, slope_per_h=None,
                           verdict="n/a (no stats event)" if metric == "tasks" else "n/a")
                rows.append(row)
                continue
            values = [v for _, v in points]
            slope = fit(points)
            span_h = points[-1][0] - points[0][0]
            mean = statistics.fmean(values)
            if metric == "cpu_pct":
                limit_slope, limit_rise = max(1.0, 0.1 * mean), max(1.0, 0.2 * mean)
            else:
                limit_slope, limit_rise = THRESHOLDS[metric]
            if slope is None or len(points) < 3:
                verdict = "n/a (too few samples)"
            elif slope > limit_slope and slope * span_h > limit_rise:
                verdict = "GROWING"
            elif slope > limit_slope:
                verdict = "rising? run longer"   # the slope is over, the rise not yet
            else:
                verdict = "flat"
            row.update(first=values[0], last=values[-1], max=max(values),
                       mean=round(mean, 2), slope_per_h=_r(slope, 2),
                       rise=_r(None if slope is None else slope * span_h, 2),
                       span_min=round(span_h * 60.0, 1), slope_limit_per_h=round(limit_slope, 2),
                       rise_limit=round(limit_rise, 2), verdict=verdict)
            rows.append(row)
        rates = [s["procs"][key]["results_per_s"] for s in kept
                 if s["procs"].get(key, {}).get("results_per_s") is not None]
        if rates:
            median = statistics.median(rates)
            verdict = "n/a (too few samples)" if len(rates) < 3 else (
                "steady" if min(rates) >= RATE_DROP * median else "DROPPED")
            rows.append({"process": key, "process_label": label, "metric": "results_per_s",
                         "metric_label": "results/s", "samples": len(rates), "first": rates[0],
                         "last": rates[-1], "max": max(rates), "min": min(rates),
                         "median": median, "slope_per_h": None, "verdict": verdict})
    return rows


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# --- the run -------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    need = ["uvloop", "aiohttp", "monitor"] + (["textual"] if args.mode != "headless" else [])
    missing = [n for n in need if importlib.util.find_spec(n) is None]
    if missing or (args.mode != "headless" and not shutil.which("tmux")):
        print(f"soak: needs {', '.join(missing) or 'tmux'}; from the repository root: "
              "pip install -e . (and apt-get install tmux)", file=sys.stderr)
        return 2
    if args.dns and _dns_responder() is None:
        print("soak: tests/servers/dns_responder.py not importable: no dns targets",
              file=sys.stderr)
        args.dns = False
    warmup = args.warmup if args.warmup is not None else max(120.0, 2 * args.every)
    if args.history * args.interval > warmup:
        print(f"soak: history {args.history} x interval {args.interval:g}s = "
              f"{args.history * args.interval:g}s is longer than the warm-up ({warmup:g}s): "
              "RSS grows while the sample rings fill, which is not a leak", file=sys.stderr)
    samples_n = max(1, int(args.minutes * 60 // args.every))
    limit = args.limit or args.minutes * 60 + 2 * STARTUP_S + 120.0
    plan = plan_targets(args.targets, args.mix, args.dns)
    result: dict[str, Any] = {
        "facts": db.facts(), "command": shlex.join(["python", "bench/soak.py", *sys.argv[1:]]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "save")},
        "mix": {f"{c}/{k}": sum(1 for cc, kk, _ in plan if (cc, kk) == (c, k))
                for c in CATEGORIES for k, _ in KINDS},
        "warmup_s": warmup, "limit_s": limit, "samples": [], "events": [],
        "interrupted": False}

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise Overtime(f"soak exceeded its overall limit of {limit:.0f}s")

    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    soak = Soak(args, workdir)
    headless: Headless | None = None
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # as Ctrl-C: report so far
    signal.alarm(math.ceil(limit))
    try:
        soak.start_watchdog(limit + 60.0, remove=not args.keep)
        soak.server = eb.Child([sys.executable, str(Path(__file__).resolve()), "_server",
                                "--deadline", str(limit + 30.0), "--flap", str(args.flap)]
                               + ([] if args.dns else ["--no-dns"]))
        hello = soak.server.read(30.0)
        soak.server_pid = hello["pid"]
        ports = hello["ports"]
        text = config_text(plan, ports, args)
        pids: dict[str, int] = {}
        record: RecordCounter | None = None
        control = None
        if args.mode in ("headless", "both"):
            path = workdir / "headless.toml"
            path.write_text(text)
            headless = Headless(path, workdir)
            headless.wait_first_result(STARTUP_S)
            pids["headless"] = headless.proc.pid
        if args.mode in ("dashboard", "both"):
            path = workdir / "dashboard.toml"
            path.write_text(text)
            record = RecordCounter(workdir / "dashboard-record.jsonl")
            record.path.write_bytes(b"")
            name, control, pids["ui"], pids["engine"] = soak.open_dashboard(
                "soak", path, record.path, STARTUP_S)
        log(args, f"soak: {args.targets} targets ({_mix_text(result['mix'])}), interval "
                  f"{args.interval:g}s, timeout {args.timeout:g}s, flap {args.flap:g}s; "
                  f"{samples_n} samples every {args.every:g}s, warm-up {warmup:g}s; "
                  f"pids {pids}, server {soak.server_pid}; files in {workdir}")
        sample_loop(args, result, pids, headless, record, control, soak, samples_n)
        if headless is not None:
            code = headless.stop()
            result["events"].append({"process": "headless", "event": "exit", "code": code})
            if code != 0:
                result["events"].append({"process": "headless", "event": "stderr",
                                         "text": headless.stderr_tail()})
        if control is not None:
            ui, engine = pids["ui"], pids["engine"]
            soak.close_pane(name, control, "q", [ui, engine])
            left = [p for p in (ui, engine) if soak._alive(p)]
            result["events"].append({"process": "dashboard", "event": "quit with q",
                                     "still_running": left})
    finally:
        signal.alarm(0)
        if headless is not None and headless.proc.poll() is None:
            headless.stop()
        soak.cleanup()
        if args.keep:
            print(f"soak: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["summary"] = summarise(result["samples"], warmup)
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result))
    return 0


def _mix_text(mix: dict[str, int]) -> str:
    return ", ".join(f"{c} {sum(v for k, v in mix.items() if k.startswith(c + '/'))}"
                     for c in CATEGORIES)


def log(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sample_loop(args: argparse.Namespace, result: dict[str, Any], pids: dict[str, int],
                headless: Headless | None, record: RecordCounter | None, control: Any,
                soak: Soak, samples_n: int) -> None:
    t0 = time.monotonic()
    prev_cpu: dict[str, tuple[float, float]] = {}
    prev_results: dict[str, tuple[float, int]] = {}
    for key, pid in pids.items():
        first = proc_sample(pid)
        if first is not None:
            prev_cpu[key] = (t0, first["cpu_s"])
    prev_results["headless"] = (t0, headless.counts()["results"] if headless else 0)
    prev_results["engine"] = (t0, record.count() if record else 0)
    server0 = (t0, db._cpu(soak.server_pid) or 0.0)
    host0 = eb._host_busy()
    alive = dict(pids)
    try:
        for k in range(1, samples_n + 1):
            delay = t0 + k * args.every - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            sample: dict[str, Any] = {"t": round(now - t0, 2), "procs": {}}
            for key, pid in list(alive.items()):
                got = proc_sample(pid)
                if got is None:
                    result["events"].append({"process": key, "event": "died",
                                             "t": sample["t"], "pid": pid})
                    del alive[key]
                    continue
                then, cpu_then = prev_cpu.get(key, (now, got["cpu_s"]))
                got["cpu_pct"] = _r(100.0 * (got["cpu_s"] - cpu_then) / (now - then)
                                    if now > then else None, 2)
                prev_cpu[key] = (now, got.pop("cpu_s"))
                got["tasks"] = None
                if key == "headless" and headless is not None:
                    counts = headless.counts()
                    got.update(counts)
                elif key == "engine" and record is not None:
                    got["results"] = record.count()
                if "results" in got:
                    then_r, n_then = prev_results[key]
                    got["results_per_s"] = _r((got["results"] - n_then) / (now - then_r), 2)
                    prev_results[key] = (now, got["results"])
                sample["procs"][key] = got
            if control is not None and "ui" in alive:
                try:
                    control.check_alive()
                    sample["header"] = " ".join(control.capture().split("\n", 1)[0].split())
                except RuntimeError as exc:
                    result["events"].append({"process": "ui", "event": "exited",
                                             "t": sample["t"], "text": str(exc)[-3000:]})
                    alive.pop("ui", None)
                    control = None
            server_cpu = db._cpu(soak.server_pid)
            host1 = eb._host_busy()
            if server_cpu is not None:
                sample["server_cpu_pct"] = _r(100.0 * (server_cpu - server0[1])
                                              / (now - server0[0]), 1)
                server0 = (now, server_cpu)
            total = host1[1] - host0[1]
            sample["host_busy_pct"] = _r(100.0 * (os.cpu_count() or 1) * (host1[0] - host0[0])
                                         / total, 1) if total else None
            host0 = host1
            result["samples"].append(sample)
            log(args, sample_line(sample, k, samples_n))
            if not alive:
                log(args, "soak: every process under test has exited; stopping")
                break
    except KeyboardInterrupt:
        result["interrupted"] = True
        log(args, "soak: interrupted; reporting the samples so far")


def sample_line(sample: dict[str, Any], k: int, n: int) -> str:
    t = sample["t"]
    parts = [f"[{k}/{n} {int(t // 60)}:{int(t % 60):02d}]"]
    for key, label in PROCS:
        got = sample["procs"].get(key)
        if got is None:
            continue
        text = (f"{label}: RSS {_f(got['rss_mib'])} MiB (anon {_f(got['anon_mib'])}), "
                f"{got['fds']} fds, "
                f"{got['threads']} thr, CPU {_f(got['cpu_pct'])} %")
        if key == "headless":
            text += f", tasks {_f(got.get('tasks'))}"
        if "results" in got:
            text += f", {got['results']} results ({_f(got.get('results_per_s'))}/s)"
        if "transitions" in got:
            text += f", {got['transitions']} transitions"
        parts.append(text)
    parts.append(f"server CPU {_f(sample.get('server_cpu_pct'))} %, "
                 f"host busy {_f(sample.get('host_busy_pct'))} %")
    line = " | ".join(parts)
    if sample.get("header"):
        line += f"\n    screen: {sample['header']}"
    return line


# --- report ----------------------------------------------------------------------------

def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(result: dict[str, Any]) -> str:
    m, s = result["facts"], result["settings"]
    samples = result["samples"]
    ran = samples[-1]["t"] / 60.0 if samples else 0.0
    out = [f"Soak, {m['date']}: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, "
           f"Python {m['python']}, textual {m['textual']}, aiohttp {m['aiohttp']}, "
           f"uvloop {m['uvloop']}, monitor {m['monitor']} (commit {m['commit']}), {m['tmux']}.",
           "",
           f"Mode {s['mode']}: {s['targets']} targets ({_mix_text(result['mix'])}; http/tcp/dns "
           f"{'60/30/10' if s['dns'] else '67/33/0'} %), interval {s['interval']:g} s, timeout "
           f"{s['timeout']:g} s, history {s['history']}, flap {s['flap']:g} s; "
           f"{len(samples)} samples every {s['every']:g} s over {ran:.1f} min"
           f"{' (interrupted)' if result['interrupted'] else ''}; slopes after a "
           f"{result['warmup_s']:g} s warm-up.", "",
           "| process | metric | samples | first | last | max | slope / h | verdict |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    if not any(row["samples"] for row in result["summary"]):
        out[-2:] = ["No sample after the warm-up: nothing to fit (see --json for the samples)."]
    for row in result["summary"]:
        if not row["samples"] and row["metric"] != "tasks":
            continue
        digits = 2 if row["metric"] in ("cpu_pct", "results_per_s") else 1
        first, last, top = row.get("first"), row.get("last"), row.get("max")
        if row["metric"] == "results_per_s":
            top = f"{_f(row.get('min'), 1)}–{_f(top, 1)}"
        out.append(f"| {row['process_label']} | {row['metric_label']} | {row['samples']} "
                   f"| {_f(first, digits)} | {_f(last, digits)} "
                   f"| {top if isinstance(top, str) else _f(top, digits)} "
                   f"| {_f(row.get('slope_per_h'), 2)} | {row['verdict']} |")
    out += ["", "Thresholds (GROWING = slope and rise over the span both above; 'rising? run "
                "longer' = only the slope): RSS and RssAnon "
                "5 MiB/h and 2 MiB; fds 20/h and 10; threads 2/h and 2; tasks 100/h and 50; CPU "
                "max(1, 10 % of mean) pp/h and max(1, 20 % of mean) pp. results/s: DROPPED "
                "when a sample interval fell below 70 % of the median rate; the results/s "
                "column 'max' shows min–max."]
    transitions = [p.get("transitions") for p in (samples[-1]["procs"].values() if samples else [])
                   if p.get("transitions") is not None]
    if transitions:
        out.append(f"Headless transitions: {transitions[0]}.")
    headers = [x.get("header") for x in samples if x.get("header")]
    if headers:
        out.append(f"Dashboard header at the last sample: `{headers[-1]}`")
    for event in result["events"]:
        if event["event"] == "exit":
            out.append(f"- {event['process']} exited with code {event['code']} on SIGTERM"
                       if event["code"] is not None else
                       f"- {event['process']} did not exit within 15 s of SIGTERM: killed")
        elif event["event"] == "quit with q":
            out.append("- dashboard quit with `q`: " + (
                "UI and engine exited" if not event["still_running"]
                else f"still running after 15 s: pids {event['still_running']} (killed)"))
        elif event["event"] == "stderr":
            tail = event["text"].strip()
            if tail:
                out.append(f"- headless stderr (tail): ```{tail[-600:]}```")
        else:
            out.append(f"- **{event['process']} {event['event']}** at t={event.get('t')} s"
                       + (f": ```{event['text'][-600:]}```" if event.get("text") else ""))
    out.append(f"\nCommand: `{result['command']}`")
    return "\n".join(out)


# --- main ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_server":
        role = argparse.ArgumentParser(prog="soak _server")
        role.add_argument("--deadline", type=float, required=True)
        role.add_argument("--flap", type=float, required=True)
        role.add_argument("--no-dns", dest="dns", action="store_false")
        return server_main(role.parse_args(argv[1:]))
    if argv and argv[0] == "_watchdog":
        role = argparse.ArgumentParser(prog="soak _watchdog")
        role.add_argument("--socket", required=True)
        role.add_argument("--conf", required=True)
        role.add_argument("--deadline", type=float, required=True)
        role.add_argument("--remove", help="directory to delete at the end")
        return watchdog_main(role.parse_args(argv[1:]))

    parser = argparse.ArgumentParser(
        description="Soak monitor with healthy, failing, hanging and flapping loopback targets "
                    "and check that RSS, fds, threads, tasks and CPU stay flat.")
    parser.add_argument("--mode", choices=("headless", "dashboard", "both"), default="both",
                        help="what to soak (both: side by side, same server)")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak (30)")
    parser.add_argument("--every", type=float, default=60.0, help="sample period, seconds (60)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds left out of the slopes (default: 2 min or 2 samples, "
                             "the longer)")
    parser.add_argument("--targets", type=int, default=1000, help="number of targets (1000)")
    parser.add_argument("--mix", default="70,10,10,10",
                        help="percent healthy,failing,hanging,flapping (70,10,10,10)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--timeout", type=float, default=2.0, help="probe timeout, seconds (2)")
    parser.add_argument("--flap", type=float, default=60.0,
                        help="flapping targets switch up/down every this many seconds (60)")
    parser.add_argument("--history", type=int, default=10,
                        help="[settings] history (10: full within the warm-up; see the "
                             "docstring)")
    parser.add_argument("--no-dns", dest="dns", action="store_false",
                        help="no dns targets (http/tcp only)")
    parser.add_argument("--limit", type=float, default=None,
                        help="hard overall limit in seconds (default: minutes + 5 min)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON result to FILE")
    args = parser.parse_args(argv)
    try:
        args.mix = [int(x) for x in args.mix.split(",")]
    except ValueError:
        parser.error("--mix: four integers, e.g. 70,10,10,10")
    if len(args.mix) != 4 or min(args.mix) < 0 or sum(args.mix) <= 0:
        parser.error("--mix: four integers >= 0, e.g. 70,10,10,10")
    if args.minutes <= 0 or args.every < 1 or args.targets < 1 or args.interval <= 0 \
            or not 0 < args.timeout <= args.interval or args.flap <= 0 or args.history < 10 \
            or args.every > args.minutes * 60:
        parser.error("--minutes > 0, 1 <= --every <= the soak, --targets >= 1, "
                     "0 < --timeout <= --interval, --flap > 0, --history >= 10")
    try:
        return run(args)
    except (Overtime, RuntimeError, TimeoutError) as exc:   # all cleaned up by then
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # before the sampling began; all cleaned up by then
        print("soak: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
