"""The dashboard's own process: its priority against the engine's, and
noticing that its terminal has gone."""

from __future__ import annotations

import os
import sys


def yield_cpu_to_engine(nice: int) -> None:
    """Lower every thread of this (UI) process to `nice`; the engine process,
    started before, keeps its normal priority.

    On two busy cores the dashboard's rendering bursts delayed the engine's
    reads: latency error p99 1.1-1.8x the headless engine's. At nice 19 the
    kernel lets a waking engine preempt rendering at once: 1.01-1.03x
    (bench/README.md). Linux sets nice per thread, hence the walk.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]   # not Linux: the call applies to the whole process
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass   # a thread that just ended


def terminal_gone() -> bool:
    """True when stdin or stdout is no longer our terminal: after an SSH drop
    Textual's input thread can spin at 100 % CPU on EOF (Textual #6690)."""
    for stream in (sys.__stdin__, sys.__stdout__):
        try:
            if stream is None or not os.isatty(stream.fileno()):
                return True
            os.tcgetpgrp(stream.fileno())
        except (OSError, ValueError):
            return True
    return False
