"""Band ablation: retrain without each band in turn, and with F444W alone.

Each variant is a full benchmark (same seeds, so the same splits) on the dataset reduced
to a subset of bands; the drop in accuracy against the all-band run ranks the bands, as
in the poster's discussion (F200W the most important, F090W and F115W the least). The
accuracies are the harness's headline metrics (:mod:`hizkit.metrics`), so no evaluator runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.atomic import write_directory
from hizkit.bench import BenchConfig, run_benchmark
from hizkit.dataset import Dataset
from hizkit.errors import HizkitError
from hizkit.registry import Registry, get_registry


def select_bands(data: Dataset, bands: tuple[str, ...]) -> Dataset:
    """The dataset restricted to ``bands`` (cutout planes and photometry)."""
    return data.select_bands(bands)


@dataclass
class AblationResult:
    table: pd.DataFrame  # variant, bands, classifier, accuracy mean/std, drop
    #: classifier label -> {variant: the bands it declares in ``bands_needed`` that the
    #: variant leaves out}: those variants were not run for it and their rows are blank
    #: (NaN). E.g. ``{"colour": {"without F090W": ("F090W",), ...}}``.
    skipped: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def ranking(self, label: str) -> list[tuple[str, float]]:
        t = self.table[
            (self.table["classifier"] == label) & self.table["variant"].str.startswith("without")
        ]
        t = t.sort_values("drop", ascending=False)
        return list(zip(t["variant"].str.replace("without ", ""), t["drop"]))


def variants(bands: tuple[str, ...], alone: str = "F444W") -> list[tuple[str, tuple[str, ...]]]:
    out = [("all bands", bands)]
    out += [(f"without {b}", tuple(x for x in bands if x != b)) for b in bands]
    if alone in bands:
        out.append((f"{alone} alone", (alone,)))
    return out


def needed_left_out(
    config: BenchConfig, registry: Registry, left_out: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Label -> the bands of ``left_out`` its classifier declares in ``bands_needed``, for
    each label that cannot run without them (decided from the registered class, before
    anything runs). A needed band the data lacks altogether is not ablation's business:
    the harness refuses it (:func:`hizkit.bench.resolve`)."""
    out = {}
    for spec in config.classifiers:
        cls = registry.get("classifier", spec.plugin)
        missing = tuple(b for b in cls.bands_needed if b in left_out)
        if missing:
            out[spec.label] = missing
    return out


def run_ablation(
    data: Dataset, config: BenchConfig, registry: Registry | None = None
) -> AblationResult:
    """Every variant of :func:`variants` benchmarked with ``config``'s classifiers. A
    classifier skips exactly the variants that leave out a band of its ``bands_needed``
    (its rows blank, recorded in :attr:`AblationResult.skipped`); any failure of a
    classifier that runs is raised."""
    registry = registry or get_registry()
    config = dataclasses.replace(config, evaluators=[])  # accuracy is the core's own
    rows = []
    skipped: dict[str, dict[str, tuple[str, ...]]] = {}
    plan = variants(data.bands)
    for name, bands in progress.track(plan, "ablation variants"):
        progress.log(f"ablation: {name}")
        left_out = [b for b in data.bands if b not in bands]
        cannot = needed_left_out(config, registry, left_out)
        for label, missing in cannot.items():
            skipped.setdefault(label, {})[name] = missing
            progress.log(f"ablation: {label} needs {', '.join(missing)}, which {name} leaves out")
        runnable = [s for s in config.classifiers if s.label not in cannot]
        summary: dict[str, dict] = {}
        if runnable:
            one = dataclasses.replace(config, classifiers=runnable)
            summary = dict(run_benchmark(select_bands(data, bands), one, registry).summary())
        for spec in config.classifiers:
            stats = summary.get(spec.label, {})
            mean, std = stats.get("accuracy", (np.nan, np.nan))
            bal, bal_std = stats.get("balanced_accuracy", (np.nan, np.nan))
            rows.append(
                {
                    "variant": name,
                    "bands": ",".join(bands),
                    "classifier": spec.label,
                    "accuracy": mean,
                    "accuracy_std": std,
                    "balanced_accuracy": bal,
                    "balanced_accuracy_std": bal_std,
                }
            )
    table = pd.DataFrame(rows)
    full = table[table["variant"] == "all bands"].set_index("classifier")["accuracy"]
    table["drop"] = full.reindex(table["classifier"]).to_numpy() - table["accuracy"]
    n_reduced = len(plan) - 1
    if n_reduced and all(len(skipped.get(s.label, {})) == n_reduced for s in config.classifiers):
        labels = ", ".join(s.label for s in config.classifiers)
        raise HizkitError(
            f"nothing to ablate: {labels} cannot run with any band left out (each declares "
            "particular bands in bands_needed); ablate classifiers that learn from the bands "
            "they are given, e.g. xgb, logistic, rf or cnn"
        )
    return AblationResult(table, skipped)


def write_ablation(result: AblationResult, out: Path, existing: str = "refuse") -> Path:
    """ablation.csv, ablation.json and ablation.png in a new directory (``existing`` as
    in :func:`hizkit.report.write_run`; a recovery directory if writing fails)."""
    return write_directory(out, lambda d: _write_ablation_into(d, result), "ablation", existing)


def _write_ablation_into(tmp: Path, result: AblationResult) -> None:
    from hizkit.figures import pyplot, save_atomically

    plt = pyplot()

    t = result.table
    t.to_csv(tmp / "ablation.csv", index=False)
    (tmp / "ablation.json").write_text(
        json.dumps(
            {
                "variants": json.loads(t.to_json(orient="records")),
                "ranking": {c: result.ranking(c) for c in t["classifier"].unique()},
            },
            indent=2,
        )
    )
    labels = list(t["classifier"].unique())
    fig, ax = plt.subplots(figsize=(8, 4))
    names = [v for v in t["variant"].unique() if v != "all bands"]
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        sub = t[t["classifier"] == label].set_index("variant").reindex(names)
        ax.bar(
            np.arange(len(names)) + k * width,
            100 * sub["drop"],
            width,
            yerr=100 * sub["accuracy_std"],
            label=label,
        )
    ax.set_xticks(
        np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right", fontsize=8
    )
    ax.set_ylabel("accuracy drop vs all bands (points)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_atomically(fig, tmp / "ablation.png")
    plt.close(fig)
