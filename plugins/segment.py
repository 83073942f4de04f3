"""``segment``: mask neighbours so that a cutout shows its central source alone.

photutils finds sources in a detection image (by default the F277W+F356W+F444W stack, as
EPOCHS detects), deblends them, keeps the segment under the centre (or the nearest one),
and replaces other segments' pixels by background noise (or zeros) in every band.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

import hizkit
from hizkit import Dataset, progress
from hizkit.science import DETECTION_BANDS


def _robust_sigma(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    if v.size < 10:
        return 0.0
    med = np.median(v)
    return float(1.4826 * np.median(np.abs(v - med)))


class Segment(hizkit.Preprocessor):
    name = "segment"
    description = "photutils detection + deblending; neighbours replaced by noise or zeros"
    per_source = True

    def __init__(
        self,
        detection_bands: tuple[str, ...] | list[str] = DETECTION_BANDS,
        threshold: float = 1.5,
        npixels: int = 5,
        deblend: bool | str = "central",
        dilate: int = 1,
        fill: str = "noise",
        seed: int = 0,
        jobs: int = 0,
    ) -> None:
        self.detection_bands = tuple(detection_bands)
        self.threshold = threshold
        self.npixels = npixels
        """``deblend``: "central" splits only the segment under the centre (the only one
        that can hide a blended neighbour), "all" every segment (photutils' usual call,
        ~10x slower), False none."""
        self.deblend = deblend
        self.dilate = dilate
        self.fill = fill
        self.seed = seed
        """``jobs``: worker processes for large batches (0: one per CPU core, 1: serial)."""
        self.jobs = jobs

    def _check(self, data: Dataset) -> list[int]:
        if data.cutouts is None:
            raise hizkit.HizkitError("segment needs cutouts; this dataset has none")
        if self.deblend not in (True, False, "central", "all"):
            raise hizkit.HizkitError(
                f"segment: deblend must be central, all or false, got {self.deblend!r}"
            )
        if self.fill not in ("noise", "zero"):
            raise hizkit.HizkitError(f"segment: fill must be 'noise' or 'zero', got {self.fill!r}")
        return hizkit.detection_index(data, self.detection_bands)

    def central_segments(self, data: Dataset) -> np.ndarray:
        """Boolean (N, H, W): pixels of other sources' segments (what gets replaced).

        Sources are independent, so a large batch is shared among ``jobs`` worker
        processes (0: one per CPU core); the result is the same as a serial run."""
        idx = self._check(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            det = np.nansum(data.cutouts[:, idx], axis=1)
        settings = (self.threshold, self.npixels, self.deblend, self.dilate)
        jobs = self.jobs or _cpu_count()
        n = len(det)
        if jobs < 2 or n < 2 * PARALLEL_PIECE:
            out = np.zeros(det.shape, dtype=bool)
            for i in progress.track(range(n), "segmenting"):
                out[i] = _neighbours(det[i : i + 1], *settings)[0]
            return out
        pieces = [det[i : i + PARALLEL_PIECE] for i in range(0, n, PARALLEL_PIECE)]
        pool = _pool(jobs)
        if pool is not None:
            try:
                futures = [pool.submit(_neighbours, piece, *settings) for piece in pieces]
                track = progress.track(futures, f"segmenting ({jobs} processes)")
                return np.concatenate([f.result() for f in track])
            except BrokenProcessPool:  # a worker died (e.g. killed): redo serially
                _POOLS.pop(jobs, None)
                progress.warn("segmentation workers failed; segmenting in this process")
        return np.concatenate(
            [_neighbours(p, *settings) for p in progress.track(pieces, "segmenting")]
        )

    def transform(self, data: Dataset) -> Dataset:
        mask = self.central_segments(data)
        out = data.cutouts.copy()
        ids = data.catalog["id"].to_numpy()
        for i in np.flatnonzero(mask.any(axis=(1, 2))):
            m = mask[i]
            # one noise stream per source (seeded by its id): a source's cutout does not
            # depend on which other sources share its batch
            rng = np.random.default_rng([self.seed, zlib.crc32(str(ids[i]).encode())])
            for b in range(out.shape[1]):
                if self.fill == "zero":
                    out[i, b][m] = 0.0
                else:
                    sigma = _robust_sigma(out[i, b][~m])
                    out[i, b][m] = rng.normal(0.0, sigma, m.sum())
        out[np.isnan(data.cutouts)] = np.nan  # missing coverage stays missing
        return data.replace(cutouts=out)


#: sources per task when segmentation runs in worker processes
PARALLEL_PIECE = 128
_POOLS: dict[int, ProcessPoolExecutor] = {}


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _pool(jobs: int) -> ProcessPoolExecutor | None:
    """A process pool kept for the life of the process, or None where processes cannot be
    forked (or the process may not have children: a Dask worker runs one task per core
    already). Fork, not spawn: spawn re-runs the user's main script, which a script without
    an ``if __name__ == "__main__"`` guard does not survive; the workers run only NumPy,
    SciPy and photutils, none of the parent's threads."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    if multiprocessing.current_process().daemon:  # e.g. a Dask worker: no children allowed
        return None
    if jobs not in _POOLS:
        _POOLS[jobs] = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
    return _POOLS[jobs]


def _neighbours(
    det: np.ndarray, threshold: float, npixels: int, deblend: bool | str, dilate: int
) -> np.ndarray:
    """Neighbour masks (n, H, W) of a stack of detection images, one source at a time."""
    from photutils.segmentation import deblend_sources, detect_sources
    from scipy import ndimage

    n, h, w = det.shape
    neighbours = np.zeros((n, h, w), dtype=bool)
    kernel = _smoothing_kernel()
    for i in range(n):
        sigma = _robust_sigma(det[i])
        if sigma <= 0:
            continue
        smooth = ndimage.convolve(det[i], kernel, mode="constant")
        smooth_sigma = sigma * np.sqrt((kernel**2).sum())
        seg = detect_sources(smooth, threshold * smooth_sigma, npixels)
        if seg is None:
            continue
        centre = _central_label(seg.data)
        if centre == 0:
            continue
        if deblend:
            # photutils refuses some tiny segments; those stay as they are
            which = None if deblend == "all" else [centre]
            with contextlib.suppress(ValueError):
                seg = deblend_sources(smooth, seg, npixels, labels=which, progress_bar=False)
            centre = _central_label(seg.data)
        labels = seg.data
        other = (labels > 0) & (labels != centre)
        if dilate > 0:
            other = ndimage.binary_dilation(other, iterations=dilate) & (labels != centre)
        neighbours[i] = other
    return neighbours


def _central_label(labels: np.ndarray) -> int:
    """The segment under the cutout centre, else the nearest one; 0 when there is none."""
    h, w = labels.shape
    centre = labels[h // 2, w // 2]
    if centre:
        return int(centre)
    yy, xx = np.nonzero(labels)
    if yy.size == 0:
        return 0
    k = np.argmin((yy - h / 2) ** 2 + (xx - w / 2) ** 2)
    return int(labels[yy[k], xx[k]])


def _smoothing_kernel() -> np.ndarray:
    """A 5x5 Gaussian (FWHM 2 px) matched filter for detection."""
    y, x = np.mgrid[-2:3, -2:3]
    k = np.exp(-(x**2 + y**2) / (2 * (2 / 2.3548) ** 2))
    return k / k.sum()


@hizkit.hookimpl
def hizkit_register_preprocessors() -> list[type[hizkit.Preprocessor]]:
    return [Segment]
