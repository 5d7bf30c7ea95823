"""A process's heap, settled once its long-lived objects exist.

Everything created before probing starts (imported modules, the config, the
target tables: 70,000 tracked objects at 1,000 HTTP targets) lives as long as
the process. Python's cyclic collector would still walk all of it in every
full collection: 47 ms stalls of the event loop, the latency error's p99 at
1,000 probes/s (bench/engine_bench.py). `gc.freeze()` moves them out of the
collector's sight; what probing allocates later is collected as before.
The dashboard's own process does the same once its board is full (the views,
their last results, the screen's widgets: ~240,000 objects at 10,000 targets,
an 80-115 ms full collection).

A process that probes also collects its young objects less often. Python
collects generation 0 whenever 700 more container objects exist than at the
last collection; at 1,000 probes/s the tasks, futures, timers and coroutines
of the probes in flight cross that ~10 times a second, and every collection
walks all of them (0.1-8 ms each), every tenth also what survived (1-15 ms),
and those pauses land while answers wait (two thirds of the probes slower
than the p99 overlapped one of over 2 ms). At 2,000 most of those objects
are gone again by the next collection: 60 young collections in 35 s instead
of 300, a quarter of the collector's CPU, and the CLI's error p99 at 1,000
probes/s 1.44x the bare loop's instead of 4.51x in the same run
(bench/README.md, "The collector's threshold"). Reference counting frees
almost everything anyway; the collector only finds cycles, which can wait a
little longer.
"""

from __future__ import annotations

import gc

# generation 0's threshold in a process that probes (Python's default: 700)
PROBING_YOUNG_THRESHOLD = 2000


def collect_as_a_prober() -> None:
    """Generation 0's threshold at PROBING_YOUNG_THRESHOLD from now on: the
    first thing a process that probes does, before it reads its config.
    Raised only once the engine had started (at `settle`), the tail stayed
    about where it was (bench/README.md, "The collector's threshold"): why
    the start-up's collections matter is not understood, only measured."""
    _set_young_threshold(PROBING_YOUNG_THRESHOLD)


def settle(young_threshold: int | None = None) -> None:
    """Collect start-up garbage, then exempt what survives from later collections.

    For a process's host (CLI, engine worker) once its engine has started,
    the dashboard once its board is full: not for a library caller, whose
    heap is its own business. `young_threshold`: generation 0's threshold
    from now on (PROBING_YOUNG_THRESHOLD for a process that probes).
    """
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _set_young_threshold(young_threshold)


def _set_young_threshold(threshold: int) -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(threshold, middle, old)
