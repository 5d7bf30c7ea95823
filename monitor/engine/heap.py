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
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect start-up garbage, then exempt what survives from later collections.

    For a process's host (CLI, engine worker) once its engine has started,
    the dashboard once its board is full: not for a library caller, whose
    heap is its own business.
    """
    gc.collect()
    gc.freeze()
