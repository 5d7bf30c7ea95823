#!/usr/bin/env python3
"""Dashboard start with history: from starting the app to the first full
frame with history on it, for 1,000 targets with 30 days of history.

The database is history_bench.py's (`generate`: 1,000 targets, 30 days at one
probe a minute, raw 7 d, minutes 2 d, hours 400 d, two outages per target a
day). The app runs in this process under Textual's Pilot (headless, 160x50:
wide enough for the 24 h and 30 d columns) with an engine that never
answers, so everything on screen came from history. Times, from entering
`run_test` (the app's own start, compose and mount included):

  mounted   the first frame of the board (rows, no history yet)
  past      the recent samples and events applied (sparklines, event log)
  full      the uptime columns filled on every visible row, and drawn:
            "the first full frame with history"

    python bench/history_ui_bench.py [--targets 1000] [--repeat 3] [--db PATH] [--json]

`--db PATH` reuses (or first makes) a generated database: generating takes a
minute or more. Every wait is bounded (60 s); no network traffic at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from history_bench import MINUTE_MS, generate  # noqa: E402

from monitor.config import parse_config  # noqa: E402
from monitor.ui.app import MonitorApp  # noqa: E402

SIZE = (160, 50)
LIMIT = 60.0   # seconds any one wait may take


class SilentEngine:
    """Starts, then never says anything: the board shows history only."""

    def __init__(self, listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        self.listener.on_engine_up(0)

    async def stop(self) -> None:
        pass

    def pause(self, name: str) -> None:
        pass

    def resume(self, name: str) -> None:
        pass

    def probe_now(self, name: str) -> None:
        pass

    def reload(self) -> None:
        pass


def config_text(targets: int, db: str) -> str:
    head = f'[settings]\ninterval = "1m"\nhistory_db = "{db}"\n'
    return head + "".join(
        f'\n[[targets]]\nname = "t{i:04d}"\nkind = "http"\nurl = "http://127.0.0.1:8917/t{i}"\n'
        for i in range(1, targets + 1))


async def one_start(config_path: Path) -> dict[str, float]:
    config = parse_config(config_path.read_text(), config_path)
    started = time.perf_counter()
    app = MonitorApp(config, SilentEngine, refresh=0.1, watch_terminal=False)
    marks: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        marks["mounted_s"] = time.perf_counter() - started

        async def until(what: str, predicate: Any) -> None:
            deadline = time.perf_counter() + LIMIT
            while not predicate():
                if time.perf_counter() > deadline:
                    raise SystemExit(f"{what}: not within {LIMIT:g}s")
                await asyncio.sleep(0.01)
            await pilot.pause()   # and drawn
            marks[what] = time.perf_counter() - started

        await until("past_s", lambda: app._past is None
                    and app.board.views["t0001"].stats.checks > 0)

        def full() -> bool:
            table = app.table
            keys = table.visible_keys()
            return bool(app.history_uptime) and "up30d" in [c.key for c in table.columns_now] \
                and bool(keys) and all(table.get_cell(k, "up30d").plain not in ("", "—")
                                       for k in keys if k in app.board.views)
        await until("full_s", full)
    return marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="a generated database to reuse (made if missing)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"targets": args.targets, "size": f"{SIZE[0]}x{SIZE[1]}",
                           "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="history-ui-bench-") as tmp:
        db = args.db or os.path.join(tmp, "history.sqlite3")
        if not os.path.exists(db):
            began = time.perf_counter()
            # now, to the minute: the runs in the generated history end a second ago
            generate(db, args.targets, int(time.time() * 1000) // MINUTE_MS * MINUTE_MS)
            out["generate_s"] = round(time.perf_counter() - began, 1)
        out["db_bytes"] = os.path.getsize(db)
        config_path = Path(tmp) / "monitor.toml"
        config_path.write_text(config_text(args.targets, os.path.abspath(db)))
        runs = [asyncio.run(one_start(config_path)) for _ in range(max(1, args.repeat))]
    for key in ("mounted_s", "past_s", "full_s"):
        values = [run[key] for run in runs]
        out[key] = {"best": round(min(values), 3), "median": round(statistics.median(values), 3),
                    "all": [round(v, 3) for v in values]}
    out["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
