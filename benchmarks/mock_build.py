"""Building the default simulated survey (1,455 labelled cutouts + 85,420-source catalog).

Targets on 2 cores: a clean cache (SPS template library + survey) in 3 minutes or less,
a cached load in seconds. Reference for the images: drawing the same kind of cutouts the
plain way, one GalSim object per source and band (Sersic convolved with the band's PSF,
``drawImage``), timed on a sample and scaled to the labelled set.
Run: python benchmarks/mock_build.py [--smoke]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from _common import finish

from hizkit.plugins.mock import MockSurvey, images, sps
from hizkit.plugins.mock.population import draw_lowz


def plain_galsim_seconds_per_cutout(n: int = 40) -> float:
    import galsim

    from hizkit.plugins.mock.seds import nircam_filters

    rng = np.random.default_rng(0)
    src = draw_lowz(rng, n)
    pivots = nircam_filters().pivot / 10
    t = time.perf_counter()
    for i in range(n):
        for b in range(7):
            psf = galsim.Convolve(
                galsim.Airy(lam=pivots[b], diam=6.5, obscuration=0.11, scale_unit=galsim.arcsec),
                galsim.Gaussian(fwhm=0.02),
            )
            gal = galsim.Sersic(
                n=float(np.clip(src.sersic[i], 0.3, 6.2)),
                half_light_radius=float(src.re[i]),
                flux=float(src.flux[i, b]),
            )
            gal = gal.shear(q=float(src.q[i]), beta=float(src.pa[i]) * galsim.radians)
            galsim.Convolve(gal, psf).drawImage(nx=64, ny=64, scale=images.PIXEL)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="tiny survey, SPS library from the existing cache: the code paths only (CI)",
    )
    args = ap.parse_args()
    params = MockSurvey.test_params if args.smoke else {}
    with tempfile.TemporaryDirectory() as cache:
        if not args.smoke:  # a clean cache, SPS library included
            os.environ["HIZKIT_CACHE_DIR"] = cache
            sps.library.cache_clear()
        t = time.perf_counter()
        sps.library()
        library = time.perf_counter() - t
        t = time.perf_counter()
        data = MockSurvey(**params, cache=not args.smoke).load()
        survey = time.perf_counter() - t
        t = time.perf_counter()
        MockSurvey(**params).load()
        cached = time.perf_counter() - t
    t = time.perf_counter()
    MockSurvey(**{**params, "n_unlabelled": 0}, cache=False).load()
    labelled = time.perf_counter() - t
    per = plain_galsim_seconds_per_cutout(2 if args.smoke else 40)
    plain = per * len(data)
    kinds = data.catalog["kind"].value_counts().to_dict()
    print(
        f"clean cache: SPS library {library:.1f} s + default survey ({len(data)} cutouts + "
        f"{len(data.unlabelled)} catalog rows) {survey:.1f} s = {library + survey:.1f} s; "
        f"from cache {cached:.1f} s (labelled set alone {labelled:.1f} s)"
    )
    print(
        f"plain GalSim drawing of the same cutouts (no neighbours, no noise): "
        f"{plain:.1f} s  -> images {plain / labelled:.1f}x faster here"
    )
    print("labelled kinds:", kinds)
    finish(
        "mock_build",
        {
            "library_seconds": round(library, 1),
            "survey_seconds": round(survey, 1),
            "clean_total_seconds": round(library + survey, 1),
            "cached_seconds": round(cached, 2),
            "labelled_seconds": round(labelled, 1),
            "plain_galsim_seconds": round(plain, 1),
            "bimodal_fraction": round(float(data.catalog["bimodal"].mean()), 3),
            "labelled_kinds": {k: int(v) for k, v in kinds.items()},
        },
    )


if __name__ == "__main__":
    main()
