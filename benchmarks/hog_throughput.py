"""HOG features: hizkit's batched implementation vs a plain scikit-image loop.

Same cutouts, same settings (9 orientations, 16 px cells, 2x2 blocks, L2-Hys), checked to
give the same features. Run: python benchmarks/hog_throughput.py [--n 2000] [--smoke]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import finish, median_time
from skimage.feature import hog

from hizkit.plugins.hog import hog_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="cutouts (each 7 bands of 64x64)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths only (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.n = 8
    rng = np.random.default_rng(0)
    cut = rng.normal(size=(args.n, 7, 64, 64)).astype(np.float32)
    images = cut.reshape(-1, 64, 64)

    def plain():
        return np.array([hog(im, 9, (16, 16), (2, 2), block_norm="L2-Hys") for im in images])

    def batched():
        return hog_batch(images, 9, 16, 2)

    assert np.allclose(plain()[:50], batched()[:50], atol=1e-6)
    t_plain = median_time(plain, 3)
    t_batch = median_time(batched, 3)
    rate_plain, rate_batch = args.n / t_plain, args.n / t_batch
    print(f"plain skimage loop: {rate_plain:8.0f} cutouts/s")
    print(f"hizkit batched:     {rate_batch:8.0f} cutouts/s   ({rate_batch / rate_plain:.1f}x)")
    finish(
        "hog_throughput",
        {
            "cutouts": args.n,
            "plain_cutouts_per_s": round(rate_plain, 1),
            "hizkit_cutouts_per_s": round(rate_batch, 1),
            "speedup": round(rate_batch / rate_plain, 2),
        },
    )


if __name__ == "__main__":
    main()
