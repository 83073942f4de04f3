"""Helpers shared by the benchmark scripts: timing medians and the closing JSON line."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls (the machine is noisy: never trust one)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def finish(name: str, figures: dict[str, object]) -> None:
    """Print the benchmark's one JSON line (last line of output)."""
    print(json.dumps({"benchmark": name, **figures, "machine": machine()}))
