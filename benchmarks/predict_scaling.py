"""``hizkit predict`` on Dask: 1 vs 2 worker processes on this machine (scaling efficiency).

Uses the simulated field and the quick models of ``predict_throughput.py`` (built in the
same ``--workdir`` if absent), runs ``predict_field`` in-process, then on a LocalCluster
of 1 and of 2 worker processes (one thread each), checks that the three tables are
identical, and prints sources/s, the efficiency rate(2) / (2 rate(1)), and the per-source
cost extrapolated to a COSMOS-Web-sized catalog (COSMOS2025: > 700,000 sources).
Ends with one JSON line::

    .venv/bin/python benchmarks/predict_scaling.py [--sources 4000] [--model xgb] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

#: COSMOS2025, the COSMOS-Web catalog: "more than 700,000 galaxies" (Shuntov et al. 2025,
#: arXiv:2506.03243)
COSMOS_WEB = 700_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=4000)
    ap.add_argument("--workdir", type=Path, default=Path("bench-predict"))
    ap.add_argument("--model", default="xgb", help="cnn, xgb, rf or colour")
    ap.add_argument("--chunk-size", type=int, default=256)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths only (CI)")
    args = ap.parse_args()
    if args.smoke:  # predict_throughput's smoke field and models; colour needs no cutouts
        args.sources, args.model, args.chunk_size = 24, "colour", 8
    os.environ.setdefault("HIZKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    import pandas as pd
    from _common import finish
    from distributed import LocalCluster
    from predict_throughput import ensure_field, ensure_models

    from hizkit import load_model
    from hizkit.predict import field_source, predict_field

    field = ensure_field(args.workdir, args.sources, args.smoke)
    model = load_model(ensure_models(args.workdir, args.smoke) / args.model)
    tables, rates = {}, {}
    for workers in (0, 1, 2):
        out = args.workdir / f"scaling-{args.model}-{workers}-{time.strftime('%H%M%S')}"
        source = field_source(model, "jades")
        t0 = time.perf_counter()
        if workers:
            with LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster:
                start = time.perf_counter()  # the cluster's start-up is not the work
                tables[workers] = predict_field(
                    model, source, str(field), out, chunk_size=args.chunk_size,
                    scheduler=cluster.scheduler_address,
                )  # fmt: skip
                seconds = time.perf_counter() - start
        else:
            tables[workers] = predict_field(
                model, source, str(field), out, chunk_size=args.chunk_size
            )
            seconds = time.perf_counter() - t0
        rates[workers] = args.sources / seconds
        name = f"{workers} Dask worker(s)" if workers else "in-process"
        print(f"{name}: {seconds:.0f} s, {rates[workers]:.0f} sources/s")
    for workers in (1, 2):
        pd.testing.assert_frame_equal(tables[0], tables[workers])
    efficiency = rates[2] / (2 * rates[1])
    per_source_cpu_s = 1 / rates[1]
    hours = COSMOS_WEB * per_source_cpu_s / 3600
    print(
        f"identical tables; 2-worker efficiency {efficiency:.0%}; one worker costs "
        f"{1e3 * per_source_cpu_s:.1f} ms per source: a COSMOS-Web catalog "
        f"({COSMOS_WEB:,} sources) is {hours:.1f} worker-hours"
    )
    finish(
        "predict_scaling",
        {
            "model": args.model,
            "sources": args.sources,
            "sources_per_s": {str(k): v for k, v in rates.items()},
            "efficiency_2_workers": efficiency,
            "worker_seconds_per_source": per_source_cpu_s,
            "cosmos_web_worker_hours": hours,
        },
    )


if __name__ == "__main__":
    main()
