"""``augment``: the eight dihedral transforms (rotations by 90 degrees and flips).

Training only: the harness applies it to the training part and never to validation or
test data. ``copies`` picks how many distinct transforms each source contributes
(8 = the full dihedral group, the poster's choice; the identity is always the first).
"""

from __future__ import annotations

import numpy as np

import hizkit
from hizkit import Dataset


def dihedral(images: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` in 0..7 of (..., H, W): k % 4 quarter turns, then a flip if k >= 4."""
    out = np.rot90(images, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return out


class Augment(hizkit.Preprocessor):
    name = "augment"
    description = "Dihedral rotations/flips of training cutouts (training data only)"
    training_only = True

    def __init__(self, copies: int = 8, noise: float = 0.0, seed: int = 0) -> None:
        """``noise`` > 0 adds Gaussian noise of that many times each band's robust pixel
        scatter to every copy but the identity (a noise redraw)."""
        self.copies = copies
        self.noise = noise
        self.seed = seed

    def transform(self, data: Dataset) -> Dataset:
        if not isinstance(self.copies, int) or not 1 <= self.copies <= 8:
            raise hizkit.HizkitError(
                f"augment: copies must be an integer 1..8, got {self.copies!r}"
            )
        if data.cutouts is None:
            raise hizkit.HizkitError("augment needs cutouts; this dataset has none")
        if data.features is not None:
            raise hizkit.HizkitError(
                "augment must come before feature extraction (e.g. hog) in the chain"
            )
        rng = np.random.default_rng(self.seed)
        ks = [0, *rng.permutation(np.arange(1, 8))[: self.copies - 1].tolist()]
        parts = []
        for k in ks:
            cut = np.ascontiguousarray(dihedral(data.cutouts, k))
            if k and self.noise > 0:
                scatter = np.nanstd(cut, axis=(2, 3), keepdims=True)
                cut = cut + rng.normal(0, 1, cut.shape).astype(np.float32) * self.noise * scatter
            err = None if data.errors is None else np.ascontiguousarray(dihedral(data.errors, k))
            parts.append(data.replace(cutouts=cut, errors=err))
        out = parts[0]
        for p in parts[1:]:
            out = out.concat(p)
        return out


@hizkit.hookimpl
def hizkit_register_preprocessors() -> list[type[hizkit.Preprocessor]]:
    return [Augment]
