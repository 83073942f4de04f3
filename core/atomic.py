"""Writing outputs atomically: a reader sees all of a file or directory, or nothing.

Both helpers build under a temporary name beside the target and rename into place at the
end; on any error the temporary is removed. Existing targets are never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hizkit.errors import HizkitError


def refuse_existing(path: Path) -> None:
    if Path(path).exists():
        raise HizkitError(f"{path} already exists; hizkit never overwrites it")


def check_writable(path: str | Path) -> None:
    """Refuse, before any work, an output path whose directory cannot be written (the
    nearest existing parent is tried with a temporary file) or whose name is too long."""
    path = Path(path).absolute()
    limit = os.pathconf(path.anchor, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    # the temporary names hizkit builds beside the target add a prefix and a suffix
    long = [part for part in path.parts if len(part) + 12 > limit]
    if long:
        raise HizkitError(f"{path}: the name {long[0][:40]!r}... is too long for this disk")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".hizkit-write-test.")
    except OSError as exc:
        raise HizkitError(f"cannot write to {parent}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


@contextlib.contextmanager
def new_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` when the block succeeds."""
    path = Path(path)
    refuse_existing(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.rename(tmp, path)  # atomic; fails if `path` appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def replace_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file name that replaces ``path`` when the block succeeds.

    For files hizkit owns (caches, files inside a new run directory); user files are
    protected by :func:`new_directory` and :func:`refuse_existing`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
