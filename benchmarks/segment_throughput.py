"""Segmentation throughput on simulated cutouts.

Reference: photutils' usual call, deblending every segment; hizkit deblends only the
central one (the only segment that can hide a neighbour blended with the source).
Run: python benchmarks/segment_throughput.py [--n 300] [--smoke]
"""

from __future__ import annotations

import argparse

from _common import finish, median_time

from hizkit.plugins.mock import MockSurvey
from hizkit.plugins.segment import Segment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths only (CI)")
    args = ap.parse_args()
    params = {**MockSurvey.test_params, "n_unlabelled": 0} if args.smoke else {"n_unlabelled": 0}
    if args.smoke:
        args.n = 6
    data = MockSurvey(**params).load()
    part = data.subset(range(min(args.n, len(data))))
    t_central = median_time(lambda: Segment().transform(part), 3)
    t_all = median_time(lambda: Segment(deblend="all").transform(part), 3)
    t_none = median_time(lambda: Segment(deblend=False).transform(part), 3)
    n = len(part)
    print(f"segment, deblend every segment (plain photutils): {n / t_all:7.1f} cutouts/s")
    print(
        f"segment, deblend the central segment (default):   {n / t_central:7.1f} cutouts/s "
        f"({t_all / t_central:.1f}x)"
    )
    print(f"segment, no deblending:                           {n / t_none:7.1f} cutouts/s")
    finish(
        "segment_throughput",
        {
            "cutouts": n,
            "deblend_all_cutouts_per_s": round(n / t_all, 1),
            "default_cutouts_per_s": round(n / t_central, 1),
            "no_deblend_cutouts_per_s": round(n / t_none, 1),
            "speedup": round(t_all / t_central, 2),
        },
    )


if __name__ == "__main__":
    main()
