"""Open-file limits: the monitor's own resource, never a target's fault.

Each probe in flight holds a socket (and a TLS or DNS probe may hold more), so
`concurrency` probes need about that many descriptors beside the ones the
process already has. With `ulimit -n 64` and 500 targets, healthy targets went
DOWN with "too many open files": at start we raise the soft limit towards the
hard one, and if that is not enough we lower the effective concurrency and
say so. A probe that still runs out is the monitor's failure (`OutOfFiles`),
retried, not reported as the target's.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

try:
    import resource
except ImportError:   # not on Windows
    resource = None   # type: ignore[assignment]

# Descriptors kept free beside the probes: pipes, log and history files,
# keep-alive pools, the ICMP sockets, a resolver thread.
RESERVE = 32
_CAUSE_DEPTH = 8


class OutOfFiles(Exception):
    """A probe could not get a descriptor: the monitor's failure, not the target's."""


@dataclass(frozen=True, slots=True)
class FdBudget:
    concurrency: int          # probes in flight the limit allows (≤ the configured)
    notice: str | None        # what to tell the operator, if anything changed


def fit_concurrency(wanted: int, in_use: int | None = None) -> FdBudget:
    """Raise RLIMIT_NOFILE's soft limit for `wanted` probes in flight, or
    lower the concurrency to what the hard limit allows."""
    if resource is None:
        return FdBudget(wanted, None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = open_descriptors() if in_use is None else in_use
    need = in_use + RESERVE + wanted
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return FdBudget(wanted, None)
    allowed = max(1, soft - in_use - RESERVE)
    return FdBudget(allowed, f"open-file limit {soft} (ulimit -n) allows {allowed} probes in "
                             f"flight, not concurrency = {wanted}; raise the limit to "
                             f"{need} or more to probe at full concurrency")


def open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16   # a guess where /proc is absent: stdio and a few more


def out_of_files(exc: BaseException | None) -> bool:
    """Whether `exc` (or what it was raised from) is EMFILE/ENFILE."""
    for _ in range(_CAUSE_DEPTH):
        if exc is None:
            return False
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
