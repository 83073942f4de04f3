"""Segmentation throughput on simulated cutouts, and what deblending costs.

Reference: the same photutils calls without deblending. Run:
python benchmarks/segment_throughput.py [--n 300]
"""

from __future__ import annotations

import argparse

from _common import finish, median_time

from hizkit.plugins.mock import MockSurvey
from hizkit.plugins.segment import Segment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    data = MockSurvey(n_unlabelled=0).load()
    part = data.subset(range(min(args.n, len(data))))
    t_full = median_time(lambda: Segment().transform(part), 3)
    t_nodeb = median_time(lambda: Segment(deblend=False).transform(part), 3)
    n = len(part)
    print(f"segment (detect + deblend): {n / t_full:7.1f} cutouts/s")
    print(f"segment (detect only):      {n / t_nodeb:7.1f} cutouts/s")
    finish(
        "segment_throughput",
        {
            "cutouts": n,
            "deblend_cutouts_per_s": round(n / t_full, 1),
            "detect_only_cutouts_per_s": round(n / t_nodeb, 1),
        },
    )


if __name__ == "__main__":
    main()
