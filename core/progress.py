"""Progress reporting shared by the harness and by plugins.

Plugins call :func:`track` around long loops; the CLI decides whether bars are drawn.
Tests and library use stay silent unless :func:`enable` was called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=True)
_progress: Progress | None = None


def enable() -> None:
    """Draw progress bars (the CLI calls this once)."""
    global _progress
    if _progress is None:
        _progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )


@contextlib.contextmanager
def live() -> Iterator[None]:
    """Keep one live display open for the duration (nested bars share it)."""
    if _progress is None:
        yield
        return
    with _progress:
        yield


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate, advancing a progress bar when bars are enabled."""
    if _progress is None or not _progress.live.is_started:
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    task = _progress.add_task(description, total=total)
    try:
        for item in iterable:
            yield item
            _progress.advance(task)
    finally:
        _progress.remove_task(task)


def log(message: str) -> None:
    """One status line for the user (stderr), shown only when bars are enabled."""
    if _progress is not None:
        console.print(message)


def warn(message: str) -> None:
    """A warning the user must see (stderr), bars or not."""
    console.print(f"hizkit: warning: {message}", highlight=False, markup=False)
