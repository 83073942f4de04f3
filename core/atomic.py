"""Writing outputs atomically: a reader sees all of a file or directory, or nothing.

Both helpers build under a temporary name beside the target and rename into place at the
end; on any error the temporary is removed. Existing targets are never overwritten: a
directory (or file) that appeared at the target while the work ran makes the finished
output take the next free sibling name (``out-2``), announced on stderr, so that nothing
finished is lost. Temporaries carry the writing process's id, and ones left by a killed
process on this machine are removed the next time something is written beside them.
Everything written follows the user's umask (``tempfile`` alone would make it private).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import math
import os
import shutil
import socket
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hizkit.errors import HizkitError

#: marks hizkit's temporaries: ``.<name>.<TAG>-<host>-<pid>.<random>``
TAG = "hzk"
#: longest part of a target name kept in a temporary's name
_NAME_KEEP = 80


def refuse_existing(path: Path) -> None:
    try:
        exists = Path(path).exists()
    except OSError as exc:  # e.g. a name too long for the disk
        raise HizkitError(f"{str(path)[:200]}: {exc.strerror or exc}") from None
    if exists:
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
    if not parent.is_dir():
        raise HizkitError(f"cannot write {path}: {parent} is a file, not a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".hizkit-write-test.")
    except OSError as exc:
        raise HizkitError(f"cannot write to {parent}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


def umask() -> int:
    """The process's umask (from /proc where it can be read without changing it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path, directory: bool) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have (``tempfile`` makes
    files 0600 and directories 0700 whatever the umask)."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~umask())


def _host() -> str:
    return format(zlib.crc32(socket.gethostname().encode()), "08x")


def _prefix(path: Path) -> str:
    return f".{path.name[:_NAME_KEEP]}.{TAG}-{_host()}-{os.getpid()}."


def clean_stale(directory: Path) -> list[Path]:
    """Remove hizkit temporaries in ``directory`` left by processes of this machine that
    are no longer running (a kill during a write); returns what was removed."""
    removed = []
    marker = f".{TAG}-{_host()}-"
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or marker not in name:
            continue
        pid_text = name.split(marker, 1)[1].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        return True
    return True


def _free_name(target: Path, n: int) -> Path:
    return target if n == 1 else target.with_name(f"{target.name}-{n}")


def _announce(target: Path, final: Path) -> None:
    print(
        f"hizkit: warning: {target} appeared while hizkit was working; the finished "
        f"output is in {final} instead",
        file=sys.stderr,
    )


def _rename_free(tmp: Path, target: Path) -> Path:
    """Rename ``tmp`` to ``target``, or to the next free sibling name if ``target``
    appeared meanwhile; returns the name used."""
    for n in range(1, 10_000):
        final = _free_name(target, n)
        if final.exists() or final.is_symlink():
            continue
        try:
            os.rename(tmp, final)  # atomic; an existing non-empty directory refuses it
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                continue
            raise
        if final != target:
            _announce(target, final)
        return final
    raise HizkitError(f"no free name beside {target}")


