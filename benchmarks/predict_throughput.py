"""``hizkit predict`` on a JADES-GOODS-S-sized field: sources/s and peak memory.

Builds (once, kept in ``--workdir``) a simulated field of ``--sources`` sources (default
85,420, the JADES GOODS-S catalog) in the JADES v2.0 layout: a base survey written by the
simulator (``hizkit simulate``) is tiled into full-size mosaics (SCI + ERR, MJy/sr, one TAN
WCS) and its catalog extensions are repeated with new IDs and positions. Then:

1. trains quick models (``cnn`` one epoch: the weights do not change the speed; ``xgb``,
   ``rf``, ``colour``) on a small simulated survey;
2. runs ``hizkit predict`` end to end for each (catalog, cutouts from the memory-mapped
   mosaics, the fitted preprocessors, the classifier, the candidate files) in a child
   process, sampling the resident memory of its whole process tree (segmentation workers
   included) for the peak;
3. times a plain reference on a sample of the same sources: the same network and weights
   in plain eager PyTorch (NCHW, float32, ``no_grad``) over ``astropy.nddata.Cutout2D``
   cutouts, extrapolated to the field;
4. times hizkit's own stages on that sample (cutting, segment, normalise, network); the
   sample is one chunk's worth of sources from the middle of the field, contiguous as
   predict's chunks are.

It ends with one JSON line. Run from a checkout after ``make test`` built ``.venv``::

    .venv/bin/python benchmarks/predict_throughput.py [--sources 85420] [--workdir DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

JADES_GOODS_S = 85_420


def build_field(base_dir: Path, out: Path, n_sources: int) -> None:
    """Tile the base survey's mosaics and repeat its catalog rows up to ``n_sources``."""
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    catalog = next(base_dir.glob("*catalog.fits"))
    with fits.open(catalog) as hdul:
        tables = {h.name: Table(h.data) for h in hdul[1:]}
        headers = {h.name: h.header for h in hdul[1:]}
    base_n = len(next(t for t in tables.values() if "ID" in t.colnames))
    copies = math.ceil(n_sources / base_n)
    kx = math.ceil(math.sqrt(copies))
    ky = math.ceil(copies / kx)
    mosaics = sorted(p for p in base_dir.glob("*.fits") if p != catalog)
    with fits.open(mosaics[0]) as hdul:
        base_wcs = WCS(hdul["SCI"].header)
        h, w = hdul["SCI"].data.shape
    big = base_wcs.deepcopy()
    big.wcs.crpix = [kx * w / 2 + 0.5, ky * h / 2 + 0.5]
    out.mkdir(parents=True)
    for path in mosaics:
        with fits.open(path) as hdul:
            hdus = [fits.PrimaryHDU(header=hdul[0].header)]
            for ext in hdul[1:]:
                header = ext.header.copy()
                header.update(big.to_header())
                data = np.tile(ext.data, (ky, kx))
                hdus.append(fits.ImageHDU(data, header, name=ext.name))
            fits.HDUList(hdus).writeto(out / path.name)
            del hdus
    # positions: each copy of a base source sits at its base pixel plus the copy's offset
    key = next(t for t in tables.values() if "RA" in t.colnames)
    bx, by = base_wcs.wcs_world2pix(key["RA"], key["DEC"], 0)
    copy = np.arange(n_sources) // base_n
    row = np.arange(n_sources) % base_n
    x = bx[row] + (copy % kx) * w
    y = by[row] + (copy // kx) * h
    ra, dec = big.wcs_pix2world(x, y, 0)
    hdus = [fits.PrimaryHDU()]
    for name, table in tables.items():
        if "ID" in table.colnames:
            table = table[row]
            table["ID"] = np.arange(1, n_sources + 1)
            for col, values in (("RA", ra), ("DEC", dec), ("X", x + 1), ("Y", y + 1)):
                if col in table.colnames:
                    table[col] = values
        hdu = fits.BinTableHDU(table, header=headers[name], name=name)
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(out / catalog.name)


class TreeMemory:
    """Peak memory of a process and its descendants, sampled from ``smaps_rollup``: the
    proportional set size (shared pages, e.g. of forked segmentation workers, counted
    once) in all, and its anonymous part (what the run allocates, without the page
    cache of the memory-mapped mosaics, which the kernel can drop)."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        self.pid, self.every = pid, every
        self.peak = {"pss": 0, "pss_anon": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self, pid: int) -> list[int]:
        pids = [pid]
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    for child in f.read().split():
                        pids += self._tree(int(child))
        except OSError:
            pass
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            total = {"pss": 0, "pss_anon": 0}
            for pid in self._tree(self.pid):
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as f:
                        for line in f:
                            key = line.split(":")[0].lower()
                            if key in total:
                                total[key] += int(line.split()[1]) * 1024
                except OSError:
                    pass
            for key, value in total.items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(self.every)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_predict(model: Path, field: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "hizkit.cli", "-q", "predict", "--model", str(model),
           "--data", f"jades:{field}", "--out", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid)
    _, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    peak = mem.stop()
    if proc.returncode:
        raise SystemExit(f"predict failed: {stderr.strip()}")
    return {
        "seconds": wall,
        "peak_pss_gb": peak["pss"] / 1e9,
        "peak_anon_gb": peak["pss_anon"] / 1e9,
    }


def plain_reference(model_dir: Path, field: Path, index: np.ndarray) -> dict:
    """The same network and weights, plain eager PyTorch over Cutout2D cutouts."""
    import torch
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.nddata import Cutout2D
    from astropy.table import Table
    from astropy.wcs import WCS

    from hizkit import load_model
    from hizkit.plugins.cnn import build_network

    model = load_model(model_dir)
    state = {k: v.clone() for k, v in model.classifier.net_.state_dict().items()}

    plain = build_network(len(model.bands), model.classifier.width)
    plain.load_state_dict(state)
    plain.eval()
    size = model.manifest["cutout_size"][0]
    cat = Table.read(next(field.glob("*catalog.fits")), hdu="FLAG")
    t0 = time.perf_counter()
    cut = np.empty((len(index), len(model.bands), size, size), np.float32)
    for b, band in enumerate(model.bands):
        path = next(field.glob(f"*_{band.lower()}_*.fits"))
        with fits.open(path, memmap=True) as hdul:
            wcs = WCS(hdul["SCI"].header)
            for j, i in enumerate(index):
                pos = (float(cat["RA"][i]), float(cat["DEC"][i]))
                c = Cutout2D(hdul["SCI"].data, SkyCoord(*pos, unit="deg"), size, wcs=wcs,
                             mode="partial")  # fmt: skip
                cut[j, b] = c.data
    t_cut = time.perf_counter() - t0
    x = torch.from_numpy(np.nan_to_num(cut))
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(x), 64):
            torch.softmax(plain(x[s : s + 64]), dim=1)
    t_net = time.perf_counter() - t0
    n = len(index)
    return {"cutout_per_s": n / t_cut, "network_per_s": n / t_net, "per_s": n / (t_cut + t_net)}


def stage_rates(model_dir: Path, field: Path, index: np.ndarray) -> dict:
    """hizkit's own stages on the sample: cutting, each preprocessor, the classifier."""
    from hizkit import load_model
    from hizkit.registry import get_registry

    model = load_model(model_dir)
    source = get_registry().create("data_source", "jades", labels="none")
    catalog = model.check_catalog(source.load_catalog(str(field))).subset(index)
    rates = {}
    t0 = time.perf_counter()
    data = source.load_cutouts(str(field), catalog)
    rates["cutouts"] = len(index) / (time.perf_counter() - t0)
    for step in model.steps:
        t0 = time.perf_counter()
        data = step.transform(data)
        rates[step.name] = len(index) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    model.classifier.predict_proba(data)
    rates[model.classifier.name] = len(index) / (time.perf_counter() - t0)
    return rates


#: ``--smoke``: a tiny base survey, tiny quick models and a few sources (CI: code paths only)
SMOKE = {
    "sources": 24,
    "sample": 8,
    "classifiers": "cnn,colour",
    "base": {"n_lowz": 12, "n_highz": 12, "n_brown_dwarfs": 4, "field_sources": 0},
    "data": {
        "n_lowz": 16,
        "n_highz": 16,
        "n_brown_dwarfs": 4,
        "n_unlabelled": 0,
        "field_sources": 0,
    },
    "models": {"cnn": {"epochs": 1, "width": 4}},
}


def ensure_field(work: Path, n_sources: int, smoke: bool = False) -> Path:
    """The simulated field of ``n_sources`` in ``work`` (built on first use)."""
    from hizkit.plugins.mock import MockSurvey

    field = work / f"field-{n_sources}"
    if not field.exists():
        t0 = time.perf_counter()
        base = work / "base"
        if not base.exists():
            size = SMOKE["base"] if smoke else {"n_lowz": 512, "n_highz": 512, "n_brown_dwarfs": 16}
            MockSurvey(**size, n_unlabelled=0, seed=11).simulate_to(base)
        build_field(base, field, n_sources)
        print(f"field built in {time.perf_counter() - t0:.0f} s")
    return field


def ensure_models(work: Path, smoke: bool = False) -> Path:
    """Quick models (cnn one epoch, xgb, rf, colour) in ``work/models`` (trained once;
    ``smoke``: a tiny cnn and colour)."""
    import hizkit

    models = work / "models"
    if not models.exists():
        t0 = time.perf_counter()
        data = {"n_lowz": 150, "n_highz": 150, "n_brown_dwarfs": 8, "n_unlabelled": 3000}
        hizkit.train(
            "mock",
            SMOKE["classifiers"].split(",") if smoke else ["cnn", "xgb", "rf", "colour"],
            {
                "data": {**(SMOKE["data"] if smoke else data), "seed": 4},
                "classifiers": SMOKE["models"]
                if smoke
                else {"cnn": {"epochs": 1}, "xgb": {"n_estimators": 50}},
            },
            out=models,
        )
        print(f"models trained in {time.perf_counter() - t0:.0f} s")
    return models


def contiguous_sample(field: Path, n: int) -> np.ndarray:
    """The rows of one chunk from the middle of the field, as ``hizkit predict`` orders
    them: a strip of the mosaic (a random sample would read every row of every mosaic)."""
    from astropy.table import Table

    from hizkit.predict import chunk_plan

    cat = Table.read(next(field.glob("*catalog.fits")), hdu="FLAG")
    frame = {"ra": np.asarray(cat["RA"], float), "dec": np.asarray(cat["DEC"], float)}
    plan = chunk_plan(pd.DataFrame(frame), n)
    return np.sort(plan[len(plan) // 2])


def in_child(what: str, model: Path, field: Path, sample: np.ndarray) -> dict:
    """Run a timing in a fresh process: allocator state and caches are its own."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", what, "--child-model", str(model),
         "--child-field", str(field), "--child-sample", ",".join(map(str, sample))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=JADES_GOODS_S)
    ap.add_argument("--workdir", type=Path, default=Path("bench-predict"))
    ap.add_argument("--sample", type=int, default=1024, help="sources for the stage timings")
    ap.add_argument("--classifiers", default="cnn,xgb,rf,colour")
    ap.add_argument("--child", choices=("plain", "stages"), help=argparse.SUPPRESS)
    ap.add_argument("--child-model", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-field", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-sample", help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths only (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.sources, args.sample, args.classifiers = (
            SMOKE["sources"],
            SMOKE["sample"],
            SMOKE["classifiers"],
        )
    os.environ.setdefault("HIZKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    if args.child:
        run = plain_reference if args.child == "plain" else stage_rates
        sample = np.array([int(i) for i in args.child_sample.split(",")])
        print(json.dumps(run(args.child_model, args.child_field, sample)))
        return
    from _common import finish

    work = args.workdir
    figures: dict[str, object] = {"sources": args.sources}
    field = ensure_field(work, args.sources, args.smoke)
    models = ensure_models(work, args.smoke)
    sample = contiguous_sample(field, args.sample)
    for label in args.classifiers.split(","):
        out = work / f"predict-{label}-{time.strftime('%H%M%S')}"
        r = run_predict(models / label, field, out)
        r["sources_per_s"] = args.sources / r["seconds"]
        figures[label] = r
        print(f"{label}: {r['seconds']:.0f} s for {args.sources} sources "
              f"({r['sources_per_s']:.0f}/s), peak memory {r['peak_pss_gb']:.2f} GB "
              f"(allocated {r['peak_anon_gb']:.2f} GB, the rest mosaic page cache)")  # fmt: skip
        if label == "cnn":
            stages = in_child("stages", models / label, field, sample)
            ref = in_child("plain", models / label, field, sample)
            figures["cnn_stages_per_s"] = stages
            figures["plain_reference"] = ref
            figures["plain_field_minutes"] = args.sources / ref["per_s"] / 60
            figures["speedup_vs_plain"] = r["sources_per_s"] / ref["per_s"]
            print("  hizkit stages (sources/s): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))  # fmt: skip
            minutes, speedup = figures["plain_field_minutes"], figures["speedup_vs_plain"]
            print(
                f"  plain reference: Cutout2D {ref['cutout_per_s']:.0f}/s, eager network "
                f"{ref['network_per_s']:.1f}/s: {minutes:.0f} min for the field; hizkit end "
                f"to end is {speedup:.1f}x"
            )
    finish("predict_throughput", figures)


if __name__ == "__main__":
    main()
