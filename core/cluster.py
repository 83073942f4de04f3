"""Running hizkit's independent pieces of work on a Dask cluster (``--scheduler``).

``hizkit predict`` sends each spatial chunk of a field, and ``hizkit bench`` each
(run, classifier) fit, as one task to a ``dask.distributed`` scheduler:

- absent: everything runs in this process, as without Dask;
- ``local:N``: a LocalCluster of N worker processes on this machine;
- an address (``tcp://host:8786``): an existing cluster, e.g. one started on SLURM or PBS
  with dask-jobqueue. Its workers need hizkit and every plugin in use installed, and the
  model directory and the field's files on storage they can read.

A task gives the same numbers wherever it runs: it is the same code on the same inputs
with the same seeds.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from hizkit.errors import HizkitError

_LOCAL = re.compile(r"^local(?::(\d+))?$")


def check_scheduler(value: Any) -> str | None:
    """A valid ``--scheduler`` value (or None), else a one-line error."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise HizkitError(f"scheduler must be local:N or an address, got {value!r}")
    m = _LOCAL.match(value)
    if m:
        if m[1] is not None and int(m[1]) < 1:
            raise HizkitError(f"scheduler {value!r}: a local cluster needs at least 1 worker")
        return value
    if "://" in value or re.match(r"^[\w.-]+:\d+$", value):
        return value
    raise HizkitError(
        f"scheduler must be local:N (N worker processes here) or a scheduler address such "
        f"as tcp://host:8786, got {value!r}"
    )


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler``, closed (with its LocalCluster) on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency, but say so plainly
        raise HizkitError("--scheduler needs dask.distributed: pip install distributed") from None
    scheduler = check_scheduler(scheduler) or "local"
    m = _LOCAL.match(scheduler)
    if m:
        import os

        n = int(m[1]) if m[1] else (os.cpu_count() or 1)
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout="5s")
    except (OSError, TimeoutError) as exc:
        raise HizkitError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
