#!/usr/bin/env python3
"""The dashboard's refresh cycle alone: CPU per simulated second, no terminal.

The app runs headless (`App.run_test`, 160x50) on a scripted engine and a
simulated clock: 100 icmp targets with 30 samples of history each
(`--samples`; the default cap is 1,000, reached after 17 minutes at 1 s), then
every 0.5 simulated seconds (`--refresh`, the dashboard's default) 50 new
results (each target one a second, started just now), a flush, and a pause
until Textual has drawn the changed lines. Process CPU time over the
loop, divided by the simulated seconds, is what the UI process would spend
per real second on that stream, without the noise of a shared machine, the
terminal or the engine process. `--idle` sends no results (only the clock
moves: age cells change once a second). Deterministic enough to compare
commits: run it before and after a change.

    python bench/ui_cycle_bench.py [--seconds 20] [--targets 100] [--idle] [--repeat 3]
                                   [--samples 30] [--refresh 0.5]

No network traffic at all.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.config import parse_config  # noqa: E402
from monitor.ui.app import MonitorApp  # noqa: E402
from tests.ui.fake_engine import NOW, FakeEngine  # noqa: E402


def config_text(targets: int) -> str:
    lines = ["[settings]", 'interval = "1s"', 'timeout = "900ms"', ""]
    for i in range(1, targets + 1):
        lines += ["[[targets]]", f'name = "h{i}"', 'kind = "icmp"',
                  f'host = "127.0.0.{i % 250 + 1}"', "count = 1", 'wait = "800ms"', ""]
    return "\n".join(lines)


async def one_run(path: Path, targets: int, seconds: int, idle: bool, samples: int = 30,
                  refresh: float = 0.5) -> float:
    """Milliseconds of CPU per simulated second."""
    clock = [NOW]
    rng = random.Random(7)
    config = parse_config(path.read_text(), path)
    # refresh=1000: the benchmark calls flush() itself, on the simulated clock
    app = MonitorApp(config, FakeEngine, clock=lambda: clock[0], watch_terminal=False,
                     refresh=1000)
    async with app.run_test(size=(160, 50)) as pilot:
        engine: FakeEngine = app.engine  # type: ignore[assignment]

        def result(n: int, age: float) -> None:
            engine.result(f"h{n}", latency=0.05 + rng.random() * 0.02, kind="icmp",
                          target=f"127.0.0.{n % 250 + 1}", age=age)

        for n in range(1, targets + 1):
            for k in range(samples):
                result(n, float(samples - k))
        app.flush()
        await pilot.pause()
        steps_per_second = round(1 / refresh)
        per_step = 0 if idle else max(1, targets // steps_per_second)
        started = time.process_time()
        for step in range(seconds * steps_per_second):
            for i in range(per_step):
                result((step * per_step + i) % targets + 1, NOW - clock[0])   # just now
            clock[0] += 1 / steps_per_second
            if step % steps_per_second == 0:   # a live engine reports once a second
                engine.stats()
            app.flush()
            await pilot.pause()
        return 1000 * (time.process_time() - started) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="simulated seconds (20)")
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--idle", action="store_true", help="no results, only the clock")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--refresh", type=float, default=0.5,
                        help="simulated seconds between flushes (0.5, the dashboard's default)")
    parser.add_argument("--samples", type=int, default=30,
                        help="history each target starts with (30; the default cap is 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "ui-cycle.toml"
        path.write_text(config_text(args.targets))
        runs = [asyncio.run(one_run(path, args.targets, args.seconds, args.idle, args.samples,
                                    args.refresh))
                for _ in range(args.repeat)]
    what = "idle (clock only)" if args.idle else f"{args.targets} results/s"
    print(f"UI refresh cycle, {args.targets} targets, {what}, 160x50: "
          f"{args.samples} samples of history each, a flush every {args.refresh:g} s: "
          f"{statistics.median(runs):.1f} ms CPU per second (median of "
          f"{', '.join(f'{r:.1f}' for r in runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
