"""The CNN under several training protocols, 10 runs each, on the same splits, with the
template photo-z ceiling beside them (issue #15).

Two steps, so that the slow, CPU-only part (simulating the survey, segmenting every
cutout) runs once and the training can run wherever a GPU is:

    python benchmarks/cnn_protocols.py export DIR [--extra-bd 200]
    python benchmarks/cnn_protocols.py run DIR [--runs 10] [--configs poster,default,...]

(``--smoke`` on both: a tiny survey, one run of a tiny one-epoch cnn; CI checks the code
paths with it.)

``export`` builds the default survey (photo-z labels kept beside the true ones), applies
the per-source preprocessors (segment, normalise: neither learns anything from the
training part, so preprocessing before the split gives the same inputs as the harness),
and writes the catalog (CSV) and float16 cutouts in parts small enough to carry.
``run`` rebuilds the Dataset, hands each protocol to :func:`hizkit.bench.run_benchmark`
(so every protocol sees the same stratified split per seed), and prints per-class true
positive rates, mean +- std over the runs, against the labels each protocol trains on and
against the true classes, with wall and fit times. Its last line is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import finish

import hizkit
from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark
from hizkit.config import read_toml
from hizkit.metrics import confusion, rates
from hizkit.registry import Registry

PART_SOURCES = 800  # float16 64x64x7 cutouts: ~46 MB per part

# label -> (plugin, parameters, preprocessors after export, labels, extra brown dwarfs)
# the poster's parameters come from the shipped preset (segment, normalise: done by export)
POSTER = {
    k: v for k, v in read_toml("poster")["classifiers"]["cnn"].items() if k != "preprocessors"
}
OLD_DEFAULT = {"lr": 5e-4, "schedule": "constant", "weight_decay": 0.0, "class_weight": "none"}
PROTOCOLS: dict[str, tuple[str, dict, tuple[str, ...], str, bool]] = {
    "poster": ("cnn", POSTER, ("augment",), "photoz", False),
    "photoz_on_photoz_labels": ("photoz", {}, (), "photoz", False),
    "cnn_0.6": ("cnn", OLD_DEFAULT, (), "truth", False),
    "default": ("cnn", {}, (), "truth", True),
    "default_no_extra_bd": ("cnn", {}, (), "truth", False),
    "default_20ep": ("cnn", {"epochs": 20}, (), "truth", True),
    "default_30ep": ("cnn", {"epochs": 30}, (), "truth", True),
    "default_lr1e-3": ("cnn", {"lr": 1e-3}, (), "truth", True),
    "default_lr4e-3": ("cnn", {"lr": 4e-3}, (), "truth", True),
    "default_tta8": ("cnn", {"tta": 8}, (), "truth", True),
    "hybrid": ("cnn_hybrid", {}, (), "truth", True),
    "hybrid_20ep": ("cnn_hybrid", {"epochs": 20}, (), "truth", True),
    "photoz": ("photoz", {}, (), "truth", True),
}


def export(out: Path, extra_bd: int, smoke: bool = False) -> None:
    from hizkit.registry import get_registry

    registry = get_registry()
    size = registry.get("data_source", "mock").test_params if smoke else {}
    data = registry.create(
        "data_source", "mock", **size, labels="photoz", n_extra_brown_dwarfs=extra_bd
    ).load()
    parts = [("main", data)] + ([("extra", data.extra_train)] if data.extra_train else [])
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cutouts = []
    for name, part in parts:
        for step in ("segment", "normalise"):
            part = registry.create("preprocessor", step).fit(part).transform(part)
        part.catalog.to_csv(out / f"{name}.csv", index=False)
        cutouts.append(part.cutouts.astype(np.float16))
    allc = np.concatenate(cutouts)
    for i, start in enumerate(range(0, len(allc), PART_SOURCES)):
        np.save(out / f"cutouts{i}.npy", allc[start : start + PART_SOURCES])
    meta = {"bands": list(data.bands), "pixel_scale": data.pixel_scale, "n": len(allc)}
    (out / "meta.json").write_text(json.dumps(meta))
    print(f"exported {len(allc)} sources to {out} ({time.perf_counter() - t0:.0f} s preprocessing)")


@functools.lru_cache(maxsize=1)
def _read(directory: Path) -> tuple[dict, np.ndarray, pd.DataFrame, pd.DataFrame | None]:
    """The exported files, read once however many protocols use them."""
    meta = json.loads((directory / "meta.json").read_text())
    files = sorted(directory.glob("cutouts*.npy"), key=lambda p: int(p.stem[7:]))
    cutouts = np.concatenate([np.load(f) for f in files]).astype(np.float32)
    extra = directory / "extra.csv"
    ex = pd.read_csv(extra) if extra.exists() else None
    return meta, cutouts, pd.read_csv(directory / "main.csv"), ex


def load(directory: Path, labels: str, extra: bool) -> hizkit.Dataset:
    meta, cutouts, main, ex = _read(directory)
    main = main.assign(label=main["label_true"]) if labels == "truth" else main
    bands, scale = tuple(meta["bands"]), meta["pixel_scale"]
    extra_set = None
    if extra and ex is not None:
        extra_set = hizkit.Dataset(ex, bands, scale, cutouts=cutouts[len(main) :])
    return hizkit.Dataset(main, bands, scale, cutouts=cutouts[: len(main)], extra_train=extra_set)


def run(directory: Path, names: list[str], runs: int, seed: int, overrides: dict) -> None:
    registry = Registry(
        builtins=(
            "hizkit.plugins.augment",
            "hizkit.plugins.cnn",
            "hizkit.plugins.photoz",
        ),
        autoload=False,
    )
    figures: dict[str, dict] = {}
    for name in names:
        plugin, params, chain, labels, extra = PROTOCOLS[name]
        data = load(directory, labels, extra)
        codes = {c: i for i, c in enumerate(hizkit.CLASSES)}
        truth = data.catalog["label_true"].map(codes).to_numpy()
        params = params | (overrides if plugin.startswith("cnn") else {})
        spec = ClassifierSpec(name, plugin, params, chain)
        config = BenchConfig(classifiers=[spec], evaluators=[], runs=runs, seed=seed)
        t0 = time.perf_counter()
        result = run_benchmark(data, config, registry)
        wall = time.perf_counter() - t0
        # the harness's headline metrics score the labels trained on; the true classes too
        own = [r.headline.metrics for r in result.runs]
        true = [
            rates(confusion(truth[result.splits[r.run].test], r.proba.argmax(1)))
            for r in result.runs
        ]
        row = {"labels": labels, "runs": runs, "wall_s": round(wall, 1)}
        row["fit_s"] = round(float(np.median([r.fit_seconds for r in result.runs])), 2)
        for tag, vals in (("own", own), ("true", true)):
            for c in hizkit.CLASSES:
                v = np.array([m[f"tpr_{c}"] for m in vals]) * 100
                row[f"{tag}_{c}"] = [round(float(np.nanmean(v)), 1), round(float(np.nanstd(v)), 1)]
        row["own_accuracy"] = round(float(np.mean([m["accuracy"] for m in own])) * 100, 1)
        figures[name] = row
        print(
            f"{name:26s} {labels:6s} "
            + "  ".join(
                f"{c} {row[f'own_{c}'][0]:5.1f}±{row[f'own_{c}'][1]:4.1f}" for c in hizkit.CLASSES
            )
            + "  | vs truth "
            + "  ".join(f"{row[f'true_{c}'][0]:5.1f}" for c in hizkit.CLASSES)
            + f"  | fit {row['fit_s']} s, wall {row['wall_s']} s",
            flush=True,
        )
    finish("cnn_protocols", {"protocols": figures})


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="simulate + preprocess the default survey once")
    ex.add_argument("dir", type=Path)
    ex.add_argument("--extra-bd", type=int, default=200)
    ex.add_argument("--smoke", action="store_true", help="a tiny survey (CI: code paths only)")
    ru = sub.add_parser("run", help="train and test each protocol on the exported data")
    ru.add_argument("dir", type=Path)
    ru.add_argument("--configs", default="poster,photoz_on_photoz_labels,default,photoz")
    ru.add_argument("--runs", type=int, default=10)
    ru.add_argument("--seed", type=int, default=0)
    ru.add_argument("--set", default="{}", help="JSON cnn overrides, e.g. '{\"compile\": false}'")
    ru.add_argument(
        "--smoke", action="store_true", help="one run of default and photoz, a tiny 1-epoch cnn"
    )
    args = ap.parse_args()
    if args.cmd == "export":
        export(args.dir, 4 if args.smoke else args.extra_bd, args.smoke)
    else:
        if args.smoke:
            args.runs, args.configs, args.set = 1, "default,photoz", '{"epochs": 1, "width": 4}'
        unknown = set(args.configs.split(",")) - set(PROTOCOLS)
        if unknown:
            ap.error(f"unknown protocol(s) {sorted(unknown)}; known: {sorted(PROTOCOLS)}")
        run(args.dir, args.configs.split(","), args.runs, args.seed, json.loads(args.set))


if __name__ == "__main__":
    main()