class new_directory:  # lower case: used like the function it was
    """Yield a temporary directory that becomes ``path`` when the block succeeds.

    If ``path`` appeared while the block ran (another run given the same ``--out``, two
    runs with default names started in the same second), the finished directory takes
    the next free sibling name and says so; :attr:`path` is the name it got. An existing
    ``path`` is refused on entry, unless ``existing="sibling"`` (for a caller that checked
    it before long work: then it appeared meanwhile, and the sibling rule applies).
    """

    def __init__(self, path: str | Path, existing: str = "refuse") -> None:
        if existing not in ("refuse", "sibling"):
            raise ValueError(f"existing must be 'refuse' or 'sibling', not {existing!r}")
        self.existing = existing
        self.target = Path(path)
        self.path = self.target
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        if self.existing == "refuse":
            refuse_existing(self.target)
        parent = self.target.parent
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(parent)
        self.tmp = Path(tempfile.mkdtemp(prefix=_prefix(self.target), dir=parent))
        follow_umask(self.tmp, directory=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        if exc_type is None:
            try:
                self.path = _rename_free(self.tmp, self.target)
                return False
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


@contextlib.contextmanager
def replace_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file name that replaces ``path`` when the block succeeds.

    For files hizkit owns (caches, files inside a new run directory); user files are
    protected by :func:`new_directory`, :func:`new_file` and :func:`refuse_existing`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        follow_umask(Path(tmp), directory=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class new_file:  # lower case: used like new_directory
    """As :func:`replace_file` for a file the user named: an existing ``path`` is
    refused before the work, and one that appears meanwhile is kept; the new file then
    takes the next free sibling name (``fig-2.png``), announced on stderr, and
    :attr:`path` is the name it got."""

    def __init__(self, path: str | Path) -> None:
        self.target = Path(path)
        self.path = self.target
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        path = self.target
        refuse_existing(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=path.suffix)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        tmp, path = self.tmp, self.target
        try:
            if exc_type is None:
                follow_umask(tmp, directory=False)
                self.path = self._link_free(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return False

    @staticmethod
    def _link_free(tmp: Path, path: Path) -> Path:
        for n in range(1, 10_000):
            final = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            try:
                os.link(tmp, final)  # never replaces: fails if ``final`` exists
            except FileExistsError:
                continue
            except OSError:  # no hard links on this disk: check, then rename
                if final.exists():
                    continue
                os.replace(tmp, final)
            if final != path:
                _announce(path, final)
            return final
        raise HizkitError(f"no free name beside {path}")


def recovery_dir(name: str, near: Path | None = None) -> Path:
    """A new, visible directory for outputs that could not be written where asked:
    beside ``near`` if that is writable, else in the user cache, else the system
    temporary directory. Raises ``OSError`` when none can be made."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    cache = Path(os.environ.get("HIZKIT_CACHE_DIR") or Path.home() / ".cache" / "hizkit")
    places = []
    if near is not None:
        places.append(Path(near).parent / f"{Path(near).name[:_NAME_KEEP]}.recovered-{stamp}")
    places.append(cache / "recovered" / f"{name}-{stamp}")
    places.append(Path(tempfile.gettempdir()) / f"hizkit-recovered-{name}-{stamp}")
    error: OSError | None = None
    for place in places:
        for n in range(1, 100):
            candidate = _free_name(place, n)
            try:
                candidate.parent.mkdir(parents=True, exist_ok=True)
                candidate.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                error = exc
                break
            return candidate
    raise error or OSError(f"no place to keep {name}")


def write_directory(
    out: str | Path, write: Callable[[Path], None], name: str, existing: str = "refuse"
) -> Path:
    """``write(directory)`` into the new directory ``out``, atomically (see
    :class:`new_directory`; ``existing="sibling"`` for a caller that checked ``out`` free
    before long work). A failure to write (a full disk, permissions changed meanwhile, a
    figure that fails) never loses the finished work: it is written again into a
    recovery directory and the one-line error says where (:func:`keep_after_failure`).
    Returns the directory written."""
    if existing == "refuse":
        refuse_existing(Path(out))
    target = new_directory(out, existing="sibling")
    try:
        with target as tmp:
            write(tmp)
    except Exception as exc:
        keep_after_failure(Path(out), exc, name, write)
    return target.path


def keep_after_failure(out: Path, exc: Exception, name: str, write: Callable[[Path], None]) -> None:
    """``write(directory)`` into a recovery directory after writing ``out`` failed with
    ``exc``; then raise a one-line error saying where the output is (or re-raise ``exc``,
    with the location on stderr, when it is a bug rather than a write failure). Files are
    written essentials first, so a recovery that fails part-way still keeps those."""
    reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    plural = name.endswith("s")
    user_error = isinstance(exc, OSError | HizkitError)
    place, problem = None, ""
    try:
        place = recovery_dir(name, near=out)
        write(place)
    except Exception as again:
        problem = (again.strerror or str(again)) if isinstance(again, OSError) else str(again)
        if place is None or not any(place.iterdir()):
            if not user_error:
                raise exc from again
            raise HizkitError(
                f"could not write {out} ({reason}), nor a recovery copy ({problem}); "
                f"the finished {name} {'are' if plural else 'is'} lost"
            ) from None
    was = "were" if plural else "was"
    kept = f"the finished {name} {was} kept in {place}"
    if problem:
        kept = f"part of the finished {name} was kept in {place} ({problem})"
    if user_error:
        raise HizkitError(f"could not write {out} ({reason}); {kept}") from None
    print(f"hizkit: {kept}", file=sys.stderr)
    raise exc


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready Python: numpy to Python, NaN and infinities to null, tuples
    to lists, anything else (a path, a type) to its text. The one cleaner for every JSON
    file hizkit writes (results.json, manifest.json, predict.json)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
