"""Band ablation: retrain without each band in turn, and with F444W alone.

Each variant is a full benchmark (same seeds, so the same splits) on the dataset reduced
to a subset of bands; the drop in accuracy against the all-band run ranks the bands, as
in the poster's discussion (F200W the most important, F090W and F115W the least). The
accuracies are the harness's headline metrics (:mod:`hizkit.metrics`), so no evaluator runs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hizkit import progress
from hizkit.atomic import new_directory
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
    #: classifier label -> variants it could not run (it names a band left out); those
    #: rows are blank (NaN)
    skipped: dict[str, list[str]] = field(default_factory=dict)

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


def run_ablation(
    data: Dataset, config: BenchConfig, registry: Registry | None = None
) -> AblationResult:
    registry = registry or get_registry()
    config = dataclasses.replace(config, evaluators=[])  # accuracy is the core's own
    rows = []
    skipped: dict[str, list[str]] = {}
    for name, bands in progress.track(variants(data.bands), "ablation variants"):
        progress.log(f"ablation: {name}")
        left_out = [b for b in data.bands if b not in bands]
        summary = _variant_summary(select_bands(data, bands), config, registry, left_out)
        for label, stats in summary.items():
            if stats is None:
                skipped.setdefault(label, []).append(name)
                progress.log(f"ablation: {label} cannot run {name}: it needs a band left out")
                stats = {}
            mean, std = stats.get("accuracy", (np.nan, np.nan))
            bal, bal_std = stats.get("balanced_accuracy", (np.nan, np.nan))
            rows.append(
                {
                    "variant": name,
                    "bands": ",".join(bands),
                    "classifier": label,
                    "accuracy": mean,
                    "accuracy_std": std,
                    "balanced_accuracy": bal,
                    "balanced_accuracy_std": bal_std,
                }
            )
    table = pd.DataFrame(rows)
    full = table[table["variant"] == "all bands"].set_index("classifier")["accuracy"]
    table["drop"] = full.reindex(table["classifier"]).to_numpy() - table["accuracy"]
    n_reduced = len(variants(data.bands)) - 1
    if n_reduced and all(len(skipped.get(s.label, [])) == n_reduced for s in config.classifiers):
        labels = ", ".join(s.label for s in config.classifiers)
        raise HizkitError(
            f"nothing to ablate: {labels} cannot run with any band left out (each names "
            "particular bands); ablate classifiers that learn from the bands they are given, "
            "e.g. xgb, logistic, rf or cnn"
        )
    return AblationResult(table, skipped)


def _names_band(exc: BaseException, bands: list[str]) -> bool:
    text = str(exc)
    return any(b in text for b in bands)


def _variant_summary(
    data: Dataset, config: BenchConfig, registry: Registry, left_out: list[str]
) -> dict[str, dict | None]:
    """Each label's summary on one band subset; ``None`` for a classifier that fails
    because it names a band left out (the colour cuts need F090W, F115W, ...). Any other
    failure is raised."""
    try:
        return dict(run_benchmark(data, config, registry).summary())
    except Exception as exc:
        if not left_out or not _names_band(exc, left_out):
            raise
    out: dict[str, dict | None] = {}
    for spec in config.classifiers:  # find which classifier it was; keep the others
        try:
            one = dataclasses.replace(config, classifiers=[spec])
            out.update(run_benchmark(data, one, registry).summary())
        except Exception as exc:
            if not _names_band(exc, left_out):
                raise
            out[spec.label] = None
    return out


def write_ablation(result: AblationResult, out: Path, existing: str = "refuse") -> Path:
    """ablation.csv, ablation.json and ablation.png in a new directory (``existing`` as
    in :func:`hizkit.report.write_run`; a recovery directory if writing fails)."""
    from hizkit.atomic import refuse_existing
    from hizkit.report import keep_after_failure

    if existing == "refuse":
        refuse_existing(out)
    target = new_directory(out, existing="sibling")
    try:
        with target as tmp:
            _write_ablation_into(tmp, result)
    except Exception as exc:
        keep_after_failure(Path(out), exc, "ablation", lambda d: _write_ablation_into(d, result))
    return target.path


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
