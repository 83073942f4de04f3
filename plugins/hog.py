"""``hog``: histograms of oriented gradients per band, concatenated across bands.

A batched NumPy implementation of scikit-image's ``hog`` (central-difference gradients,
unsigned orientations, hard binning, cell means, L2-Hys block normalisation): identical
features to ``skimage.feature.hog`` image by image (tests check it), computed for
thousands of cutouts at once. NaN pixels count as zero.
"""

from __future__ import annotations

import numpy as np

import hizkit
from hizkit import Dataset, progress


def hog_batch(
    images: np.ndarray, orientations: int = 9, cell: int = 8, block: int = 2, chunk: int = 512
) -> np.ndarray:
    """HOG features of a stack (M, H, W) -> (M, F), as ``skimage.feature.hog`` computes
    with ``pixels_per_cell=(cell, cell)``, ``cells_per_block=(block, block)``, L2-Hys."""
    m, h, w = images.shape
    ncr, ncc = h // cell, w // cell
    nbr, nbc = ncr - block + 1, ncc - block + 1
    if nbr < 1 or nbc < 1:
        raise hizkit.HizkitError(
            f"hog: cutouts of {h}x{w} are too small for cell={cell}, block={block}"
        )
    out = np.empty((m, nbr * nbc * block * block * orientations))
    eps2 = 1e-5**2
    rows, cols = np.mgrid[: ncr * cell, : ncc * cell]
    cell_index = (rows // cell) * ncc + cols // cell
    for start in range(0, m, chunk):
        img = np.nan_to_num(images[start : start + chunk].astype(float))
        gr = np.zeros_like(img)
        gc = np.zeros_like(img)
        gr[:, 1:-1, :] = img[:, 2:, :] - img[:, :-2, :]
        gc[:, :, 1:-1] = img[:, :, 2:] - img[:, :, :-2]
        mag = np.hypot(gr, gc)[:, : ncr * cell, : ncc * cell]
        ang = (np.rad2deg(np.arctan2(gr, gc)) % 180)[:, : ncr * cell, : ncc * cell]
        which = np.minimum((ang / (180.0 / orientations)).astype(np.int64), orientations - 1)
        # one weighted bincount over (image, cell, orientation) makes every histogram at once
        k = len(img)
        slot = (np.arange(k)[:, None, None] * (ncr * ncc) + cell_index) * orientations + which
        cells = np.bincount(
            slot.ravel(), weights=mag.ravel(), minlength=k * ncr * ncc * orientations
        )
        cells = cells.reshape(k, ncr, ncc, orientations) / (cell * cell)
        blocks = np.stack(
            [cells[:, r : r + block, c : c + block, :] for r in range(nbr) for c in range(nbc)],
            axis=1,
        ).reshape(len(img), nbr * nbc, -1)
        blocks = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + eps2)
        blocks = np.minimum(blocks, 0.2)
        blocks = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + eps2)
        out[start : start + chunk] = blocks.reshape(len(img), -1)
    return out


class HOG(hizkit.Preprocessor):
    name = "hog"
    description = "scikit-image-equivalent HOG per band, batched, as a feature matrix"
    per_source = True

    def __init__(self, orientations: int = 9, cell: int = 16, block: int = 2) -> None:
        self.orientations = orientations
        self.cell = cell
        self.block = block

    def transform(self, data: Dataset) -> Dataset:
        if data.cutouts is None:
            raise hizkit.HizkitError("hog needs cutouts; this dataset has none")
        _n, b, _h, _w = data.cutouts.shape
        feats = []
        for i in progress.track(range(b), "HOG features"):
            feats.append(hog_batch(data.cutouts[:, i], self.orientations, self.cell, self.block))
        x = np.concatenate(feats, axis=1)
        per = x.shape[1] // b
        names = tuple(f"hog_{band}_{j}" for band in data.bands for j in range(per))
        return data.replace(features=x, feature_names=names)


@hizkit.hookimpl
def hizkit_register_preprocessors() -> list[type[hizkit.Preprocessor]]:
    return [HOG]
